"""The film's mesh: N×N square cells with bilinear (Q1) finite elements and contact electrodes.

Nodes sit at the cell corners ((N+1)² of them, index iy·(N+1) + ix); cell c = cy·N + cx has
corners (cx, cy), (cx+1, cy), (cx+1, cy+1), (cx, cy+1). Each cell carries its own in-plane
conductivity tensor σ_c (S/m) and the film thickness t, and contributes t·∫ ∇φᵢ·σ_c ∇φⱼ dA
to the stiffness matrix. In 2-D that integral does not depend on the cell size h, so the
element matrices below are for the unit square.

Why Q1 and not a 5-point finite-volume stencil: the AMR tensor has an off-diagonal part
(planar Hall), which a 5-point stencil drops and which a linear-triangle split turns into a
positive coupling on the split diagonal. With Q1 the couplings of one cell are
  edge neighbours: t(−σ_xx/3 + σ_yy/6), t(σ_xx/6 − σ_yy/3)
  diagonal:        t(−(σ_xx + σ_yy)/6 ∓ σ_xy/2)
so every off-diagonal entry stays ≤ 0 (an M-matrix: G_ij ≥ 0 between every pair of contacts)
while σ_xx < 2σ_yy, σ_yy < 2σ_xx and |σ_xy| < (σ_xx + σ_yy)/3. AMR of permalloy (2–3 %)
is two orders of magnitude inside those bounds (:func:`m_matrix_margin` checks it).

A contact is an electrode: a run of perimeter nodes tied to one potential (one unknown).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..blas import single_thread

# 2×2 Gauss points on the unit square
_G = np.array([0.5 - 0.5 / np.sqrt(3.0), 0.5 + 0.5 / np.sqrt(3.0)])
_GP = np.array([(x, y) for y in _G for x in _G])  # (4, 2)
_CORNERS = np.array([(0, 0), (1, 0), (1, 1), (0, 1)], dtype=float)


def _shape_gradients(x: float, y: float) -> np.ndarray:
    """∇N_k at (x, y) of the unit square's bilinear shape functions, shape (4, 2)."""
    return np.array([
        [-(1 - y), -(1 - x)],
        [(1 - y), -x],
        [y, x],
        [-y, (1 - x)],
    ])


_DN = np.stack([_shape_gradients(x, y) for x, y in _GP])  # (4 gauss, 4 nodes, 2)
_DN_FLAT = np.ascontiguousarray(_DN.transpose(1, 0, 2).reshape(4, 8))  # nodes × (gauss, component)
# element matrices per unit σ component: K = Σ_gp w·∇N σ ∇Nᵀ, w = 1/4
KXX = 0.25 * np.einsum("gi,gj->ij", _DN[:, :, 0], _DN[:, :, 0])
KYY = 0.25 * np.einsum("gi,gj->ij", _DN[:, :, 1], _DN[:, :, 1])
KXY = 0.25 * (np.einsum("gi,gj->ij", _DN[:, :, 0], _DN[:, :, 1])
              + np.einsum("gi,gj->ij", _DN[:, :, 1], _DN[:, :, 0]))


def m_matrix_margin(sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray) -> float:
    """Smallest margin (≥ 0 keeps every off-diagonal stiffness entry ≤ 0), relative to σ."""
    s = np.maximum(sxx + syy, 1e-300)
    m1 = (2 * syy - sxx) / s
    m2 = (2 * sxx - syy) / s
    m3 = ((sxx + syy) / 3 - np.abs(sxy)) / s
    return float(min(m1.min(), m2.min(), m3.min()))


@dataclass(frozen=True)
class Contact:
    """An electrode: perimeter nodes [start, stop) in counter-clockwise order from (0, 0)."""

    start: int
    stop: int


