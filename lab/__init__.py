"""hopbench lab core: bench file, instrument roles, safety, crossbar access, runner, archive."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hopbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.1.0+source"
