"""Node voltages kept across relay configurations that hold every line at the same levels.

A guarded read drives one line, holds a sense group on the sense buses and every other line on
the guard bus, all at 0 V but the drive, each line through its own contact. Its node voltages
depend on the level each line is held at and on the contacts, not on which 0 V bus holds a line
(``Circuit.pin_key``), so a drive line recurs with the same voltages in every sense group: N/S
times at crossbar N with S sense buses. A configuration whose key was solved at the present
conductances takes those voltages and sums its own bus currents over its own links
(``Circuit.solution_from``): bit for bit its own solve, for about a fifth of its cost at N = 256.

Solutions are kept while the conductances stay within ``DRIFT`` of a reference state, the one a
read stands in (relaxation showing in float32 and read disturb move them by less); past that,
everything kept is dropped. A kept solution is exact at the conductances it was solved at and
carried within DRIFT of them as a configuration's own is (``SimulatedBench.solve_now``: the
first-order change of a current added). Each keeps the conductances it was solved at: the
reference's own where they are those to the bit, else a copy of its own, only for arrays small
enough that a copy per solution costs little (a film's 595 pairs, whose read disturb moves them
at every reading; not a large crossbar's N²).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from .adjoints import DRIFT


@dataclass(frozen=True)
class KeptSolution:
    G: np.ndarray  # the conductances it was solved at (S), never written
    version: Hashable  # the caller's name of G
    v: np.ndarray  # node-group voltages (V)
    structured: bool  # whether the structured iterative solve gave them


class KeptSolutions:
    """Node voltages by ``Circuit.pin_key``, least recently used dropped first."""

    def __init__(self, capacity: int, keep_own: bool = False) -> None:
        self.capacity = int(capacity)
        self.keep_own = keep_own  # whether solutions at conductances off the reference are kept
        self._kept: OrderedDict[bytes, KeptSolution] = OrderedDict()
        self._ref: KeptSolution | None = None  # the reference conductances (its v unused)
        self._checked: Hashable = None  # the last version checked against them
        self._same = False  # whether its conductances are the reference's, bit for bit
        self.recalled = 0  # solutions taken from here rather than solved

    def clear(self) -> None:
        self._kept.clear()
        self._ref = None
        self._checked = None

    def _check(self, G: np.ndarray, version: Hashable) -> None:
        """Drop everything kept once G has moved past DRIFT of the reference; G then becomes it.
        A new version whose conductances are the reference's to the bit (a state merged back,
        a relaxation not yet showing) stands for the reference: its solves are kept too."""
        if version == self._checked:
            return
        self._checked = version
        self._same = False
        ref = self._ref
        if ref is not None and ref.G.shape == G.shape:
            if ref.version == version:
                self._same = True
                return
            diff = np.abs(G - ref.G)
            if not np.any(diff > DRIFT * np.abs(ref.G)):
                self._same = not diff.any()
                return
        self._kept.clear()
        self._ref = KeptSolution(G, version, np.zeros(0), False)
        self._same = True

    def get(self, key: bytes | None, G: np.ndarray, version: Hashable) -> tuple[KeptSolution, bool] | None:
        """The solution kept under ``key`` if G is within DRIFT of the conductances it was solved
        at, and whether G is those conductances to the bit (the solution is then exact)."""
        if key is None:
            return None
        self._check(G, version)
        hit = self._kept.get(key)
        if hit is None:
            return None
        self._kept.move_to_end(key)
        return hit, hit.version == version or (self._same and hit.G is self._ref.G)

    def put(self, key: bytes | None, G: np.ndarray, version: Hashable, v: np.ndarray, structured: bool) -> None:
        """Keep v, solved at conductances G (named ``version``), under ``key``."""
        if key is None:
            return
        self._check(G, version)
        if self._same:
            self._kept[key] = KeptSolution(self._ref.G, self._ref.version, v, structured)
        elif self.keep_own:
            self._kept[key] = KeptSolution(np.array(G, dtype=np.float64), version, v, structured)
        else:
            return
        self._kept.move_to_end(key)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)
