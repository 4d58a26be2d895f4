"""One runner per instrument: an exclusive file lock per VISA resource, naming its holder.

The locks are :mod:`filelock`'s (``flock`` on POSIX, ``LockFileEx`` on Windows): the OS
drops them when the process dies however it dies (crash, SIGKILL), so a stale lock cannot
outlive its runner. Two benches sharing one instrument conflict, because every resource is
locked on its own. Lock files live in ``$HOPBENCH_LOCK_DIR`` (default: a ``hopbench-locks``
folder in the system's temporary directory). filelock owns each lock file's content, so
the holder (pid, host, start time) is written next to it, in ``<lock>.owner``.
"""
from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Iterable

from filelock import FileLock, Timeout

from lab.errors import BenchBusy

# Locks taken and not yet released. filelock releases a lock whose object is garbage
# collected; a held lock must last until release() or the process's end, as a held
# descriptor does, even if its holder dropped the object.
_HELD: set["OwnedLock"] = set()


def lock_dir() -> Path:
    d = Path(os.environ.get("HOPBENCH_LOCK_DIR", Path(tempfile.gettempdir()) / "hopbench-locks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def lock_path(key: str) -> Path:
    """The lock file of resource ``key`` in :func:`lock_dir`."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return lock_dir() / f"{digest}.lock"


class OwnedLock:
    """One exclusive lock file, taken without waiting, that records who holds it.

    A second :class:`OwnedLock` on the same file conflicts, in another process or in this
    one (each holds its own open file). The holder may be released from any thread.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.owner_path = path.with_name(path.name + ".owner")
        self._lock = FileLock(str(path), thread_local=False)

    def acquire(self) -> bool:
        """Take the lock if it is free; False if someone holds it (see :meth:`holder`)."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            stamp = datetime.now().astimezone().isoformat(timespec="seconds")
            tmp = self.owner_path.with_name(f"{self.owner_path.name}.{os.getpid()}.tmp")
            tmp.write_text(f"pid {os.getpid()} on {socket.gethostname()} since {stamp}")
            os.replace(tmp, self.owner_path)
        except BaseException:
            self._lock.release()
            raise
        _HELD.add(self)
        return True

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("another runner" if it wrote nothing yet)."""
        try:
            return self.owner_path.read_text(errors="replace").strip() or "another runner"
        except OSError:
            return "another runner"

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            self.owner_path.unlink(missing_ok=True)
        finally:
            self._lock.release()
            _HELD.discard(self)


class BenchLock:
    """Hold the locks of ``keys`` (resource strings); raises BenchBusy naming the holder."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = sorted(set(keys))
        self._held: list[OwnedLock] = []

    def acquire(self) -> "BenchLock":
        try:
            for key in self.keys:
                lock = OwnedLock(lock_path(key))
                if not lock.acquire():
                    raise BenchBusy(f"instrument {key} is in use by {lock.holder()} (lock {lock.path})")
                self._held.append(lock)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        while self._held:
            self._held.pop().release()

    def __enter__(self) -> "BenchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
