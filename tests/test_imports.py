"""The import path of a lab PC: portable (no POSIX-only module on import of the bench path)
and loud when another package shadows one of ours."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# POSIX-only modules are made unimportable for hopbench's own modules, as on Windows.
# Third-party packages (pyserial, pyvisa-py) pick their platform backend themselves, so their
# imports pass: on Windows they would not ask for these modules at all.
BLOCK_POSIX = """
import sys
POSIX_ONLY = ("fcntl", "tty", "termios", "pty", "resource")
OURS = ("lab", "drivers", "protocols", "sim_backend")

class NoPosix:
    def find_spec(self, name, path=None, target=None):
        if name not in POSIX_ONLY:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen")):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "") if frame is not None else ""
        if importer == "__main__" or importer.split(".")[0] in OURS:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for {importer}: as on Windows)")
        return None

sys.meta_path.insert(0, NoPosix())
for m in POSIX_ONLY:
    sys.modules.pop(m, None)
"""


def _python(code: str, *, cwd: Path | None = None, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env=env)


def test_the_bench_path_imports_without_posix_only_modules() -> None:
    res = _python(BLOCK_POSIX + "import lab.runner, lab.app.cli, sim_backend.server, lab.archive\nprint('ok')")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_the_blocker_really_blocks() -> None:
    res = _python(BLOCK_POSIX + "import fcntl")
    assert res.returncode != 0 and "blocked" in res.stderr


@pytest.mark.parametrize("name", ["drivers", "protocols", "sim_backend"])
def test_a_shadowing_package_is_named_in_one_sentence(tmp_path: Path, name: str) -> None:
    fake = tmp_path / name
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    res = _python("import lab", cwd=tmp_path)  # the script's folder comes first on sys.path
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert f"the package {name!r}" in last and "dedicated virtual environment" in last


def test_a_package_named_lab_beside_a_script_is_reported(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()  # a user's own package of lab scripts
    (tmp_path / "lab" / "__init__.py").write_text("")
    res = _python("import protocols", cwd=tmp_path)
    assert res.returncode != 0
    assert "'lab' is not hopbench's" in res.stderr and "dedicated virtual environment" in res.stderr
