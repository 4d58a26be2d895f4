"""Heat in the film: an implicit (backward-Euler) heat equation on the cell grid.

Per cell c (area h², thickness t):

    C·dT_c/dt = P_c − G_s·(T_c − T0) + Σ_nb G_κ·(T_nb − T_c)

C = c_v·t·h² (J/K), P_c the Joule power of the cell (W, ∫ j·E dV), G_s = h²/(R_s·L²) the
cell's share of the film-to-substrate conductance (R_s = substrate_K_per_W for the whole film
of side L), G_κ = κ·t + G_sub the lateral conductance between edge neighbours (W/K; h cancels
on a square grid): the film's own κ·t plus the substrate's lateral spreading under it
(substrate_spreading_W_per_K, a lumped sheet); film edges are adiabatic. Backward Euler is unconditionally stable, and for a
step much longer than the film's time constant C/G_s (tens of ns for a µm film on Si) it
returns the steady state: the film follows power, not instantly but within nanoseconds.

The substrate is not meshed in depth: its 3-D spreading is lumped into R_s (uniform loss per
area) plus the lateral sheet G_sub, which spreads a µm hot spot over the diffusion length
√(G_κ/g_s) (g_s = 1/(R_s·L²)) as the substrate does around a small source. The resistivity rises with T (TCR),
so under fixed contact voltages a cell's power falls as it heats, P_c(T) ≈ P_c·s(T_ref)/s(T);
a few Picard iterations of that local feedback converge (dP/dT < 0).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import scipy.linalg.lapack as lapack

from ..presets import FilmPreset
from ..blas import single_thread
from .texture import resistivity_scale

_CACHE = 8  # factorizations kept (one per distinct step length)


class HeatSolver:
    def __init__(self, n: int, p: FilmPreset) -> None:
        self.n = n
        self.p = p
        h2 = p.cell_m**2
        self.C = p.heat_capacity_J_per_m3_K * p.thickness_m * h2
        self.G_s = h2 / (p.substrate_K_per_W * p.side_m**2)
        self.G_k = p.thermal_conductivity_W_per_m_K * p.thickness_m + p.substrate_spreading_W_per_K
        # lateral neighbour count per cell (edges adiabatic), for the diagonal
        deg = np.full((n, n), 4.0)
        deg[0, :] -= 1
        deg[-1, :] -= 1
        deg[:, 0] -= 1
        deg[:, -1] -= 1
        self._deg = deg.reshape(-1)
        self._factors: OrderedDict[float, np.ndarray] = OrderedDict()

    @property
    def time_constant_s(self) -> float:
        return self.C / self.G_s

    def _factor(self, dt: float) -> np.ndarray:
        f = self._factors.get(dt)
        if f is not None:
            self._factors.move_to_end(dt)
            return f
        n = self.n
        # upper banded storage, half bandwidth n: diagonal, x neighbour (offset 1), y neighbour (offset n)
        ab = np.zeros((n + 1, n * n))
        ab[n] = self.C / dt + self.G_s + self.G_k * self._deg
        xn = np.full(n * n, -self.G_k)
        xn[::n] = 0.0  # no coupling across a row end
        ab[n - 1, 1:] = xn[1:]
        ab[0, n:] = -self.G_k
        with single_thread():
            chol, info = lapack.dpbtrf(ab)
        if info != 0:
            raise RuntimeError(f"heat matrix not positive definite (dpbtrf info={info})")
        self._factors[dt] = chol
        if len(self._factors) > _CACHE:
            self._factors.popitem(last=False)
        return chol

    def step(self, T: np.ndarray, power_W: np.ndarray, dt: float, T_ref: np.ndarray | None = None,
             iterations: int = 3) -> np.ndarray:
        """T after dt with cell powers power_W, evaluated at T_ref (their TCR feedback is
        followed locally); T_ref None: no feedback."""
        chol = self._factor(float(dt))
        base = self.C / dt * T + self.G_s * self.p.ambient_K
        with single_thread():
            T_new, _ = lapack.dpbtrs(chol, base + power_W)
            if T_ref is None or self.p.tcr_per_K == 0:
                return T_new
            if self.p.tcr_per_K * float(np.abs(T_new - T_ref).max()) < 1e-3:
                return T_new  # the TCR feedback would move the power by < 0.1 %
            s_ref = resistivity_scale(T_ref, self.p)
            for _ in range(iterations - 1):
                T_new, _ = lapack.dpbtrs(chol, base + power_W * s_ref / resistivity_scale(T_new, self.p))
        return T_new
