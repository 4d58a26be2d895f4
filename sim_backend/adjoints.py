"""Unit responses of single buses for the read noise, kept across relay configurations.

A reading's read noise reaches it through the adjoint field of its bus (``read_noise``): the
bus's node at 1 V, every other pinned node at 0 V, nothing injected. A guarded read holds one
line on the drive bus, a sense group on the sense buses and every other line on the guard
bus, all at 0 V but the drive. Moving the drive to the next line changes the adjoint
problems of the drive bus and the guard only: a sense bus's field does not depend on which
0 V source holds each other line, so one field serves a whole sense group (N configurations),
where the noise of each configuration cost a multi-right-hand-side solve for every bus.
Fields are solved only for the buses read (and any whose compliance margin the cheap bound
cannot clear, see ``SimulatedBench._noise_verdict``).

What a field depends on is its key (``Circuit.adjoint_keys``: which lines are on the bus, which
on another source, the link resistances) and the conductances. These drift during a read: the
closed-form relaxation shows in float32 now and then, and a read may creep its weakest device.
A field depends on G smoothly and the noise scale is first order in it, so fields are kept
while no conductance has moved by more than ``DRIFT`` of itself from where the oldest of them
was solved: the σ they give is then within ~2·DRIFT of a fresh field's, far below what the
small-signal analysis itself leaves out (terms of relative order σ_k/G_k ~ 1e-3, see
``read_noise``). The reading's own solution is carried by the same tolerance, with the
first-order change of its current added (``SimulatedBench.solve_now``).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

import numpy as np

from .circuit import Circuit

DRIFT = 1e-6  # largest |ΔG/G| from the conductances the fields were solved at that keeps them


class UnitResponses:
    """Per bus, its unit response at the present relays and outputs, for the noise."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)  # keyed fields kept (least recently used dropped first)
        self._fields: OrderedDict[tuple, np.ndarray] = OrderedDict()  # key -> (n_lines,) line voltages
        self._g_ref: np.ndarray | None = None  # the conductances the fields were solved at
        self._g_key: Hashable = None  # the caller's name of the conductances last checked
        self._plain: tuple[Hashable, dict[int, np.ndarray]] | None = None  # configurations not keyed
        self.solved = 0  # fields solved for (the rest were kept ones)
        self._key_memo: tuple[tuple, dict[int, tuple]] | None = None  # (circuit's keys, bus → key)

    def clear(self) -> None:
        self._fields.clear()
        self._plain = None
        self._g_ref = None
        self._g_key = None

    def _check_drift(self, G: np.ndarray, g_key: Hashable) -> None:
        if g_key == self._g_key:
            return
        self._g_key = g_key
        ref = self._g_ref
        if ref is not None and ref.shape == G.shape:
            with np.errstate(divide="ignore", invalid="ignore"):
                moved = np.abs(G - ref) > DRIFT * np.abs(ref)
            if not moved.any():
                return
        self._fields.clear()
        self._plain = None
        self._g_ref = np.array(G, dtype=np.float64)

    def get(self, circuit: Circuit, G: np.ndarray, g_key: Hashable, wiring_key: Hashable,
            buses: Sequence[int]) -> np.ndarray | None:
        """(n_groups, len(buses)) unit responses of these bus indices, or None where a bus does
        not pin its node alone (``Circuit.unit_responses``). ``g_key`` names the conductances
        G (a new name is checked for drift); ``wiring_key`` the relays and outputs, which key
        the fields where ``Circuit.adjoint_keys`` cannot."""
        self._check_drift(G, g_key)
        keys = circuit.adjoint_keys()
        if keys is None:
            return self._unkeyed(circuit, G, wiring_key, buses)
        L = circuit.n_lines
        want = list(zip(buses, self._keys(keys, buses)))
        missing = [i for i, k in want if k not in self._fields]
        if missing:
            u = circuit.unit_responses(G, missing)
            if u is None:
                return None
            self.solved += len(missing)
            fresh = dict(zip(missing, u[:L].T))
            for i, k in want:
                if i in fresh:
                    self._fields[k] = fresh[i].copy()
        out = np.zeros((circuit.n_groups, len(buses)))  # bus nodes: 1 at its own, 0 elsewhere
        for j, (i, k) in enumerate(want):
            self._fields.move_to_end(k)
            out[:L, j] = self._fields[k]
            out[L + i, j] = 1.0  # (no 0 Ω link: every node is its own group)
        while len(self._fields) > self.capacity:
            self._fields.popitem(last=False)
        return out

    def kept(self, circuit: Circuit, G: np.ndarray, g_key: Hashable, buses: Sequence[int]) -> list[int]:
        """Which of these bus indices have a kept field now (``get`` then solves for none)."""
        self._check_drift(G, g_key)
        keys = circuit.adjoint_keys()
        if keys is None:
            return []
        return [i for i, k in zip(buses, self._keys(keys, buses)) if k in self._fields]

    def _keys(self, keys: tuple[np.ndarray, bytes], buses: Sequence[int]) -> list[tuple]:
        """``_keys`` of these buses, kept while the circuit's keys are the same object (one
        configuration: a reading and its noise verdict ask for them again)."""
        hit = self._key_memo
        if hit is None or hit[0] is not keys:
            hit = self._key_memo = (keys, {})
        memo = hit[1]
        missing = [i for i in buses if i not in memo]
        if missing:
            memo.update(zip(missing, _keys(keys, missing)))
        return [memo[i] for i in buses]

    def _unkeyed(self, circuit: Circuit, G: np.ndarray, wiring_key: Hashable, buses: Sequence[int]) -> np.ndarray | None:
        """Outside the keyed configurations: fields kept while the wiring stands."""
        if self._plain is None or self._plain[0] != wiring_key:
            self._plain = (wiring_key, {})
        kept = self._plain[1]
        missing = [i for i in buses if i not in kept]
        if missing:
            u = circuit.unit_responses(G, missing)
            if u is None:
                return None
            self.solved += len(missing)
            kept.update(zip(missing, u.T))
        return np.stack([kept[i] for i in buses], axis=1) if buses else np.zeros((circuit.n_groups, 0))


def _keys(keys: tuple[np.ndarray, bytes], buses: Sequence[int]) -> list[tuple]:
    """The key of each bus's field: per line 2 on the bus, 1 on another source, 0 on none;
    and the link resistances."""
    on_line, r_bytes = keys
    code = (on_line >= 0).astype(np.int8)
    out = []
    for i in buses:
        mine = code.copy()
        mine[on_line == i] = 2
        out.append((i, mine.tobytes(), r_bytes))
    return out