def perimeter_nodes(n: int) -> np.ndarray:
    """Perimeter node indices counter-clockwise from the corner (0, 0), length 4n."""
    w = n + 1
    bottom = [ix for ix in range(n)]
    right = [iy * w + n for iy in range(n)]
    top = [n * w + ix for ix in range(n, 0, -1)]
    left = [iy * w for iy in range(n, 0, -1)]
    return np.array(bottom + right + top + left, dtype=np.intp)


def perimeter_contacts(n_cells: int, n_contacts: int, width_fraction: float) -> list[Contact]:
    """n_contacts electrodes evenly spaced along the perimeter, each covering width_fraction
    of its share of the perimeter (at least two nodes: an electrode has a width), centred
    on its slot and kept off the corners."""
    perim = 4 * n_cells
    pitch = perim / n_contacts
    width = max(2, int(round(width_fraction * pitch)) + 1)
    if width >= pitch:
        raise ValueError(f"{n_contacts} contacts of {width} nodes do not fit on a {n_cells}-cell film's perimeter")
    out = []
    for k in range(n_contacts):
        centre = (k + 0.5) * pitch
        start = int(round(centre - (width - 1) / 2))
        out.append(Contact(start, start + width))
    return out


class _Pattern:
    """A fixed sparse pattern: entries (row, col) summed into CSR data by one bincount."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> None:
        key = rows.astype(np.int64) * shape[1] + cols
        uniq, self.slot = np.unique(key, return_inverse=True)
        self.nnz = uniq.size
        r, c = np.divmod(uniq, shape[1])
        coo = sp.coo_matrix((np.arange(1, self.nnz + 1, dtype=float), (r, c)), shape=shape).tocsr()
        # CSR order of the unique entries
        self.order = (coo.data - 1).astype(np.intp)
        self.indptr, self.indices = coo.indptr, coo.indices
        self.shape = shape
        self._inv = np.empty(self.nnz, np.intp)
        self._inv[self.order] = np.arange(self.nnz)
        self.slot = self._inv[self.slot]

    def matrix(self, weights: np.ndarray) -> sp.csr_matrix:
        data = np.bincount(self.slot, weights=weights, minlength=self.nnz)
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)


class FilmMesh:
    """N×N cells of a square film of side L, with electrodes on the perimeter (or anywhere)."""

    def __init__(self, n_cells: int, side_m: float, thickness_m: float, contacts: Sequence[Contact | Sequence[int]]) -> None:
        if n_cells < 2:
            raise ValueError(f"a film mesh needs at least 2 cells per side, got {n_cells}")
        self.n = n = int(n_cells)
        self.side_m = float(side_m)
        self.h = self.side_m / n
        self.t = float(thickness_m)
        w = n + 1
        self.n_nodes = w * w
        self.n_cells = n * n
        cy, cx = np.divmod(np.arange(n * n), n)
        base = cy * w + cx
        self.cell_nodes = np.stack([base, base + 1, base + w + 1, base + w], axis=1)  # (C, 4)
        # cell centres in m, x right, y up
        self.centres = np.stack([(cx + 0.5) * self.h, (cy + 0.5) * self.h], axis=1)

        perim = perimeter_nodes(n)
        node_contact = np.full(self.n_nodes, -1, dtype=np.intp)
        groups = []
        for k, c in enumerate(contacts):
            nodes = perim[np.arange(c.start, c.stop) % perim.size] if isinstance(c, Contact) else np.asarray(c, np.intp)
            if nodes.size == 0:
                raise ValueError(f"contact {k} covers no node")
            if np.any(node_contact[nodes] >= 0):
                raise ValueError(f"contact {k} overlaps contact {int(node_contact[nodes].max())}")
            node_contact[nodes] = k
            groups.append(nodes)
        self.contact_nodes = groups
        self.n_contacts = nc = len(groups)
        free_nodes = np.flatnonzero(node_contact < 0)
        dof = np.empty(self.n_nodes, np.intp)
        dof[node_contact >= 0] = node_contact[node_contact >= 0]
        dof[free_nodes] = nc + np.arange(free_nodes.size)
        self.dof = dof  # node -> unknown: contacts 0..nc−1, then free nodes
        self.n_free = free_nodes.size

        # the 16 couplings of every cell, split into the contact/free blocks
        di = dof[self.cell_nodes][:, :, None].repeat(4, axis=2).reshape(-1)
        dj = dof[self.cell_nodes][:, None, :].repeat(4, axis=1).reshape(-1)
        self._kxx = np.tile(KXX.reshape(-1), n * n)
        self._kyy = np.tile(KYY.reshape(-1), n * n)
        self._kxy = np.tile(KXY.reshape(-1), n * n)
        ci, cj = di < nc, dj < nc
        self._blocks = {}
        for name, m in (("ff", ~ci & ~cj), ("cf", ci & ~cj), ("cc", ci & cj)):
            sel = np.flatnonzero(m)
            r = di[sel] - (0 if name[0] == "c" else nc)
            c = dj[sel] - (0 if name[1] == "c" else nc)
            shape = (nc if name[0] == "c" else self.n_free, nc if name[1] == "c" else self.n_free)
            self._blocks[name] = (sel, _Pattern(r, c, shape))
        # the same entries placed for LAPACK: free×free upper band, the rest dense
        sel, _ = self._blocks["ff"]
        r, c = di[sel] - nc, dj[sel] - nc
        upper = c >= r
        u = int((c - r)[upper].max()) if upper.any() else 0
        self.half_bandwidth = u
        nf = self.n_free
        self._dense = {"ff": (sel[upper], (u + r[upper] - c[upper]) * nf + c[upper], (u + 1) * nf, (u + 1, nf))}
        sel, _ = self._blocks["cf"]
        self._dense["cf"] = (sel, di[sel] * nf + (dj[sel] - nc), nc * nf, (nc, nf))
        sel, _ = self._blocks["cc"]
        self._dense["cc"] = (sel, di[sel] * nc + dj[sel], nc * nc, (nc, nc))

    def dense_blocks(self, sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stiffness as LAPACK wants it, summed straight into place by one bincount each:
        A_ff in upper banded storage ((u+1) × n_free, ab[u + i − j, j] = A[i, j]), A_cf dense
        (n_contacts × n_free) and A_cc dense (n_contacts × n_contacts)."""
        w = self._weights(sxx, syy, sxy)
        out = []
        for name in ("ff", "cf", "cc"):
            sel, flat, size, shape = self._dense[name]
            out.append(np.bincount(flat, weights=w[sel], minlength=size).reshape(shape))
        return out[0], out[1], out[2]

    def _weights(self, sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray) -> np.ndarray:
        k = self._kxx.reshape(-1, 16)
        return self.t * (sxx[:, None] * k + syy[:, None] * self._kyy.reshape(-1, 16)
                         + sxy[:, None] * self._kxy.reshape(-1, 16)).reshape(-1)

    def blocks(self, sxx: np.ndarray, syy: np.ndarray, sxy: np.ndarray) -> dict[str, sp.csr_matrix]:
        """Stiffness blocks (S): 'ff' free×free, 'cf' contact×free, 'cc' contact×contact."""
        t = self.t
        per_cell = np.repeat(np.arange(self.n_cells), 16)
        w = t * (sxx[per_cell] * self._kxx + syy[per_cell] * self._kyy + sxy[per_cell] * self._kxy)
        return {name: pat.matrix(w[sel]) for name, (sel, pat) in self._blocks.items()}

    def cell_gradients(self, phi_nodes: np.ndarray) -> np.ndarray:
        """∇φ at the four Gauss points of every cell, V/m, shape (C, 4, 2)."""
        phi = phi_nodes[self.cell_nodes]  # (C, 4)
        with single_thread():
            return (phi @ _DN_FLAT).reshape(-1, 4, 2) / self.h
