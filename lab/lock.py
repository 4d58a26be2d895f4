"""One bench, one runner: an exclusive lock per instrument, keyed on what the instrument is.

The locks are :mod:`filelock`'s (``flock`` on POSIX, ``LockFileEx`` on Windows): the OS
drops them when the process dies however it dies (crash, SIGKILL), so a dead runner can
never keep the bench. Two benches sharing one instrument conflict, because every
instrument is locked on its own.

Keys name the instrument, not the way a bench file spells it (:func:`instrument_key`):
``TCPIP0::localhost::5025::SOCKET`` and ``TCPIP::127.0.0.1::5025::SOCKET`` are one key (the
host is resolved), and a bench adds the ``*IDN?`` identity of every instrument that answers
(:func:`identity_key`), so one instrument reached two ways (a raw socket and VXI-11, an SSH
tunnel) is still one lock. Lock files live in ``$HOPBENCH_LOCK_DIR`` (default: a
``hopbench-locks`` folder in the system's temporary directory).

filelock owns each lock file's content, so the holder (pid, host, start time, archive) is
written next to it, in ``<lock>.owner`` (JSON), and removed on release. An owner file found
by the next holder therefore means its writer died holding the bench (SIGKILL, power loss):
:attr:`OwnedLock.previous` (and :attr:`BenchLock.previous`) report it, so the next run can
say so and make the bench safe before anything else.

A simulated twin built in this process has no instrument another process could reach: its
key is process-local (:data:`LOCAL_PREFIX`) and held in memory, leaving no file behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from filelock import FileLock, Timeout

from lab.errors import BenchBusy

LOCAL_PREFIX = "local:"  # keys of this process's own simulated instruments

# Locks taken and not yet released. filelock releases a lock whose object is garbage
# collected; a held lock must last until release() or the process's end, as a held
# descriptor does, even if its holder dropped the object.
_HELD: set["OwnedLock"] = set()
_LOCAL: dict[str, dict[str, Any]] = {}
_LOCAL_GUARD = threading.Lock()


def lock_dir() -> Path:
    d = Path(os.environ.get("HOPBENCH_LOCK_DIR", Path(tempfile.gettempdir()) / "hopbench-locks"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def lock_path(key: str) -> Path:
    """The lock file of ``key`` in :func:`lock_dir`."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return lock_dir() / f"{digest}.lock"


# ------------------------------------------------------------------ keys


