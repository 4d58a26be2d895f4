"""The HDF5 run archive: one crash-safe, self-describing file per run, written as measured.

:mod:`~lab.archive.layout` declares every table of the file once; :mod:`~lab.archive.tree`
makes a file's tree from it; :mod:`~lab.archive.writer` appends to it
(:class:`ArchiveWriter`, a run observer) and resumes it; :mod:`~lab.archive.reader` reads it
back (:func:`open_run`, :func:`list_runs`); :mod:`~lab.archive.blocks` and
:mod:`~lab.archive.jsonio` are the low-level HDF5 and JSON helpers; :mod:`~lab.archive.writelock`
keeps one writer per file and tells a reader whether it lives; :mod:`~lab.archive.access`
opens a file for reading without hanging on damage; :mod:`~lab.archive.repair` clears a dead
writer's flags so every HDF5 tool opens the file.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lab.archive.blocks import clear_status_flags
from lab.archive.jsonio import to_json
from lab.archive.layout import COUNTERS, LAYOUT_VERSION, LIBVER, STATUSES, TABLES
from lab.archive.writelock import writer_alive
from lab.archive.writer import ArchiveError, ArchiveWriter, ResumePoint

if TYPE_CHECKING:
    from lab.archive.reader import (
        SUPPORTED_VERSIONS,
        ArchiveFormatError,
        Run,
        list_runs,
        open_run,
    )

# The reader's names load lab.archive.reader (pandas, xarray) on first use. Measured here
# (best of 5 fresh interpreters): `from lab.archive import ArchiveWriter` 0.17 s, with
# `Run` as well 0.49 s; processes that only write (the crash tests' and benchmarks' writer
# processes) never read, and kept the old module's 0.17 s.
_READER_NAMES = {"SUPPORTED_VERSIONS", "ArchiveFormatError", "Run", "list_runs", "open_run"}


def __getattr__(name: str) -> Any:
    if name in _READER_NAMES:
        return getattr(importlib.import_module("lab.archive.reader"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _READER_NAMES)


__all__ = [
    "ArchiveError",
    "ArchiveFormatError",
    "ArchiveWriter",
    "COUNTERS",
    "LAYOUT_VERSION",
    "LIBVER",
    "ResumePoint",
    "Run",
    "STATUSES",
    "SUPPORTED_VERSIONS",
    "TABLES",
    "clear_status_flags",
    "list_runs",
    "open_run",
    "to_json",
    "writer_alive",
]
