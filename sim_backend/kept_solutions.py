"""Node voltages kept across relay configurations that hold every line at the same levels.

A guarded read drives one line, holds a sense group on the sense buses and every other line on
the guard bus, all at 0 V but the drive, each line through its own contact. Its node voltages
depend on the level each line is held at and on the contacts, not on which 0 V bus holds a line
(``Circuit.pin_key``), so a drive line recurs with the same voltages in every sense group: N/S
times at crossbar N with S sense buses. A configuration whose key was solved at the present
conductances takes those voltages and sums its own bus currents over its own links
(``Circuit.solution_from``): bit for bit its own solve, for about a fifth of its cost at N = 256.

Solutions are kept while the conductances stay within ``DRIFT`` of a reference state, the one a
read stands in (relaxation showing in float32 and read disturb move them by less); a few such
states are kept, each with its solutions (a continuous film's read returns to the states of its
two temperature fields), the least recently used dropped. A kept solution is exact at the
conductances it was solved at and carried within DRIFT of them as a configuration's own is
(``SimulatedBench.solve_now``: the first-order change of a current added). Each keeps the
conductances it was solved at: the reference's own where they are those to the bit, else a copy
of its own, only for arrays small enough that a copy per solution costs little (a film's 595
pairs, whose read disturb moves them at every reading; not a large crossbar's N²).
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from .adjoints import DRIFT

REFERENCES = 4  # reference states kept, each with its solutions


@dataclass(frozen=True)
class KeptSolution:
    G: np.ndarray  # the conductances it was solved at (S), never written
    version: Hashable  # the caller's name of G
    v: np.ndarray  # node-group voltages (V)
    structured: bool  # whether the structured iterative solve gave them


@dataclass
class _Reference:
    """A reference state and the solutions kept within DRIFT of it."""

    G: np.ndarray
    version: Hashable
    kept: OrderedDict[bytes, KeptSolution] = field(default_factory=OrderedDict)


class KeptSolutions:
    """Node voltages by ``Circuit.pin_key`` under a few reference states, least recently used
    dropped first (a continuous film's read alternates between the states of two temperature
    fields, each returning to the bit: each keeps its own solutions)."""

    def __init__(self, capacity: int, keep_own: bool = False, references: int = REFERENCES) -> None:
        self.capacity = int(capacity)  # solutions kept per reference state
        self.keep_own = keep_own  # whether solutions at conductances off a reference are kept
        self.references = int(references)
        self._refs: list[_Reference] = []  # most recently used first
        self._checked: Hashable = None  # the last version checked against them
        self._same = False  # whether its conductances are the first reference's, bit for bit
        self.recalled = 0  # solutions taken from here rather than solved

    def clear(self) -> None:
        self._refs.clear()
        self._checked = None

    def _check(self, G: np.ndarray, version: Hashable) -> None:
        """Make the reference G lies within DRIFT of the first (the most recent first); none
        does: G becomes a new one, the least recently used dropped past ``references``. A new
        version whose conductances are a reference's to the bit (a state merged back, a
        relaxation not yet showing, a temperature field returned to) stands for it."""
        if version == self._checked:
            return
        self._checked = version
        for k, ref in enumerate(self._refs):
            if ref.G.shape != G.shape:
                continue
            if ref.version == version:
                same = True
            else:
                diff = np.abs(G - ref.G)
                if np.any(diff > DRIFT * np.abs(ref.G)):
                    continue
                same = not diff.any()
            self._refs.insert(0, self._refs.pop(k))
            self._same = same
            return
        self._refs.insert(0, _Reference(G, version))
        del self._refs[self.references:]
        self._same = True

    def get(self, key: bytes | None, G: np.ndarray, version: Hashable) -> tuple[KeptSolution, bool] | None:
        """The solution kept under ``key`` if G is within DRIFT of the conductances it was solved
        at, and whether G is those conductances to the bit (the solution is then exact)."""
        if key is None:
            return None
        self._check(G, version)
        ref = self._refs[0]
        hit = ref.kept.get(key)
        if hit is None:
            return None
        ref.kept.move_to_end(key)
        return hit, hit.version == version or (self._same and hit.G is ref.G)

    def put(self, key: bytes | None, G: np.ndarray, version: Hashable, v: np.ndarray, structured: bool) -> None:
        """Keep v, solved at conductances G (named ``version``), under ``key``."""
        if key is None:
            return
        self._check(G, version)
        ref = self._refs[0]
        if self._same:
            ref.kept[key] = KeptSolution(ref.G, ref.version, v, structured)
        elif self.keep_own:
            ref.kept[key] = KeptSolution(np.array(G, dtype=np.float64), version, v, structured)
        else:
            return
        ref.kept.move_to_end(key)
        while len(ref.kept) > self.capacity:
            ref.kept.popitem(last=False)