def _resolve(host: str) -> str:
    """The address a host name reaches (IPv4 first), or the name itself if it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return host.lower()
    addrs = [i[4][0] for i in infos]
    v4 = [a for a in addrs if ":" not in a]
    return (v4 or addrs or [host.lower()])[0]


def instrument_key(resource: str) -> str:
    """The lock key of the instrument a VISA resource string reaches.

    TCPIP: resolved address plus port (SOCKET) or LAN device name (VXI-11/HiSLIP INSTR);
    GPIB: board and addresses; ASRL: the real path of the port; USB: vendor, model, serial.
    Anything else: pyvisa's normalized form of the string.
    """
    from pyvisa import rname  # pyvisa is a dependency of the drivers a bench opens anyway

    try:
        r = rname.parse_resource_name(resource)
    except rname.InvalidResourceName:
        return resource.strip()
    kind = type(r).__name__
    if kind == "TCPIPSocket":
        return f"tcpip {_resolve(r.host_address)}:{int(r.port)}"
    if kind == "TCPIPInstr":
        return f"tcpip {_resolve(r.host_address)} {(r.lan_device_name or 'inst0').lower()}"
    if kind.startswith("GPIB"):
        sec = getattr(r, "secondary_address", None)
        return f"gpib{int(r.board or 0)}::{int(r.primary_address)}" + (f"::{int(sec)}" if sec else "")
    if kind == "ASRLInstr":
        board = str(r.board)
        return f"asrl {os.path.realpath(board)}" if board.startswith("/") else f"asrl {board.upper()}"
    if kind.startswith("USB"):
        def num(v: Any) -> str:
            try:
                return f"{int(str(v), 0):#06x}"
            except ValueError:
                return str(v).lower()
        return f"usb {num(r.manufacturer_id)}:{num(r.model_code)}:{r.serial_number}"
    return str(r)


def identity_key(idn: str) -> str | None:
    """The lock key of an ``*IDN?`` answer ``maker,model,serial,firmware``; None if it has no serial."""
    fields = [re.sub(r"\s+", " ", f).strip().lower() for f in str(idn).split(",")]
    if len(fields) < 3 or not fields[2] or fields[2] in ("0", "n/a", "none"):
        return None
    model = fields[1].removeprefix("model ").strip()
    return f"idn {fields[0]}|{model}|{fields[2]}"


# ------------------------------------------------------------------ locks


def _owner_record(**extra: Any) -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "start_time": datetime.now().astimezone().isoformat(timespec="seconds"), **extra}


def describe_owner(owner: dict[str, Any] | str | None) -> str:
    """A holder in words: ``pid 123 on host since <time> (archive <path>)``."""
    if not owner:
        return "another runner"
    if isinstance(owner, str):
        return owner
    text = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')} since {owner.get('start_time', '?')}"
    if owner.get("archive"):
        text += f" (archive {owner['archive']})"
    return text


class OwnedLock:
    """One exclusive lock file, taken without waiting, that records who holds it.

    A second :class:`OwnedLock` on the same file conflicts, in another process or in this
    one (each holds its own open file). The holder may be released from any thread.
    ``previous``: the owner record a dead holder left behind, found when this one took it.
    """

    def __init__(self, path: Path, key: str = "") -> None:
        self.path = path
        self.key = key
        self.owner_path = path.with_name(path.name + ".owner")
        self._lock = FileLock(str(path), thread_local=False)
        self.previous: dict[str, Any] | None = None
        self.owner: dict[str, Any] = {}

    def acquire(self, **owner: Any) -> bool:
        """Take the lock if it is free; False if someone holds it (see :meth:`holder`)."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            return False
        try:
            self.previous = self._read_owner()
            self.owner = _owner_record(key=self.key, **owner)
            self._write_owner()
        except BaseException:
            self._lock.release()
            raise
        _HELD.add(self)
        return True

    def update(self, **fields: Any) -> None:
        """Add to the owner record (e.g. the archive path, once it is known)."""
        if self._lock.is_locked:
            self.owner.update(fields)
            self._write_owner()

    def _write_owner(self) -> None:
        tmp = self.owner_path.with_name(f"{self.owner_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.owner))
        os.replace(tmp, self.owner_path)

    def _read_owner(self) -> dict[str, Any] | None:
        try:
            text = self.owner_path.read_text(errors="replace").strip()
        except OSError:
            return None
        if not text:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return {"pid": "?", "host": "?", "start_time": "?", "note": text[:200]}
        return data if isinstance(data, dict) else {"note": str(data)[:200]}

    def holder(self) -> str:
        """Who holds the lock, as its holder wrote it ("another runner" if it wrote nothing yet)."""
        return describe_owner(self._read_owner())

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            self.owner_path.unlink(missing_ok=True)
        finally:
            self._lock.release()
            _HELD.discard(self)


class _LocalLock:
    """A process-local key (a twin of this process): held in memory, no file."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.path = Path(f"<in-process {key}>")
        self.previous: dict[str, Any] | None = None
        self._held = False

    def acquire(self, **owner: Any) -> bool:
        with _LOCAL_GUARD:
            if self.key in _LOCAL:
                return False
            _LOCAL[self.key] = _owner_record(key=self.key, **owner)
        self._held = True
        return True

    def update(self, **fields: Any) -> None:
        with _LOCAL_GUARD:
            if self._held and self.key in _LOCAL:
                _LOCAL[self.key].update(fields)

    def holder(self) -> str:
        return describe_owner(_LOCAL.get(self.key)) + " (this process)"

    def release(self) -> None:
        with _LOCAL_GUARD:
            if self._held:
                _LOCAL.pop(self.key, None)
                self._held = False


class BenchLock:
    """Hold the locks of ``keys`` (see :func:`instrument_key`); raises BenchBusy naming the holder.

    :meth:`acquire` may be called again with more keys (identities learnt once the
    instruments answered); a failure releases everything this object holds.
    ``previous``: {key: owner record} of dead holders found on the way.
    """

    def __init__(self, keys: Iterable[str] = (), **owner: Any) -> None:
        self.keys = sorted(set(keys))
        self.owner = owner
        self._held: list[OwnedLock | _LocalLock] = []
        self.previous: dict[str, dict[str, Any]] = {}

    def acquire(self, keys: Iterable[str] | None = None) -> "BenchLock":
        new = self.keys if keys is None else sorted(set(keys) - {lk.key for lk in self._held})
        if keys is not None:
            self.keys = sorted(set(self.keys) | set(new))
        try:
            for key in new:
                lock: OwnedLock | _LocalLock = (_LocalLock(key) if key.startswith(LOCAL_PREFIX)
                                                else OwnedLock(lock_path(key), key))
                if not lock.acquire(**self.owner):
                    raise BenchBusy(f"instrument {key} is in use by {lock.holder()} (lock {lock.path})")
                self._held.append(lock)
                if lock.previous is not None:
                    self.previous[key] = lock.previous
        except BaseException:
            self.release()
            raise
        return self

    def update(self, **fields: Any) -> None:
        """Add to every held lock's owner record (e.g. ``archive=``)."""
        self.owner.update(fields)
        for lock in self._held:
            lock.update(**fields)

    def dead_owners(self) -> list[dict[str, Any]]:
        """The distinct runs that died holding some of these locks (oldest first)."""
        seen: dict[tuple, dict[str, Any]] = {}
        for key, rec in sorted(self.previous.items(), key=lambda kv: str(kv[1].get("start_time"))):
            ident = (rec.get("pid"), rec.get("host"))  # one process (its locks were taken at several moments)
            entry = seen.setdefault(ident, {**{k: v for k, v in rec.items() if k != "key"}, "keys": []})
            entry["keys"].append(key)
            if rec.get("archive") and not entry.get("archive"):
                entry["archive"] = rec["archive"]
        return sorted(seen.values(), key=lambda r: str(r.get("start_time")))

    def release(self) -> None:
        while self._held:
            self._held.pop().release()

    def __enter__(self) -> "BenchLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
