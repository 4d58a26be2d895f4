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
pass over the devices (O(N²), no factorization; on a crossbar whose lines are all free
nodes two GEMVs on the (N, N) conductance block, ``G @ x_cols`` and ``x_rows @ G``). The
unit responses a reading's read noise is carried by (``unit_responses``, ``read_noise.py``)
are the same system with several right-hand sides at once (``structured_solve.py``).
A few floating lines (no bus reaches them) have no such dominance: their block is inverted
exactly and the preconditioner is block-diagonal. Configurations with many (a two-probe
read) take the dense solve, which is also the reference the structured one is tested
against (to 1e-12).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .blas import single_thread_for
from .structured_solve import StructuredSolve
from .topology import Topology

LEAK_S = 1e-12  # insulation leak of every node to ground: fixes fully isolated nodes at 0 V
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
    G: np.ndarray  # (D,) S, the conductances solved at (read-only, or this solution's own)
    in_compliance: dict[str, bool]
    bus_v: dict[str, float] = field(default_factory=dict)  # terminal voltage of each bus, V
    link_current: np.ndarray = field(default_factory=lambda: np.zeros(0))  # A bus→line; NaN if 0 Ω
    fast_path: bool = False
    structured: bool = False  # solved by the iterative structured solve, not the dense one

    @cached_property
    def device_i(self) -> np.ndarray:
        """(D,) A from line a to line b: formed when asked (a read's solutions rarely are)."""
        return self.G * self.device_v


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


