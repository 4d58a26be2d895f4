"""The simulated instruments' message log: bounded, so a server that runs for days stays small.

Every message a simulated instrument receives is logged as ``(wall time, instrument name,
message)``; tests read the log to prove what was (or was not) sent. Kept whole, it grew
without end (a 300-epoch dry run: +130 MB; one 100 MB line: 100 MB for ever). This log is a
ring: it holds the newest entries up to ``max_entries`` and ``max_chars`` of message text
(a longer message is kept cut, with its length), and drops the oldest beyond that.

Indices are absolute, counted from the start (or the last :meth:`clear`): ``len(log)`` is the
number of messages ever logged, so ``n = len(log)`` ... ``len(log) == n`` proves that nothing
was sent whatever the ring dropped meanwhile, and ``log[n:]`` is what came after ``n`` (what
the ring still holds of it).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

LogEntry = tuple[float, str, str]  # (wall time, instrument name, message)

MAX_ENTRIES = 100_000
MAX_CHARS = 16_000_000  # message text held at most (~16 MB)
MAX_MESSAGE_CHARS = 4096  # longer messages are kept cut to this, with their length


class MessageLog:
    """A bounded log of :data:`LogEntry`, list-like with absolute indices (see the module)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS) -> None:
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._entries: deque[LogEntry] = deque()
        self._chars = 0
        self._first = 0  # absolute index of self._entries[0]
        self._lock = threading.Lock()  # one log serves every instrument thread

    def append(self, entry: LogEntry) -> None:
        t, name, message = entry
        if len(message) > MAX_MESSAGE_CHARS:
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters)"
        with self._lock:
            self._entries.append((t, name, message))
            self._chars += len(message)
            while self._entries and (len(self._entries) > self.max_entries or self._chars > self.max_chars):
                self._chars -= len(self._entries.popleft()[2])
                self._first += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._chars = 0
            self._first = 0

    @property
    def dropped(self) -> int:
        """Entries the ring no longer holds."""
        return self._first

    def __len__(self) -> int:
        return self._first + len(self._entries)

    def _held(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self._held())

    def __getitem__(self, index: Any) -> Any:
        with self._lock:
            first, held = self._first, list(self._entries)
        total = first + len(held)
        if isinstance(index, slice):
            start, stop, step = index.indices(total)
            return [held[i - first] for i in range(start, stop, step) if i >= first]
        i = index + total if index < 0 else index
        if not first <= i < total:
            raise IndexError(f"message {index} is not held (the log holds {first}..{total - 1})")
        return held[i - first]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MessageLog):
            return self._held() == other._held()
        if isinstance(other, list):
            return self._held() == other
        return NotImplemented

    def __repr__(self) -> str:
        return f"MessageLog({len(self)} messages, {len(self._entries)} held)"
