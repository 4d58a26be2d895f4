"""hopbench lab core: bench file, instrument roles, safety, crossbar access, runner, archive."""
from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("hopbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"

# hopbench installs four top-level packages with common names; another distribution (or a
# folder called ``lab`` beside a user's script) can shadow one of them.
PACKAGES = ("lab", "drivers", "protocols", "sim_backend")


def check_not_shadowed() -> None:
    """Raise ImportError in one sentence if a sibling package is not hopbench's own."""
    home = Path(__file__).resolve().parent.parent
    for name in PACKAGES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve().parent.parent if spec and spec.origin else None
        if origin != home:
            where = spec.origin if spec and spec.origin else (list(spec.submodule_search_locations or [])
                                                              if spec else "nowhere")
            raise ImportError(
                f"the package {name!r} imported from {where} is not hopbench's (which lives in {home}): "
                "another package or folder of that name shadows it; install hopbench in a dedicated "
                "virtual environment and run your scripts outside folders named "
                + ", ".join(PACKAGES)
            )


check_not_shadowed()