class Circuit(StructuredSolve):
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
        # a crossbar's device (i, j) is row i against column j in row-major order: its
        # voltages are then one outer difference, not two gathers over N² devices
        n = topology.n
        dev = topology.devices
        self._rows_cols = (topology.kind == "crossbar" and dev.shape[0] == n * n and self.n_lines == 2 * n
                           and np.array_equal(dev[:, 0], np.repeat(np.arange(n), n))
                           and np.array_equal(dev[:, 1], np.tile(np.arange(n, 2 * n), n)))
        self._dev_lines = (dev[:, 0].astype(np.intp), dev[:, 1].astype(np.intp))
        self._index_kept: dict[bytes, list] = {}  # device terms' places in the dense blocks, by structure
        self._layouts_kept: dict[tuple, tuple] = {}  # ``_layout``'s answers, by structure
        self.configure([])

    @property
    def links(self) -> list[tuple[int, int, float]]:
        """The relay state configured: (bus index, line index, contact ohm) per link."""
        return [(int(b), int(l), float(r)) for b, l, r in self._links.tolist()]

    def reset_modes(self) -> None:
        self._mode_cache.clear()

    # -- static part ---------------------------------------------------------
    def configure(self, links: Iterable[tuple[int, int, float]] | np.ndarray) -> None:
        """Relay state: links as (bus index, line index, contact ohm), or a (k, 3) array of them."""
        L, B = self.n_lines, len(self.bus_names)
        lk = np.array(links if isinstance(links, (list, np.ndarray)) else list(links), dtype=float).reshape(-1, 3)
        self._links = lk
        link_bus_i, link_line_i = lk[:, 0].astype(np.intp), lk[:, 1].astype(np.intp)
        zero = lk[:, 2] <= 0.0
        merged = [(int(b), int(l)) for b, l in zip(link_bus_i[zero], link_line_i[zero])] if zero.any() else []
        if merged:
            uf = _UnionFind(L + B)
            for b, l in merged:
                uf.union(L + b, l)
            roots = np.array([uf.find(i) for i in range(L + B)])
            _, group = np.unique(roots, return_inverse=True)
        else:  # no 0 Ω link: every node is its own group, in order (as np.unique would number them)
            group = np.arange(L + B)
        self.group = group.astype(np.intp)
        self._groups_key = self.group.tobytes() if merged else None  # None: every node its own group
        self.n_groups = n = int(group.max()) + 1 if group.size else 0
        link_bus = self.group[L + link_bus_i]
        link_line = self.group[link_line_i]

        if merged:
            dev = self.topology.devices
            ga, gb = self.group[dev[:, 0]], self.group[dev[:, 1]]
        else:  # the groups are the lines themselves
            ga, gb = self._dev_lines
        self._dev_ga, self._dev_gb = ga, gb
        self._dev_flat = None  # built lazily: only needed when a linear solve is
        counts = np.bincount(self.group, minlength=n)
        keep = lk[:, 2] > 0.0
        keep[keep] = link_bus[keep] != link_line[keep]
        a, c = link_bus[keep], link_line[keep]
        g = 1.0 / lk[keep, 2]
        self._res_a, self._res_c, self._res_g = a, c, g
        self._passive_dense = None  # (n, n): 2 MB at N = 256, built only where a solve needs it
        self._counts = counts
        self._mode_cache: dict = {}
        self._link_bus_g = link_bus
        self._link_line_g = link_line
        with np.errstate(divide="ignore"):
            self._link_g = np.where(lk[:, 2] > 0, 1.0 / lk[:, 2], np.nan)

    @property
    def _passive_static(self) -> np.ndarray:
        """The Laplacian of the links and the insulation leak, (n_groups, n_groups)."""
        if self._passive_dense is None:
            n = self.n_groups
            passive = np.zeros((n, n))
            passive[np.diag_indices(n)] += self.leak_S * self._counts
            a, c, g = self._res_a, self._res_c, self._res_g
            if g.size:  # each link's four entries in link order, as one loop over the links adds them
                rows = np.stack([a, c, a, c], axis=1).ravel()
                cols = np.stack([a, c, c, a], axis=1).ravel()
                np.add.at(passive, (rows, cols), np.stack([g, g, -g, -g], axis=1).ravel())
            self._passive_dense = passive
        return self._passive_dense

    def _passive_parts(self, free: np.ndarray, pin_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The passive Laplacian's diagonal on the free nodes and its free×pinned block, entry
        for entry as ``_passive_static`` sums them (same terms, same order), without the
        (n, n) matrix: where every link ends at a pinned node, that is all of it there is."""
        n = self.n_groups
        diag = self.leak_S * self._counts
        a, c, g = self._res_a, self._res_c, self._res_g
        fp = np.zeros((free.size, pin_groups.size))
        if g.size:
            np.add.at(diag, np.stack([a, c], axis=1).ravel(), np.stack([g, g], axis=1).ravel())
            row = np.full(n, -1, np.intp)
            row[free] = np.arange(free.size)
            col = np.full(n, -1, np.intp)
            col[pin_groups] = np.arange(pin_groups.size)
            r = np.stack([row[a], row[c]], axis=1).ravel()
            k = np.stack([col[c], col[a]], axis=1).ravel()
            at = (r >= 0) & (k >= 0)
            np.add.at(fp, (r[at], k[at]), np.stack([-g, -g], axis=1).ravel()[at])
        return diag[free], fp

    def _device_laplacian(self, G: np.ndarray) -> np.ndarray:
        n = self.n_groups
        w = np.concatenate([-G, -G, G, G])
        return np.bincount(self._device_flat(), weights=w, minlength=n * n).reshape(n, n)

    def _device_flat(self) -> np.ndarray:
        """Flat (n·n) indices of each device's four Laplacian entries: ab, ba, aa, bb."""
        if self._dev_flat is None:
            n, ga, gb = self.n_groups, self._dev_ga, self._dev_gb
            self._dev_flat = np.concatenate([ga * n + gb, gb * n + ga, ga * n + ga, gb * n + gb])
        return self._dev_flat

    def _dense_blocks(self, G: np.ndarray, modes: tuple, ff: np.ndarray, fp: np.ndarray, free_n: int,
                      pin_n: int) -> tuple:
        """The free×free and free×pinned blocks of passive + device Laplacian, bit for bit
        ``(P + D(G)).take(ff)`` and ``.take(fp)``: the device terms are summed straight into
        the blocks' own entries, in the order the full Laplacian's bincount adds them."""
        key = ("dense", modes)
        hit = self._mode_cache.get(key)
        if hit is None:
            _, _, pin_groups, free, _, _, _ = self._layout(modes)
            passive = self._passive_blocks(free, pin_groups)
            if passive is None:
                P = self._passive_static
                passive = (P.take(ff), P.take(fp))
            index = self._device_index(free, pin_groups, ff, fp)
            hit = self._mode_cache[key] = tuple((p, *ix) for p, ix in zip(passive, index))
        out = []
        for p_blk, dest, dev, sign, size in hit:
            if dest.size:
                out.append(p_blk + np.bincount(dest, weights=G.take(dev) * sign, minlength=size))
            else:  # no device term here: the full Laplacian's entries are P + 0.0
                out.append(p_blk + 0.0)
        nf = free_n
        return out[0].reshape(nf, nf), out[1].reshape(nf, pin_n)

    def _passive_blocks(self, free: np.ndarray, pin_groups: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``_passive_static.take`` of the free×free and free×pinned blocks (flat) where every
        link ends at a pinned node (the free block is then its diagonal), from ``_passive_parts``
        without the (n, n) matrix; None otherwise."""
        at_pin = np.zeros(self.n_groups, bool)
        at_pin[pin_groups] = True
        if not (at_pin[self._res_a] | at_pin[self._res_c]).all():
            return None
        diag, fp = self._passive_parts(free, pin_groups)
        ff = np.zeros((free.size, free.size))
        ff.flat[:: free.size + 1] = diag
        return ff.ravel(), fp.ravel()

    def _device_index(self, free: np.ndarray, pin_groups: np.ndarray, ff: np.ndarray, fp: np.ndarray) -> tuple:
        """Where the devices' Laplacian terms land in the free×free and free×pinned blocks (entry,
        device, sign, block size): a function of the node groups and of which are pinned, not of
        the links, so kept across relay changes that keep them (every configuration of a
        guarded read: each line on some bus through its contact)."""
        key = (self.group.tobytes(), free.tobytes(), pin_groups.tobytes())
        kept = self._index_kept
        hit = kept.get(key)
        if hit is None:
            n = self.n_groups
            dev_flat = self._device_flat()
            D = self._dev_ga.size
            sign = np.repeat([-1.0, -1.0, 1.0, 1.0], D)
            hit = []
            for flat in (ff, fp):
                at = np.full(n * n, -1, np.intp)
                at[flat] = np.arange(flat.size)
                k = at[dev_flat]
                sel = np.flatnonzero(k >= 0)
                hit.append((k[sel], sel % D, sign[sel], flat.size))
            if len(kept) >= 4:
                kept.pop(next(iter(kept)))
            kept[key] = hit
        return hit

    def _layout(self, modes: tuple) -> tuple:
        """Which groups are pinned (Dirichlet) and with which source, for one set of modes."""
        hit = self._mode_cache.get(modes)
        if hit is not None:
            return hit
        # a function of the node groups, the modes and the series resistances alone: kept across
        # relay changes that keep them (a guarded read's every configuration)
        kept_key = (self._groups_key, modes, tuple(s.resistance_ohm for s in self.sources.values()))
        hit = self._layouts_kept.get(kept_key)
        if hit is not None:
            self._mode_cache[modes] = hit
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
        n = self.n_groups
        at_pin = np.zeros(n, bool)
        at_pin[pin_groups] = True
        free = np.flatnonzero(~at_pin)  # (np.setdiff1d's answer, without its sort)
        line_pinned = at_pin[self.group[:L]]
        all_lines_pinned = bool(line_pinned.all())
        # the pinned sources' currents come from what leaves their nodes; devices count only
        # where one of their ends is pinned (a line joined to a bus through 0 Ω)
        devices_at_pins = bool(line_pinned.any()) and bool(at_pin[self._dev_ga].any() or at_pin[self._dev_gb].any())
        pin_bus = np.array([pinned[g] for g in pin_groups.tolist()], dtype=np.intp)  # the source of each
        out = (pinned, r_eff, pin_groups, free, all_lines_pinned, devices_at_pins, pin_bus)
        self._mode_cache[modes] = out
        if len(self._layouts_kept) >= 16:
            self._layouts_kept.pop(next(iter(self._layouts_kept)))
        self._layouts_kept[kept_key] = out
        return out

    def _flat_blocks(self, modes: tuple, free: np.ndarray, pin_groups: np.ndarray) -> tuple:
        """Flat indices of the free×free and free×pinned blocks of an n×n matrix (dense solve only)."""
        key = ("flat", modes)
        hit = self._mode_cache.get(key)
        if hit is None:
            n = self.n_groups
            hit = self._mode_cache[key] = ((free[:, None] * n + free[None, :]).ravel(),
                                           (free[:, None] * n + pin_groups[None, :]).ravel())
        return hit

    def solve(self, G: np.ndarray) -> CircuitSolution:
        with single_thread_for(self.topology.n_devices):
            return self._solve(G)

    def _solve(self, G: np.ndarray) -> CircuitSolution:
        G = np.asarray(G, dtype=np.float64)
        modes = tuple("V" if self.sources[b].output else "off" for b in self.bus_names)
        forced: dict[int, float] = {}
        for _ in range(2 * len(self.bus_names) + 4):
            sol, currents, v_group = self._solve_modes(G, modes, forced)
            worst, worst_excess, revert = None, 0.0, None
            cur = currents.tolist()  # Python floats: the same IEEE arithmetic, without numpy scalars
            for i, b in enumerate(self.bus_names):
                s = self.sources[b]
                if modes[i] == "V":
                    excess = abs(cur[i]) / s.compliance_A - 1.0 if s.compliance_A > 0 else np.inf
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

    def _free_voltages(self, G: np.ndarray, modes: tuple, v: np.ndarray, inject_f: np.ndarray,
                       src_f: np.ndarray, sourced: bool) -> tuple[np.ndarray, bool]:
        """The free nodes' voltages given the pinned ones in v (n,), or for several sets of
        pinned voltages at once (v (n, m), inject_f (nf, m)); and whether the structured solve
        gave them."""
        _, _, pin_groups, free, fast, _, _ = self._layout(modes)
        if self.structured and not fast and free.size >= _PCG_MIN_FREE:
            x = self._solve_free_pcg(G, modes, free, pin_groups, v, inject_f, src_f)
            if x is not None:
                return x, True
        nf = free.size
        ff, fp = self._flat_blocks(modes, free, pin_groups)
        if fast:
            Lp = self._passive_static
            A = Lp.take(ff).reshape(nf, nf)
            a_fp = Lp.take(fp).reshape(nf, pin_groups.size)
        else:
            A, a_fp = self._dense_blocks(G, modes, ff, fp, nf, pin_groups.size)
        if sourced:  # (else every term is +0.0: the diagonal and the injection as they are)
            A.flat[:: nf + 1] += src_f
            rhs = inject_f - a_fp @ v[pin_groups]
        else:
            rhs = np.subtract(0.0, a_fp @ v[pin_groups])
        return np.linalg.solve(A, rhs), False

    @property
    def rows_and_columns(self) -> bool:
        """A full crossbar, lines rows then columns: device (r, c) is number r·N + c."""
        return bool(self._rows_cols)

    def device_differences(self, v: np.ndarray) -> np.ndarray:
        """v[a] − v[b] of every device from node-group voltages v (n,) or (n, m) → (D,) or (D, m)
        (v[group of a line] is that line's voltage)."""
        if v.ndim == 1 and self._rows_cols:
            line_v = v[self.group[: self.n_lines]]
            nr = self.topology.n
            return np.subtract.outer(line_v[:nr], line_v[nr:]).ravel()
        return v[self._dev_ga] - v[self._dev_gb]

    def adjoint_keys(self) -> tuple[np.ndarray, bytes] | None:
        """What the unit response of each bus depends on, where that is simply said: every relay
        joins one line to one source in voltage mode with no series resistance, through a
        resistance of its own (no 0 Ω link), at most one per line. Bus b's adjoint problem is
        then fixed by which lines are on b, which on some other source (held at 0 V: which one
        does not matter) and the link resistances, so one field serves every relay
        configuration with that partition. Returns (per line the bus index on it, −1 for
        none; the link resistances as bytes), or None where the configuration is not so."""
        hit = self._mode_cache.get("adjoint")
        if hit is not None:
            return hit[0]
        out = None
        L, lk = self.n_lines, self._links
        bus_i, line_i, r = lk[:, 0].astype(np.intp), lk[:, 1].astype(np.intp), lk[:, 2]
        pinned = np.array([self.sources[b].output and self.sources[b].resistance_ohm <= 0.0
                           for b in self.bus_names], bool)
        if (r > 0).all() and pinned[bus_i].all() and np.bincount(line_i, minlength=L).max(initial=0) <= 1:
            on_line = np.full(L, -1, np.intp)
            on_line[line_i] = bus_i
            r_line = np.zeros(L)
            r_line[line_i] = r
            out = (on_line, r_line.tobytes())
        self._mode_cache["adjoint"] = (out,)
        return out

    def unit_responses(self, G: np.ndarray, buses: list[int]) -> np.ndarray | None:
        """Node-group voltages (n_groups, m) with bus buses[j]'s node held at 1 V, every other
        pinned node at 0 V and no current injected: the adjoint fields of a small-signal
        analysis at these relays and outputs (the sources' series resistances stay). None
        if a bus does not pin its node alone (off, behind a resistance, or sharing it)."""
        G = np.asarray(G, dtype=np.float64)
        modes = tuple("V" if self.sources[b].output else "off" for b in self.bus_names)
        pinned, r_eff, _, free, _, _, _ = self._layout(modes)
        L, n = self.n_lines, self.n_groups
        u = np.zeros((n, len(buses)))
        for j, i in enumerate(buses):
            g = int(self.group[L + i])
            if pinned.get(g) != i or i in r_eff:
                return None
            u[g, j] = 1.0
        if free.size:
            src = np.zeros(n)
            for i, r in r_eff.items():
                src[self.group[L + i]] += 1.0 / r
            with single_thread_for(self.topology.n_devices):
                u[free], _ = self._free_voltages(G, modes, u, np.zeros((free.size, len(buses))), src[free], bool(r_eff))
        return u

    def _solve_modes(self, G, modes, forced):
        L = self.n_lines
        n = self.n_groups
        pinned, r_eff, pin_groups, free, all_pinned, devices_at_pins, pin_bus = self._layout(modes)
        v = np.zeros(n)
        v[pin_groups] = [self.sources[self.bus_names[i]].level_V for i in pin_bus]
        sourced = bool(forced or r_eff)  # some bus is a current source or sits behind a resistance
        inject = np.zeros(n)
        for i, I in forced.items():
            inject[self.group[L + i]] += I
        src_diag = np.zeros(n)
        for i, r in r_eff.items():
            g = self.group[L + i]
            src_diag[g] += 1.0 / r
            inject[g] += self.sources[self.bus_names[i]].level_V / r
        structured = False
        if free.size:
            v[free], structured = self._free_voltages(G, modes, v, inject[free], src_diag[free], sourced)
        return self._solution(G, modes, forced, v, structured)

    def pin_key(self) -> bytes | None:
        """What the node voltages depend on besides the conductances, where that is simply said:
        in the configurations of ``adjoint_keys`` (every line on at most one source in voltage
        mode without series resistance, through a contact of its own), the level each line's
        source holds and its contact, the outputs and levels of the buses, not which bus holds
        which line. A guarded read drives each line once per sense group with every other line
        at 0 V: the same key, so the same node voltages (``solution_from``). None otherwise."""
        keys = self.adjoint_keys()
        if keys is None or any(s.output and s.resistance_ohm > 0.0 for s in self.sources.values()):
            return None
        on_line, r_bytes = keys
        levels = np.array([s.level_V if s.output else np.nan for s in self.sources.values()] + [np.nan])
        # (on_line −1: no source, NaN); and which solve gives the voltages
        return levels.tobytes() + levels[on_line].tobytes() + r_bytes + bytes([self.structured])

    def solution_from(self, G: np.ndarray, v: np.ndarray, structured: bool) -> CircuitSolution | None:
        """The solution at conductances G of the present configuration whose node-group voltages
        are v, solved in another configuration of the same ``pin_key`` at the same G: bit for
        bit what ``solve(G)`` gives here (its free block, right-hand side and iteration are the
        same numbers: a line's one link enters them as its contact and its source's level,
        whichever bus that is), the bus currents summed over this configuration's links. None
        if a source would exceed its compliance (``solve`` then finds the limit)."""
        G = np.asarray(G, dtype=np.float64)
        modes = tuple("V" if self.sources[b].output else "off" for b in self.bus_names)
        sol, currents, _ = self._solution(G, modes, {}, v.copy(), structured)
        for i, b in enumerate(self.bus_names):
            s = self.sources[b]
            if modes[i] == "V" and (s.compliance_A <= 0 or abs(currents[i]) / s.compliance_A - 1.0 > 1e-9):
                return None
        return sol

    def _solution(self, G, modes, forced, v, structured):
        """The solution and bus currents from the node-group voltages v (n,), free ones solved."""
        L = self.n_lines
        n = self.n_groups
        pinned, r_eff, pin_groups, free, all_pinned, devices_at_pins, pin_bus = self._layout(modes)
        sourced = bool(forced or r_eff)
        ga, gb = self._dev_ga, self._dev_gb
        fast = all_pinned  # devices then touch no free node: no device Laplacian needed
        line_v = v[self.group[:L]]
        device_v = self.device_differences(v)
        if G.flags.writeable:  # (a caller's array it may write into after: not kept)
            G = G.copy()
            G.flags.writeable = False
        # net current leaving each group through passive elements (only the pinned groups' is used)
        if devices_at_pins:
            device_i = G * device_v
            out = np.bincount(ga, weights=device_i, minlength=n) - np.bincount(gb, weights=device_i, minlength=n)
            out += self.leak_S * self._counts * v
        else:
            out = self.leak_S * self._counts * v
        if self._res_g.size:
            a, c, g = self._res_a, self._res_c, self._res_g
            i_ac = g * (v[a] - v[c])
            out += np.bincount(a, weights=i_ac, minlength=n) - np.bincount(c, weights=i_ac, minlength=n)
        currents = np.zeros(len(self.bus_names))
        if sourced:
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
            currents[pin_bus] = out[pin_groups] - from_others[pin_groups]
        else:  # what leaves a pinned node is its source's current
            currents[pin_bus] = out[pin_groups]
        link_i = (v[self._link_bus_g] - v[self._link_line_g]) * self._link_g
        bus_v = dict(zip(self.bus_names, v[self.group[L:]].tolist()))
        sol = CircuitSolution(
            line_v=line_v,
            bus_current=dict(zip(self.bus_names, currents.tolist())),
            device_v=device_v,
            G=G,
            in_compliance={b: m == "I" for b, m in zip(self.bus_names, modes)},
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
