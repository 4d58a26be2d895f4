"""Array layouts: which pairs of lines each two-terminal device joins.

A layout is only a list of (line_a, line_b) devices plus names; the circuit and the
physics never look at the kind, so new layouts need nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class Topology:
    kind: str
    n: int
    line_names: tuple[str, ...]
    devices: np.ndarray  # (D, 2) int32 line indices; a device sees V[a] − V[b]
    device_cells: np.ndarray  # (D, 2) int32 weight-matrix cell (i, j) of each device
    neuron_lines: tuple[tuple[int, ...], ...]
    tied: bool = False
    _line_index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_line_index", {n: i for i, n in enumerate(self.line_names)})
        for arr in (self.devices, self.device_cells):
            arr.setflags(write=False)

    @property
    def n_lines(self) -> int:
        return len(self.line_names)

    @property
    def n_devices(self) -> int:
        return int(self.devices.shape[0])

    def line_index(self, name: str) -> int:
        try:
            return self._line_index[name]
        except KeyError:
            raise KeyError(
                f"unknown line {name!r} in {self.kind} of {self.n} (lines "
                f"{self.line_names[0]}..{self.line_names[-1]})"
            ) from None

    def device_index(self, i: int, j: int) -> int:
        """Index of the device at matrix cell (i, j) (a film cell is symmetric)."""
        n = self.n
        if not (0 <= i < n and 0 <= j < n):
            raise IndexError(f"cell ({i}, {j}) outside a {self.kind} of {n}")
        if self.kind == "crossbar":
            return i * n + j
        if i == j:
            raise IndexError(f"a film has no device between contact {i} and itself")
        a, b = min(i, j), max(i, j)
        # row-major upper triangle without diagonal
        return a * n - a * (a + 1) // 2 + (b - a - 1)

    def to_matrix(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Per-device values as an n×n matrix (symmetric for a film)."""
        m = np.full((self.n, self.n), fill, dtype=np.result_type(values, np.float64))
        i, j = self.device_cells[:, 0], self.device_cells[:, 1]
        m[i, j] = values
        if self.kind == "film":
            m[j, i] = values
        return m


def film(n: int) -> Topology:
    """A multi-terminal film with n contacts: one device path per contact pair."""
    if n < 2:
        raise ValueError(f"a film needs at least 2 contacts, got {n}")
    a, b = np.triu_indices(n, 1)
    devices = np.stack([a, b], axis=1).astype(np.int32)
    return Topology(
        kind="film",
        n=n,
        line_names=tuple(f"C{i}" for i in range(n)),
        devices=devices,
        device_cells=devices,
        neuron_lines=tuple((i,) for i in range(n)),
    )


def crossbar(n: int, tied: bool = False) -> Topology:
    """An n×n crossbar: rows R0.., columns K0..; device (i, j) joins row i and column j."""
    if n < 1:
        raise ValueError(f"a crossbar needs at least 1 row, got {n}")
    rows = np.repeat(np.arange(n, dtype=np.int32), n)
    cols = np.tile(np.arange(n, dtype=np.int32), n)
    return Topology(
        kind="crossbar",
        n=n,
        line_names=tuple(f"R{i}" for i in range(n)) + tuple(f"K{i}" for i in range(n)),
        devices=np.stack([rows, cols + n], axis=1),
        device_cells=np.stack([rows, cols], axis=1),
        neuron_lines=tuple((i, n + i) if tied else (i,) for i in range(n)),
        tied=tied,
    )
