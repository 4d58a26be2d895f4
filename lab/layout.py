"""The array and its wiring as index tables (lines, devices, crosspoints), derived once from a
valid bench file (``BenchConfig.layout``) and shared read-only by everything above it."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from lab.operations import index_pairs


@dataclass(frozen=True)
class Layout:
    """The array and its wiring as index tables, derived once from a valid bench file."""

    lines: tuple[str, ...]
    devices: np.ndarray  # (D, 2) int32 line indices, read-only
    device_cells: np.ndarray  # (D, 2) int32 matrix cells, read-only (the same array as devices on a film)
    neuron_lines: tuple[tuple[int, ...], ...]
    buses: tuple[str, ...]
    roles: dict[str, str]
    crosspoint: "Crosspoints"  # (bus, line index) -> channel id like "1A01"
    forbidden: frozenset[int]

    def __post_init__(self) -> None:
        # shared, not copied, by every BenchInfo and guard of this bench: nothing may write them
        devices = index_pairs(self.devices, "Layout.devices")
        cells = index_pairs(self.device_cells, "Layout.device_cells")
        if cells is not devices and np.array_equal(cells, devices):
            cells = devices
        object.__setattr__(self, "devices", devices)
        object.__setattr__(self, "device_cells", cells)

    def by_role(self, role: str) -> tuple[str, ...]:
        return tuple(b for b in self.buses if self.roles[b] == role)

    @property
    def owner(self) -> Mapping[str, tuple[str, int]]:
        """Crosspoint -> (bus, line index)."""
        return self.crosspoint.owners

    @property
    def owner_of(self) -> Callable[[object], tuple[str, int] | None]:
        """Crosspoint -> (bus, line index), or None for a channel id this wiring does not have."""
        return self.crosspoint.owner

    @cached_property
    def device_index(self) -> "DeviceIndex":
        return DeviceIndex(self.devices, len(self.lines))


class Crosspoints(Mapping):
    """(bus, line index) -> channel id, ``f"{prefix}{row}{column:02d}"``: the bus's matrix row
    letter between the line's mainframe and slot (``"1"``, or ``"m2:1"`` on a bench of several
    mainframes) and its column. Formatted when asked, not a dict of every bus and line (~65 B
    per device at N = 35, and the inverse as much again); ``owners`` is the inverse, by parsing
    (exact: a channel id is found only if formatting gives it back)."""

    def __init__(self, rows: Mapping[str, str], spots: Mapping[int, tuple[str, int]]) -> None:
        self._rows = dict(rows)  # bus -> row letter, in the bench file's order
        self._spots = dict(spots)  # line index -> (prefix, column), in the bench file's order
        self._bus_of_row = {row: bus for bus, row in self._rows.items()}
        self._line_of = {(prefix, f"{col:02d}"): line for line, (prefix, col) in self._spots.items()}
        self.owners = _Owners(self)

    def __getitem__(self, key: tuple[str, int]) -> str:
        try:
            bus, line = key
            prefix, col = self._spots[line]
            return f"{prefix}{self._rows[bus]}{col:02d}"
        except (KeyError, TypeError, ValueError):
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return ((bus, line) for bus in self._rows for line in self._spots)

    def __len__(self) -> int:
        return len(self._rows) * len(self._spots)

    def owner(self, channel: object) -> tuple[str, int] | None:
        """(bus, line index) of a channel id, None if it is not one of this wiring's."""
        if not isinstance(channel, str) or len(channel) < 4:
            return None
        bus = self._bus_of_row.get(channel[-3])
        line = self._line_of.get((channel[:-3], channel[-2:]))
        return None if bus is None or line is None else (bus, line)


class _Owners(Mapping):
    """Channel id -> (bus, line index) of a ``Crosspoints``, parsed on each lookup."""

    def __init__(self, xps: Crosspoints) -> None:
        self._xps = xps

    def __getitem__(self, channel: str) -> tuple[str, int]:
        hit = self._xps.owner(channel)
        if hit is None:
            raise KeyError(channel)
        return hit

    def __contains__(self, channel: object) -> bool:
        return self._xps.owner(channel) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._xps.values())

    def __len__(self) -> int:
        return len(self._xps)


class DeviceIndex(Mapping):
    """(line a, line b) -> the device joining them, in either order.

    A table over (first line, second line) of the lines that occur in each position, not a
    dict of two tuples per device (~190 B per device: 12 MB at N = 256, and the bench layer
    was 40× the simulator's own state) nor a square table of all lines (16 B per crossbar
    device): 2 B per device for a crossbar up to 181 × 181, 4 B above, ~4 B on a film.
    Where devices join the same two lines both ways round, the later orientation wins, as a
    square table filled forwards then backwards would have it.
    """

    def __init__(self, devices: np.ndarray, n_lines: int) -> None:
        self._n = n_lines
        a, b = devices[:, 0], devices[:, 1]
        self._pos_a = np.full(n_lines, -1, dtype=np.int32)
        self._pos_b = np.full(n_lines, -1, dtype=np.int32)
        ua, ub = np.unique(a), np.unique(b)
        self._pos_a[ua] = np.arange(len(ua), dtype=np.int32)
        self._pos_b[ub] = np.arange(len(ub), dtype=np.int32)
        dtype = np.int16 if len(devices) <= np.iinfo(np.int16).max else np.int32
        self._k = np.full((len(ua), len(ub)), -1, dtype=dtype)
        self._k[self._pos_a[a], self._pos_b[b]] = np.arange(len(devices), dtype=dtype)

    def _find(self, a: int, b: int) -> int:
        i, j = self._pos_a[a], self._pos_b[b]
        return int(self._k[i, j]) if i >= 0 and j >= 0 else -1

    def __getitem__(self, key: tuple[int, int]) -> int:
        try:
            a, b = (int(x) for x in key)
        except (TypeError, ValueError):
            raise KeyError(key) from None
        if not (0 <= a < self._n and 0 <= b < self._n):
            raise KeyError(key)
        k = self._find(b, a)
        if k < 0:
            k = self._find(a, b)
        if k < 0:
            raise KeyError(key)
        return k

    def _pairs(self) -> set[tuple[int, int]]:
        i, j = np.nonzero(self._k >= 0)
        la, lb = np.flatnonzero(self._pos_a >= 0), np.flatnonzero(self._pos_b >= 0)
        fwd = list(zip(la[i].tolist(), lb[j].tolist()))
        return set(fwd) | {(y, x) for x, y in fwd}

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(sorted(self._pairs()))

    def __len__(self) -> int:
        return len(self._pairs())
