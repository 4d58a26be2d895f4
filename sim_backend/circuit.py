"""Nodal analysis of instrument buses, relays and the device array.

Nodes are the array lines and the buses. Zero-ohm connections merge nodes; a bus whose
source has zero series resistance pins its node's voltage (Dirichlet); everything else is
solved from Kirchhoff's current law on the dense reduced Laplacian (the arrays here are
dense graphs: every line touches n devices). Lines reached by no source float and take
whatever voltage the network gives them, so sneak paths are real. A source whose current
would exceed its compliance becomes a current source at the limit (active-set iteration).

When every line is pinned, device voltages follow from the levels alone and no linear
system is solved (the fast path).

A read of a large array is solved with the structure it has. In a guarded read every line
is joined to a bus through its contact resistance R (~1 Ω) while a device is ~10 kΩ, so the
free block of the Laplacian is strongly diagonally dominant: its off-diagonal row sums are
ρ ≈ R·Σ_k G_lk ≲ 3 % of the diagonal at N = 256. Preconditioned conjugate gradients on it
(Jacobi preconditioner; the block is symmetric positive definite, a Laplacian plus the
links and the insulation leak) then gain ~−log10 ρ digits per iteration, each iteration one
pass over the devices (O(N²), no factorization, no BLAS threads), and every reading's own
noisy conductances are solved exactly rather than through a factorization of other ones.
A few floating lines (no bus reaches them) have no such dominance: their block is inverted
exactly and the preconditioner is block-diagonal. Configurations with many (a two-probe
read) take the dense solve, which is also the reference the structured one is tested
against (to 1e-12).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from .topology import Topology

LEAK_S = 1e-12  # insulation leak of every node to ground: fixes fully isolated nodes at 0 V
_PCG_MAX_RHO = 0.3  # largest off-diagonal/diagonal row ratio the iterative solve takes on
_PCG_MAX_LOOSE = 64  # floating lines the iterative solve takes on (their block is inverted)
_PCG_MAX_ITER = 60  # ρ ≤ 0.3 converges in far fewer; more means something is off: go dense
_PCG_MIN_FREE = 100  # free nodes; below, the dense solve is as fast (measured: crossover N≈50)
_CONFLICT_OHM = 1e-6  # two ideal sources pinning one node fight through this resistance


@dataclass
class Source:
    """A source-meter channel driving one bus (voltage source with current compliance)."""

    level_V: float = 0.0
    compliance_A: float = 0.105
    output: bool = False
    resistance_ohm: float = 0.0


@dataclass(frozen=True)
class CircuitSolution:
    line_v: np.ndarray  # (n_lines,) V
    bus_current: dict[str, float]  # A, positive = out of the source into the circuit
    device_v: np.ndarray  # (D,) V across each device, V[a] − V[b]
    device_i: np.ndarray  # (D,) A from line a to line b
    in_compliance: dict[str, bool]
    bus_v: dict[str, float] = field(default_factory=dict)  # terminal voltage of each bus, V
    link_current: np.ndarray = field(default_factory=lambda: np.zeros(0))  # A bus→line; NaN if 0 Ω
    fast_path: bool = False
    structured: bool = False  # solved by the iterative structured solve, not the dense one


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class Circuit:
    """A topology joined to named buses; configure() on relay changes, solve() per read."""

    def __init__(
        self, topology: Topology, sources: Mapping[str, Source], leak_S: float = LEAK_S
    ) -> None:
        """sources: the live Source of every bus by name (levels may change between solves;
        call :meth:`reset_modes` if outputs or series resistances change)."""
        self.topology = topology
        self.sources = sources
        self.bus_names = tuple(sources)
        self.bus_index = {b: i for i, b in enumerate(self.bus_names)}
        self.leak_S = leak_S
        self.n_lines = topology.n_lines
        self.structured = True  # False: always the dense reference solve
        self.configure([])

    def reset_modes(self) -> None:
        self._mode_cache.clear()

    # -- static part ---------------------------------------------------------
    def configure(self, links: Iterable[tuple[int, int, float]]) -> None:
        """Relay state: links as (bus index, line index, contact ohm)."""
        L, B = self.n_lines, len(self.bus_names)
        links = [(int(b), int(l), float(r)) for b, l, r in links]
        uf = _UnionFind(L + B)
        for b, l, r in links:
            if r <= 0.0:
                uf.union(L + b, l)
        roots = np.array([uf.find(i) for i in range(L + B)])
        _, group = np.unique(roots, return_inverse=True)
        self.group = group.astype(np.intp)
        self.n_groups = n = int(group.max()) + 1 if group.size else 0
        self.links = links

        dev = self.topology.devices
        ga, gb = self.group[dev[:, 0]], self.group[dev[:, 1]]
        self._dev_ga, self._dev_gb = ga, gb
        self._dev_flat = None  # built lazily: only needed when a linear solve is
        passive = np.zeros((n, n))
        counts = np.bincount(self.group, minlength=n)
        passive[np.diag_indices(n)] += self.leak_S * counts
        res = [(self.group[L + b], self.group[l], 1.0 / r) for b, l, r in links if r > 0.0]
        res = [(a, c, g) for a, c, g in res if a != c]
        self._res = np.array(res, dtype=float).reshape(-1, 3)
        for a, c, g in res:
            a, c = int(a), int(c)
            passive[a, a] += g
            passive[c, c] += g
            passive[a, c] -= g
            passive[c, a] -= g
        self._passive_static = passive
        self._counts = counts
        self._mode_cache: dict = {}
        lk = np.array([(self.group[L + b], self.group[l], r) for b, l, r in links], dtype=float).reshape(-1, 3)
        self._link_bus_g = lk[:, 0].astype(np.intp)
        self._link_line_g = lk[:, 1].astype(np.intp)
        with np.errstate(divide="ignore"):
            self._link_g = np.where(lk[:, 2] > 0, 1.0 / lk[:, 2], np.nan)

    def _device_laplacian(self, G: np.ndarray) -> np.ndarray:
        n = self.n_groups
        if self._dev_flat is None:
            ga, gb = self._dev_ga, self._dev_gb
            self._dev_flat = np.concatenate([ga * n + gb, gb * n + ga, ga * n + ga, gb * n + gb])
        w = np.concatenate([-G, -G, G, G])
        return np.bincount(self._dev_flat, weights=w, minlength=n * n).reshape(n, n)

    def _layout(self, modes: tuple) -> tuple:
        """Which groups are pinned (Dirichlet) and with which source, for one set of modes."""
        hit = self._mode_cache.get(modes)
        if hit is not None:
            return hit
        L = self.n_lines
        pinned: dict[int, int] = {}  # group -> bus index of the pinning source
        r_eff = {}
        for i, (b, mode) in enumerate(zip(self.bus_names, modes)):
            s = self.sources[b]
            if mode != "V":
                continue
            g = int(self.group[L + i])
            if s.resistance_ohm <= 0.0 and g not in pinned:
                pinned[g] = i
            else:
                r_eff[i] = s.resistance_ohm if s.resistance_ohm > 0 else _CONFLICT_OHM
        pin_groups = np.array(sorted(pinned), dtype=np.intp)
        free = np.setdiff1d(np.arange(self.n_groups), pin_groups)
        line_groups = self.group[:L]
        all_lines_pinned = bool(np.isin(line_groups, pin_groups).all())
        n = self.n_groups
        ff = (free[:, None] * n + free[None, :]).ravel()  # flat indices of the free×free block
        fp = (free[:, None] * n + pin_groups[None, :]).ravel()
        out = (pinned, r_eff, pin_groups, free, all_lines_pinned, ff, fp)
        self._mode_cache[modes] = out
        return out

    def _structure(self, modes: tuple, free: np.ndarray, pin_groups: np.ndarray) -> tuple:
        """Per set of modes, what the iterative solve reuses: the passive free×free and
        free×pinned blocks, and the devices sorted by how their ends sit (both free: the
        free-free couplings as a sparse matrix whose entries are refilled per solve; one end
        pinned: what drives the free end)."""
        key = ("structure", modes)
        hit = self._mode_cache.get(key)
        if hit is not None:
            return hit
        P = self._passive_static
        nf = free.size
        p_ff = P[np.ix_(free, free)]
        p_fp = P[np.ix_(free, pin_groups)]
        p_diag = np.diag(p_ff).copy()
        p_off_m = p_ff - np.diag(p_diag)
        p_off = np.abs(p_off_m).sum(axis=1)
        p_off_m = p_off_m if p_off.any() else None  # links to pinned buses only: diagonal
        pos = np.full(self.n_groups, -1, np.intp)
        pos[free] = np.arange(nf)
        ga, gb = self._dev_ga, self._dev_gb
        fa, fb = pos[ga], pos[gb]
        both = np.flatnonzero((fa >= 0) & (fb >= 0) & (ga != gb))
        a_only = np.flatnonzero((fa >= 0) & (fb < 0))  # end a free, end b pinned
        b_only = np.flatnonzero((fb >= 0) & (fa < 0))
        rows = np.concatenate([fa[both], fb[both]])
        cols = np.concatenate([fb[both], fa[both]])
        order = np.lexsort((cols, rows))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=nf))])
        adj = sparse.csr_matrix((np.zeros(rows.size), cols[order], indptr), shape=(nf, nf))
        dev_of_entry = np.concatenate([both, both])[order]
        hit = (p_ff, p_fp, p_diag, p_off, p_off_m, fa, fb, both, a_only, b_only, adj, dev_of_entry)
        self._mode_cache[key] = hit
        return hit

    def _solve_free_pcg(self, G: np.ndarray, modes: tuple, free: np.ndarray, pin_groups: np.ndarray,
                        v: np.ndarray, inject_f: np.ndarray, src_f: np.ndarray) -> np.ndarray | None:
        """The free nodes' voltages by Jacobi-preconditioned CG, or None where it does not apply.

        A = P_ff + diag(src + device degree) − C, with C the free-free device couplings.
        """
        (p_ff, p_fp, p_diag, p_off, p_off_m, fa, fb, both, a_only, b_only, adj,
         dev_of_entry) = self._structure(modes, free, pin_groups)
        nf = free.size
        adj.data[:] = G[dev_of_entry]
        g_b = G[both]
        deg = (np.bincount(fa[both], g_b, nf) + np.bincount(fb[both], g_b, nf)
               + np.bincount(fa[a_only], G[a_only], nf) + np.bincount(fb[b_only], G[b_only], nf))
        diag = p_diag + src_f + deg
        off = p_off + adj @ np.ones(nf)
        if not (diag > 0).all():
            return None
        # lines no bus anchors (floating): few, so their block is inverted exactly and the
        # preconditioner is block-diagonal; with many of them the dense solve is the better one
        loose = np.flatnonzero(off > _PCG_MAX_RHO * diag)
        if loose.size > _PCG_MAX_LOOSE:
            return None
        inv = 1.0 / diag
        if loose.size:
            a_uu = np.diag(diag[loose]) - adj[loose][:, loose].toarray()
            if p_off_m is not None:
                a_uu += p_off_m[np.ix_(loose, loose)]
            inv_uu = np.linalg.inv(a_uu)

        def precondition(r: np.ndarray) -> np.ndarray:
            z = r * inv
            if loose.size:
                z[loose] = inv_uu @ r[loose]
            return z
        # what the pinned nodes drive into the free ones, through links and devices
        rhs = inject_f - p_fp @ v[pin_groups]
        gb_ = self._dev_gb
        ga_ = self._dev_ga
        rhs += np.bincount(fa[a_only], G[a_only] * v[gb_[a_only]], nf)
        rhs += np.bincount(fb[b_only], G[b_only] * v[ga_[b_only]], nf)

        def op(x: np.ndarray) -> np.ndarray:
            y = diag * x - adj @ x
            if p_off_m is not None:
                y += p_off_m @ x
            return y

        x = precondition(rhs)
        r = rhs - op(x)
        z = precondition(r)
        p = z.copy()
        rz = float(r @ z)
        for _ in range(_PCG_MAX_ITER):
            if float(np.abs(z).max(initial=0.0)) <= 1e-17 * (float(np.abs(x).max(initial=0.0)) + 1e-300):
                return x
            ap = op(p)
            pap = float(p @ ap)
            if not pap > 0:
                return None
            alpha = rz / pap
            x += alpha * p
            r -= alpha * ap
            z = precondition(r)
            rz_new = float(r @ z)
            p = z + (rz_new / rz) * p if rz > 0 else z
            rz = rz_new
        return None

    # -- solve ---------------------------------------------------------------
    def solve(self, G: np.ndarray) -> CircuitSolution:
        G = np.asarray(G, dtype=np.float64)
        modes = tuple("V" if self.sources[b].output else "off" for b in self.bus_names)
        forced: dict[int, float] = {}
        for _ in range(2 * len(self.bus_names) + 4):
            sol, currents, v_group = self._solve_modes(G, modes, forced)
            worst, worst_excess, revert = None, 0.0, None
            for i, b in enumerate(self.bus_names):
                s = self.sources[b]
                if modes[i] == "V":
                    excess = abs(currents[i]) / s.compliance_A - 1.0 if s.compliance_A > 0 else np.inf
                    if excess > 1e-9 and excess > worst_excess:
                        worst, worst_excess = i, excess
                elif modes[i] == "I":
                    v_int = v_group[self.group[self.n_lines + i]] + forced[i] * s.resistance_ohm
                    if (v_int - s.level_V) * np.sign(forced[i]) > 1e-12 * max(1.0, abs(s.level_V)):
                        revert = i
            if worst is not None:
                s = self.sources[self.bus_names[worst]]
                forced[worst] = float(np.sign(currents[worst]) or 1.0) * s.compliance_A
                modes = modes[:worst] + ("I",) + modes[worst + 1 :]
            elif revert is not None:
                forced.pop(revert)
                modes = modes[:revert] + ("V",) + modes[revert + 1 :]
            else:
                return sol
        return sol

    def _solve_modes(self, G, modes, forced):
        L = self.n_lines
        n = self.n_groups
        pinned, r_eff, pin_groups, free, all_pinned, ff, fp = self._layout(modes)
        v = np.zeros(n)
        for g, i in pinned.items():
            v[g] = self.sources[self.bus_names[i]].level_V
        inject = np.zeros(n)
        for i, I in forced.items():
            inject[self.group[L + i]] += I
        src_diag = np.zeros(n)
        for i, r in r_eff.items():
            g = self.group[L + i]
            src_diag[g] += 1.0 / r
            inject[g] += self.sources[self.bus_names[i]].level_V / r

        ga, gb = self._dev_ga, self._dev_gb
        fast = all_pinned  # devices then touch no free node: no device Laplacian needed
        structured = False
        if free.size:
            x = None
            if self.structured and not fast and free.size >= _PCG_MIN_FREE:
                x = self._solve_free_pcg(G, modes, free, pin_groups, v, inject[free], src_diag[free])
            structured = x is not None
            if x is None:
                Lp = self._passive_static if fast else self._passive_static + self._device_laplacian(G)
                nf = free.size
                A = Lp.take(ff).reshape(nf, nf)
                A.flat[:: nf + 1] += src_diag[free]
                rhs = inject[free] - Lp.take(fp).reshape(nf, pin_groups.size) @ v[pin_groups]
                x = np.linalg.solve(A, rhs)
            v[free] = x
        line_v = v[self.group[:L]]
        dev = self.topology.devices
        device_v = line_v[dev[:, 0]] - line_v[dev[:, 1]]
        device_i = G * device_v
        # net current leaving each group through passive elements
        out = np.bincount(ga, weights=device_i, minlength=n) - np.bincount(gb, weights=device_i, minlength=n)
        out += self.leak_S * self._counts * v
        if self._res.size:
            a, c, g = self._res[:, 0].astype(np.intp), self._res[:, 1].astype(np.intp), self._res[:, 2]
            i_ac = g * (v[a] - v[c])
            out += np.bincount(a, weights=i_ac, minlength=n) - np.bincount(c, weights=i_ac, minlength=n)
        currents = np.zeros(len(self.bus_names))
        from_others = np.zeros(n)
        for i, b in enumerate(self.bus_names):
            g = self.group[L + i]
            if modes[i] == "I":
                currents[i] = forced[i]
            elif i in r_eff:
                currents[i] = (self.sources[b].level_V - v[g]) / r_eff[i]
            else:
                continue
            from_others[g] += currents[i]
        for g, i in pinned.items():
            currents[i] = out[g] - from_others[g]
        link_i = (v[self._link_bus_g] - v[self._link_line_g]) * self._link_g
        bus_v = {b: float(v[self.group[L + i]]) for i, b in enumerate(self.bus_names)}
        sol = CircuitSolution(
            line_v=line_v,
            bus_current={b: float(currents[i]) for i, b in enumerate(self.bus_names)},
            device_v=device_v,
            device_i=device_i,
            in_compliance={b: modes[i] == "I" for i, b in enumerate(self.bus_names)},
            bus_v=bus_v,
            link_current=link_i,
            fast_path=fast,
            structured=structured,
        )
        return sol, currents, v


def solve(
    topology: Topology,
    conductance: np.ndarray,
    sources: Mapping[str, Source],
    links: Iterable[tuple[str, str, float]],
    *,
    leak_S: float = LEAK_S,
) -> CircuitSolution:
    """One-shot solve: sources by bus name, links as (bus, line name, contact ohm)."""
    circuit = Circuit(topology, dict(sources), leak_S=leak_S)
    idx = circuit.bus_index
    circuit.configure([(idx[b], topology.line_index(l), r) for b, l, r in links])
    return circuit.solve(conductance)
