"""Material disorder of a film: spatially correlated Gaussian random fields on the cell grid.

Grain clusters and thickness variation make ρ and the pinning strength vary smoothly over a
correlation length ξ (a few µm in sputtered permalloy), not independently per cell. A field
is white noise filtered by a Gaussian kernel exp(−r²/2ξ²) in Fourier space (periodic
wrap-around, harmless at ξ ≪ L) and scaled to unit variance; ξ below one cell gives
cell-independent noise. Every draw comes from the generator passed in.
"""
from __future__ import annotations

import numpy as np


def correlated_field(rng: np.random.Generator, n: int, cell_m: float, correlation_m: float) -> np.ndarray:
    """A zero-mean, unit-variance field on n×n cells (flattened row-major, y then x)."""
    white = rng.standard_normal((n, n))
    if correlation_m <= cell_m:
        return white.reshape(-1)
    k = 2 * np.pi * np.fft.fftfreq(n, d=cell_m)
    kx, ky = np.meshgrid(k, k, indexing="xy")
    kernel = np.exp(-0.5 * correlation_m**2 * (kx**2 + ky**2))
    field = np.fft.ifft2(np.fft.fft2(white) * kernel).real
    std = field.std()
    return (field / std if std > 0 else field).reshape(-1)


def stuck_regions(field: np.ndarray, fraction: float) -> np.ndarray:
    """Cells whose correlated field lies in its top ``fraction``: connected stuck patches."""
    if fraction <= 0:
        return np.zeros(field.shape, dtype=bool)
    if fraction >= 1:
        return np.ones(field.shape, dtype=bool)
    return field > np.quantile(field, 1.0 - fraction)
