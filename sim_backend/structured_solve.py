"""The structured (iterative) solve of a large array's free nodes: a mixin of ``Circuit``.

In a guarded read every line is joined to a bus through its contact resistance R (~1 Ω) while a
device is ~10 kΩ, so the free block of the Laplacian is strongly diagonally dominant (see the
``circuit`` module): Jacobi-preconditioned conjugate gradients (``pcg``) on it, with the device
couplings of a full crossbar as GEMVs on its (N, N) conductance block and otherwise as a sparse
matrix refilled per solve. Everything here is cached per set of source modes in the circuit's
``_mode_cache`` and answers None where it does not apply (the dense solve then does).
"""
from __future__ import annotations

import numpy as np
from scipy import sparse

from .pcg import pcg

_PCG_MAX_RHO = 0.3  # largest off-diagonal/diagonal row ratio the iterative solve takes on
_PCG_MAX_LOOSE = 64  # floating lines the iterative solve takes on (their block is inverted)
_PCG_MAX_ITER = 60  # ρ ≤ 0.3 converges in far fewer; more means something is off: go dense


class StructuredSolve:
    """What ``Circuit`` solves iteratively; it relies on the circuit's configured state."""

    def _structure(self, modes: tuple, free: np.ndarray, pin_groups: np.ndarray) -> tuple:
        """Per set of modes, what the iterative solve reuses: the passive free×free block (its
        diagonal, and its off-diagonal part where links join free nodes) and free×pinned block,
        and the devices: on a crossbar whose lines are all free, where its rows and columns sit
        (the couplings are then GEMVs on the (N, N) conductance block); otherwise sorted by how
        their ends sit (both free: the free-free couplings as a sparse matrix whose entries are
        refilled per solve; one end pinned: what drives the free end)."""
        key = ("structure", modes)
        hit = self._mode_cache.get(key)
        if hit is not None:
            return hit
        nf = free.size
        is_free = np.zeros(self.n_groups, bool)
        is_free[free] = True
        if is_free[self._res_a].any() and is_free[self._res_c].any() and \
                (is_free[self._res_a] & is_free[self._res_c]).any():
            P = self._passive_static
            p_fp = P[np.ix_(free, pin_groups)]
            p_ff = P[np.ix_(free, free)]
            p_diag = np.diag(p_ff).copy()
            p_off_m = p_ff - np.diag(p_diag)
            p_off = np.abs(p_off_m).sum(axis=1)
            p_off_m = p_off_m if p_off.any() else None
        else:  # every link ends at a pinned node: the passive free block is its diagonal
            p_diag, p_fp = self._passive_parts(free, pin_groups)
            p_off, p_off_m = np.zeros(nf), None
        pos = np.full(self.n_groups, -1, np.intp)
        pos[free] = np.arange(nf)
        block = self._crossbar_block(pos)
        if block is not None:  # no device has a pinned end, and the couplings need no index
            none = np.zeros(0, np.intp)
            hit = (p_fp, p_diag, p_off, p_off_m, none, none, none, none, none, None, None, block)
            self._mode_cache[key] = hit
            return hit
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
        hit = (p_fp, p_diag, p_off, p_off_m, fa, fb, both, a_only, b_only, adj, dev_of_entry, None)
        self._mode_cache[key] = hit
        return hit

    def _crossbar_block(self, pos: np.ndarray) -> tuple | None:
        """Where the rows and the columns of a crossbar sit among the free nodes, when every
        line is a free node of its own: the devices are then the dense (N, N) block G[i, j]
        coupling row i to column j, and the coupling of the free nodes is two GEMVs on it
        (no index gather over N² devices). None otherwise (the sparse couplings serve)."""
        t = self.topology
        if t.kind != "crossbar" or t.n_devices != t.n * t.n:
            return None
        n = t.n
        lp = pos[self.group[: 2 * n]]
        if (lp < 0).any() or np.bincount(lp).max() > 1:
            return None
        rows, cols = lp[:n], lp[n:]

        def span(p: np.ndarray) -> slice | np.ndarray:  # a slice where contiguous: views, not copies
            return slice(int(p[0]), int(p[0]) + n) if np.array_equal(p, np.arange(p[0], p[0] + n)) else p

        return span(rows), span(cols), rows, cols

    def _solve_free_pcg(self, G: np.ndarray, modes: tuple, free: np.ndarray, pin_groups: np.ndarray,
                        v: np.ndarray, inject_f: np.ndarray, src_f: np.ndarray) -> np.ndarray | None:
        """The free nodes' voltages by Jacobi-preconditioned CG, or None where it does not apply.

        A = P_ff + diag(src + device degree) − C, with C the free-free device couplings.
        """
        (p_fp, p_diag, p_off, p_off_m, fa, fb, both, a_only, b_only, adj,
         dev_of_entry, block) = self._structure(modes, free, pin_groups)
        nf = free.size
        if block is not None:  # every device joins two free lines: G as the (N, N) block
            r_at, c_at, r_pos, c_pos = block
            Gm = G.reshape(r_pos.size, c_pos.size)
            deg = np.zeros(nf)  # row and column sums, as GEMVs (faster than the pairwise sums)
            deg[r_at] = Gm @ np.ones(c_pos.size)
            deg[c_at] = np.ones(r_pos.size) @ Gm
            off = p_off + deg

            def couple(x: np.ndarray) -> np.ndarray:
                y = np.zeros(x.shape)
                y[r_at] = Gm @ x[c_at]
                y[c_at] = x[r_at] @ Gm if x.ndim == 1 else Gm.T @ x[r_at]
                return y

            def couple_block(u: np.ndarray) -> np.ndarray:
                """The couplings among free nodes u, densely (u indexes the free nodes)."""
                rk, ck = np.isin(u, r_pos), np.isin(u, c_pos)
                row_of = np.full(nf, -1, np.intp)
                row_of[r_pos] = np.arange(r_pos.size)
                col_of = np.full(nf, -1, np.intp)
                col_of[c_pos] = np.arange(c_pos.size)
                out = np.zeros((u.size, u.size))
                sub = Gm[np.ix_(row_of[u[rk]], col_of[u[ck]])]
                out[np.ix_(np.flatnonzero(rk), np.flatnonzero(ck))] = sub
                out[np.ix_(np.flatnonzero(ck), np.flatnonzero(rk))] = sub.T
                return out
        else:
            adj.data[:] = G[dev_of_entry]
            g_b = G[both]
            deg = (np.bincount(fa[both], g_b, nf) + np.bincount(fb[both], g_b, nf)
                   + np.bincount(fa[a_only], G[a_only], nf) + np.bincount(fb[b_only], G[b_only], nf))
            off = p_off + adj @ np.ones(nf)

            def couple(x: np.ndarray) -> np.ndarray:
                return adj @ x

            def couple_block(u: np.ndarray) -> np.ndarray:
                return adj[u][:, u].toarray()
        diag = p_diag + src_f + deg
        if not (diag > 0).all():
            return None
        # lines no bus anchors (floating): few, so their block is inverted exactly and the
        # preconditioner is block-diagonal; with many of them the dense solve is the better one
        loose = np.flatnonzero(off > _PCG_MAX_RHO * diag)
        if loose.size > _PCG_MAX_LOOSE:
            return None
        inv = 1.0 / diag
        if loose.size:
            a_uu = np.diag(diag[loose]) - couple_block(loose)
            if p_off_m is not None:
                a_uu += p_off_m[np.ix_(loose, loose)]
            inv_uu = np.linalg.inv(a_uu)

        def precondition(r: np.ndarray) -> np.ndarray:
            z = r * inv if r.ndim == 1 else r * inv[:, None]
            if loose.size:
                z[loose] = inv_uu @ r[loose]
            return z
        # what the pinned nodes drive into the free ones, through links and devices
        rhs = inject_f - p_fp @ v[pin_groups]
        gb_ = self._dev_gb
        ga_ = self._dev_ga
        if block is None:
            for col, vc in zip(rhs.T, v.T) if v.ndim == 2 else ((rhs, v),):
                col += np.bincount(fa[a_only], G[a_only] * vc[gb_[a_only]], nf)
                col += np.bincount(fb[b_only], G[b_only] * vc[ga_[b_only]], nf)

        def op(x: np.ndarray) -> np.ndarray:
            y = (diag * x if x.ndim == 1 else diag[:, None] * x) - couple(x)
            if p_off_m is not None:
                y += p_off_m @ x
            return y

        # (a warm start from the last reading's solution was measured: read noise of 1e-3
        # leaves it no better than this guess, and it would make a result depend on history)
        # unit responses feed a noise σ: 1e-10 of the field is exact for it, and saves iterations
        return pcg(op, precondition, rhs, _PCG_MAX_ITER, 1e-17 if rhs.ndim == 1 else 1e-10)

    # -- solve ---------------------------------------------------------------
