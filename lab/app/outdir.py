"""Where hopbench may write: an output folder (``--out``) is refused for ``/`` and system folders.

Runs, figures and sweeps write many files and replace some (a demo replaces its previous
archive), so a slip such as ``--out /`` or ``--out /etc`` must be an error before anything is
created, not a folder of archives among the system's files.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path, PurePath

# POSIX folders that belong to the system (and everything below them); /var/tmp and /tmp are
# scratch space and stay allowed.
_SYSTEM = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin",
           "/sys", "/usr", "/var")
_ALLOWED_BELOW_SYSTEM = ("/var/tmp",)
_WINDOWS_SYSTEM = ("windows", "program files", "program files (x86)", "programdata")


def _system_folder(p: PurePath) -> bool:
    if len(p.parts) <= 1:  # "/" or "C:\"
        return True
    if sys.platform == "win32":
        return p.parts[1].lower() in _WINDOWS_SYSTEM
    text = str(p)
    if any(text == a or text.startswith(a + "/") for a in _ALLOWED_BELOW_SYSTEM):
        return False
    return any(text == s or text.startswith(s + "/") for s in _SYSTEM)


def check_out_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as given, or ValueError naming the option if it is ``/``, a system folder or a file."""
    given = Path(path)
    resolved = Path(os.path.realpath(given.expanduser()))
    if _system_folder(resolved):
        raise ValueError(f"{option} {given}: refusing to write into {resolved} (the file-system root or a "
                         f"system folder); choose a folder of your own, e.g. {option} hopbench-runs")
    if resolved.exists() and not resolved.is_dir():
        raise ValueError(f"{option} {given}: exists and is not a folder")
    return given


def check_out_file(path: str | os.PathLike[str], option: str = "--archive") -> Path:
    """A file to write: its folder must pass :func:`check_out_dir`."""
    given = Path(path)
    check_out_dir(given.parent if str(given.parent) else Path("."), option)
    return given
