"""``repair(path)``: let every HDF5 tool open a run file whose writer died.

A SWMR writer marks the file's superblock "open for writing" and clears the mark when it
closes; a writer killed (SIGKILL, power cut) leaves it set, and HDF5 then refuses every
plain open (HDFView, MATLAB, ``h5py.File(p, "r")``) — only ``swmr=True`` readers get in.
Repair does what ``h5clear -s`` does, and only that: it rewrites the superblock's status
flags (and its checksum), no dataset is touched, so nothing measured can be lost. It holds
the writer lock meanwhile, so it cannot run beside a live writer (or a resume). Before
anything is written the file's length is checked against its superblock, and afterwards a
plain open must show the same committed rows as before, else the superblock's old bytes
are put back.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

from lab.archive.access import (
    FLAGS_WORDS,
    ArchiveFormatError,
    check_length,
    damaged,
    open_h5,
)
from lab.archive.blocks import clear_status_flags
from lab.archive.layout import counts_dict, read_committed
from lab.archive.writelock import WriterLock

_SUPERBLOCK_BYTES = 512  # a v2/v3 superblock is 48 bytes; keep a margin


def _committed(path: Path) -> dict[str, int]:
    with open_h5(path).file as f:
        return counts_dict(read_committed(f["entry/committed"]))


def repair(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Clear a dead writer's status flags; returns what was done (``repaired`` False: nothing to do)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such run archive", str(path))
    lock = WriterLock(path)  # refuses (ArchiveError) while a writer holds the file
    try:
        try:
            h5py.File(path, "r").close()
            return {"path": str(path), "repaired": False, "reason": "plain HDF5 opens it already"}
        except OSError as exc:
            if FLAGS_WORDS not in str(exc):
                raise damaged(path, exc) from None
        check_length(path)
        before = _committed(path)
        with open(path, "rb") as fh:
            saved = fh.read(_SUPERBLOCK_BYTES)
        try:
            clear_status_flags(path)
            with h5py.File(path, "r") as f:
                after = counts_dict(read_committed(f["entry/committed"]))
            if after != before:
                raise ArchiveFormatError(f"{path}: committed rows changed during repair ({before} → {after})")
        except BaseException:
            with open(path, "r+b") as fh:
                fh.write(saved)
                fh.flush()
                os.fsync(fh.fileno())
            raise
        return {"path": str(path), "repaired": True, "committed": after}
    finally:
        lock.release()
