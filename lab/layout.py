"""The array and its wiring as index tables (lines, devices, crosspoints), derived once from a
valid bench file (``BenchConfig.layout``) and shared read-only by everything above it."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
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
    crosspoint: dict[tuple[str, int], str]  # (bus, line index) -> channel id like "1A01"
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

    @cached_property
    def owner(self) -> dict[str, tuple[str, int]]:
        """Crosspoint -> (bus, line index)."""
        return {xp: key for key, xp in self.crosspoint.items()}

    @cached_property
    def device_index(self) -> "DeviceIndex":
        return DeviceIndex(self.devices, len(self.lines))


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
