"""One runner per instrument: an advisory file lock per VISA resource.

``flock`` locks belong to the open file, so the kernel drops them when the process dies
however it dies (crash, SIGKILL): a stale lock cannot outlive its runner. Two benches
sharing one instrument conflict, because every resource is locked on its own.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterable

from lab.errors import BenchBusy


def lock_dir() -> Path:
    d = Path(os.environ.get("HOPBENCH_LOCK_DIR", Path(tempfile.gettempdir()) / "hopbench-locks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _path(key: str) -> Path:
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return lock_dir() / f"{digest}.lock"


class BenchLock:
    """Hold the locks of ``keys`` (resource strings); raises BenchBusy naming the holder."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(set(keys))
        self._files: list[int] = []

    def acquire(self) -> "BenchLock":
        try:
            for key in self.keys:
                path = _path(key)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another runner"
                    os.close(fd)
                    raise BenchBusy(f"instrument {key} is in use by {holder} (lock {path})") from None
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
                self._files.append(fd)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._files:
            fd = self._files.pop()
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __enter__(self) -> "BenchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
