"""The crosspoints the guard holds closed, and the line -> bus table they make, kept as relays change.

A guarded read of an N×N crossbar changes four crosspoints per configuration while 2N stay
closed; asking "which bus holds each line" of the whole closed set at every level change
parsed every channel id again (a fifth of an N = 128 dry run). Here each id is parsed once,
when it closes, and the table is updated by the change alone.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping

import numpy as np

_TABLES_KEPT = 64  # tables of whole sets kept for replace()


class ClosedRelays:
    """A set of channel ids (the closed crosspoints) with, per line, how many of them reach it and
    from which bus. ``owner`` maps an id to (bus, line index) and raises KeyError for an id the
    wiring does not have: such an id is never held."""

    def __init__(self, owner: Callable[[str], tuple[str, int]], bus_index: Mapping[str, int], n_lines: int) -> None:
        self._owner = owner
        self._bus_index = bus_index
        self._ids: set[str] = set()
        self._count = np.zeros(n_lines, np.int32)  # closed crosspoints on each line
        self._bus = np.full(n_lines, -1, np.intp)  # the bus index of a line's one crosspoint
        self._shared: set[int] = set()  # lines two or more closed crosspoints reach
        self._tables: OrderedDict[frozenset[str], tuple] = OrderedDict()  # sets held by replace()
        self.version = 0  # bumped by every change: what callers key their caches on
        self._routed: tuple[int, tuple | None] | None = None

    # -- the set -------------------------------------------------------------------------------
    @property
    def ids(self) -> set[str]:
        """The closed ids themselves (shared: callers must not change it)."""
        return self._ids

    def __contains__(self, channel: object) -> bool:
        return channel in self._ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ClosedRelays):
            return self._ids == other._ids
        if isinstance(other, (set, frozenset)):
            return self._ids == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment] - mutable

    def __repr__(self) -> str:
        return f"ClosedRelays({sorted(self._ids)!r})"

    # -- changes -------------------------------------------------------------------------------
    def add(self, channel: str) -> None:
        if channel in self._ids:
            return
        bus, line = self._owner(channel)  # KeyError before anything changes
        self._ids.add(channel)
        self._count[line] += 1
        if self._count[line] == 1:
            self._bus[line] = self._bus_index[bus]
        else:
            self._shared.add(line)
        self.version += 1

    def discard(self, channel: str) -> None:
        if channel not in self._ids:
            return
        _, line = self._owner(channel)
        self._ids.discard(channel)
        self._count[line] -= 1
        if self._count[line] == 0:
            self._bus[line] = -1
        elif self._count[line] == 1:  # the one left on a shared line: found among the rest
            self._shared.discard(line)
            rest = next(b for b, ln in map(self._owner, self._ids) if ln == line)
            self._bus[line] = self._bus_index[rest]
        self.version += 1

    def update(self, channels: Iterable[str]) -> None:
        for ch in channels:
            self.add(ch)

    def difference_update(self, channels: Iterable[str]) -> None:
        for ch in channels:
            self.discard(ch)

    def replace(self, channels: Iterable[str]) -> None:
        """Hold exactly ``channels``: the table of a set held before is taken back as it was (a
        pre-flight restores a few states thousands of times), else only the difference is parsed."""
        new = channels if isinstance(channels, frozenset) else frozenset(channels)
        hit = self._tables.get(new)
        if hit is not None:
            self._tables.move_to_end(new)
            self._ids = set(new)
            self._count[:], self._bus[:] = hit[0], hit[1]
            self._shared = set(hit[2])
            self.version += 1
            return
        self.difference_update(self._ids - new)
        self.update(new - self._ids)
        self._tables[new] = (self._count.copy(), self._bus.copy(), frozenset(self._shared))
        if len(self._tables) > _TABLES_KEPT:
            self._tables.popitem(last=False)

    def clear(self) -> None:
        if self._ids:
            self._ids.clear()
            self._count[:] = 0
            self._bus[:] = -1
            self._shared.clear()
            self.version += 1

    # -- the table -----------------------------------------------------------------------------
    def lines_after(self, to_open: Iterable[str], to_close: Iterable[str]) -> dict[int, int] | None:
        """Closed crosspoints per line that a change would alter, after it: {line: count}.
        None if an id to close is not one of the wiring's."""
        delta: dict[int, int] = {}
        for ch in to_open:
            line = self._owner(ch)[1]
            delta[line] = delta.get(line, 0) - 1
        for ch in to_close:
            try:
                line = self._owner(ch)[1]
            except KeyError:
                return None
            delta[line] = delta.get(line, 0) + 1
        return {line: int(self._count[line]) + d for line, d in delta.items()}

    def count(self, line: int) -> int:
        """Closed crosspoints on ``line``."""
        return int(self._count[line])

    @property
    def shared_lines(self) -> frozenset[int]:
        return frozenset(self._shared)

    def routed(self) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None:
        """(line, bus index) of every closed crosspoint as arrays in line order, and the bus
        indices used; None if two of them share a line. Shared: callers must not write into them."""
        hit = self._routed
        if hit is not None and hit[0] == self.version:
            return hit[1]
        out = None
        if not self._shared:
            lines = np.flatnonzero(self._count)
            bus_of = self._bus[lines]
            used = np.flatnonzero(np.bincount(bus_of, minlength=len(self._bus_index)))  # (np.unique's, in O(N))
            out = (lines, bus_of, tuple(used.tolist()))
        self._routed = (self.version, out)
        return out
