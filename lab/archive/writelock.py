"""One writer per run file, and how a reader tells whether that writer still lives.

A run file whose status says ``running`` is either being written or was left by a writer
that died (SIGKILL, power cut): the file cannot tell, its writer's lock can. The lock is
an open-file-description byte-range lock the OS drops when its holder dies, however it
dies; :func:`writer_alive` asks the OS whether someone holds it (``F_OFD_GETLK``), which
takes no lock, so it can neither disturb a live writer nor stand in for a second one.
"""
from __future__ import annotations

import errno
import os
import struct
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from lab.lock import OwnedLock, lock_path

# The locked byte: far past any real file end, so no reader's range ever meets it.
_LOCK_START, _LOCK_LEN = 1 << 62, 1
# struct flock on 64-bit Linux: l_type, l_whence, (pad), l_start, l_len, l_pid, (pad)
_FLOCK = "hhxxxxqqixxxx"


class ArchiveError(RuntimeError):
    pass


class WriterLock:
    """Keeps a second writer off a run file while this one lives (released on close or death).

    HDF5's own lock cannot: it drops its file lock when SWMR writing starts (so readers
    may open), and a crashed SWMR writer's flags look the same as a live writer's. So the
    writer takes an open-file-description lock on a byte range far past the end of the file
    (Linux F_OFD_SETLK): readers' flock()s do not see it, and it belongs to this open file,
    so an in-process reader closing the same file does not release it.

    Why not :mod:`lab.lock` (filelock) everywhere: filelock locks a whole file of its own.
    On the archive itself it would collide with the flock HDF5 readers take (readers must
    never be blocked), and filelock truncates or unlinks its lock file. On a side file it
    would put a second file next to every run, or, in the host-local lock folder, stop
    guarding a run on a shared drive written from two hosts, and an archive reached by
    another path (hard link, other mount) would go unguarded. The byte-range lock sits on
    the archive's own inode and is invisible to readers. Only where there is no ``fcntl``
    (Windows) does the writer fall back to :class:`lab.lock.OwnedLock` keyed by the file's
    real path: a second writer on this host is still refused, readers are still unaffected.
    """

    _held: set[str] = set()  # files this process writes (the POSIX-lock fallback does not conflict in-process)

    def __init__(self, path: Path, create: bool = False):
        self.key = os.path.realpath(path)
        if self.key in self._held:
            raise ArchiveError(f"{path}: already open for writing in this process")
        self.fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)
        self._portable: OwnedLock | None = None
        try:
            self._lock()
        except OSError as exc:
            os.close(self.fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise ArchiveError(f"{path}: another process is writing this run") from exc
            raise
        self._held.add(self.key)

    def _lock(self) -> None:
        try:
            import fcntl  # POSIX only
        except ImportError:  # Windows: lab.lock's portable lock (see the class docstring)
            self._portable = OwnedLock(lock_path(f"archive {self.key}"))
            if not self._portable.acquire():
                raise OSError(errno.EAGAIN, f"held by {self._portable.holder()}") from None
            return
        if hasattr(fcntl, "F_OFD_SETLK"):
            arg = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _LOCK_START, _LOCK_LEN, 0)
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, arg)
        else:  # classic POSIX lock: released if this process closes any descriptor of the file
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, _LOCK_LEN, _LOCK_START)

    @contextmanager
    def released_on_error(self) -> Iterator[None]:
        """Release the lock if the block fails (the file it guards was not opened for good)."""
        try:
            yield
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        if self.fd >= 0:
            if self._portable is not None:
                self._portable.release()
            os.close(self.fd)
            self.fd = -1
            self._held.discard(self.key)


def writer_alive(path: str | os.PathLike[str]) -> bool | None:
    """True while a writer holds ``path``'s writer lock, False if none does, None if this
    platform cannot tell without taking the lock (then nothing is assumed).

    ``F_OFD_GETLK`` only asks: it takes no lock, so a live writer is not disturbed and a
    writer starting at the same moment is not refused. It sees OFD locks of this process
    too (each open file description is its own owner).
    """
    key = os.path.realpath(path)
    if key in WriterLock._held:
        return True
    try:
        import fcntl
    except ImportError:
        return None
    if not hasattr(fcntl, "F_OFD_GETLK") or not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        query = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, _LOCK_START, _LOCK_LEN, 0)
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, query)
    except OSError:
        return None
    finally:
        os.close(fd)
    return struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK
