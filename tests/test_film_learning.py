"""What a continuous film can learn: the lead-field picture of its conductance matrix.

With u_i the potential of the film with contact i at 1 V and all others grounded (the lead
field of contact i), the contact matrix is K_ij = t·∫ ∇u_i·σ·∇u_j dA, and a change of the
conductivity field changes it by exactly

    ΔK_ij = t·∫ ∇u_i·Δσ·∇u'_j dA      (u' the lead field after the change; to first order u)

so a pair can only learn where both lead fields are strong. Grounded contacts screen each
lead field to its own neighbourhood, so on a sheet with contacts around its edge the lead
fields of neighbouring contacts overlap and those of distant contacts hardly do: the
geometric reason why clamped training on a uniform film stores pattern correlations on
near pairs and not on distant ones (measured in the issue-11 film-physics report).
"""
import numpy as np

from sim_backend import FilmArray, film, load_preset
from sim_backend.thinfilm.texture import conductivity

PRESET = "film-continuous"


def film_with(n_contacts, n_cells, seed=0):
    return FilmArray(film(n_contacts), load_preset(PRESET, {"cells_per_side": n_cells}),
                     np.random.default_rng(seed))


def random_texture(arr, seed):
    rng = np.random.default_rng(seed)
    ang = rng.uniform(0, np.pi, arr.q.shape[0])
    mag = rng.uniform(0, 1, arr.q.shape[0])
    return mag[:, None] * np.stack([np.cos(2 * ang), np.sin(2 * ang)], axis=1)


def lead_gradients(arr):
    """∇u_i at the Gauss points of every cell, (n_contacts, cells, 4, 2), V/m per V."""
    cm, n = arr.contact_map(), arr.topology.n
    return np.stack([arr.mesh.cell_gradients(cm.node_potentials(np.eye(n)[i])) for i in range(n)])


def sigma_tensor(arr):
    sxx, syy, sxy = conductivity(arr.q, arr.T, arr.rho_rel, arr.preset)
    return np.stack([np.stack([sxx, sxy], -1), np.stack([sxy, syy], -1)], -2)


def overlap(arr, g_a, s, g_b):
    """t·∫ ∇u_i·s·∇u_j dA over the Gauss points (exact for the bilinear elements)."""
    m = arr.mesh
    return m.t * m.h**2 / 4 * np.einsum("icga,cab,jcgb->ij", g_a, s, g_b)


def test_contact_matrix_is_the_overlap_of_the_lead_fields():
    arr = film_with(12, 24)
    arr.restore_sample({**arr.sample_state(), "q": random_texture(arr, 1)})
    K = arr.matrix()
    assert np.abs(overlap(arr, lead_gradients(arr), sigma_tensor(arr), lead_gradients(arr)) - K).max() \
        <= 1e-9 * np.abs(K).max()


def test_a_texture_change_changes_the_matrix_by_the_lead_field_overlap_of_delta_sigma():
    arr = film_with(12, 24)
    arr.restore_sample({**arr.sample_state(), "q": random_texture(arr, 1)})
    K0, g0, s0 = arr.matrix(), lead_gradients(arr), sigma_tensor(arr)
    arr.restore_sample({**arr.sample_state(), "q": random_texture(arr, 2)})
    K1, g1, s1 = arr.matrix(), lead_gradients(arr), sigma_tensor(arr)
    dK = K1 - K0
    scale = np.abs(dK).max()
    assert scale > 1e-3 * np.abs(K0).max()  # the AMR change is real, not rounding
    assert np.abs(overlap(arr, g0, s1 - s0, g1) - dK).max() <= 1e-8 * scale  # exact identity
    first = overlap(arr, g0, s1 - s0, g0)  # first order: AMR 2.5 % keeps it within a few %
    assert np.abs(first - dK).max() <= 0.05 * scale  # measured 1.5 %


def test_grounded_neighbours_screen_each_lead_field_to_its_own_contact():
    n = 16
    arr = film_with(n, 32)
    g = lead_gradients(arr)
    mag = np.linalg.norm(g, axis=-1)
    L = np.einsum("icg,jcg->ij", mag, mag)
    L = L / np.sqrt(np.outer(np.diag(L), np.diag(L)))  # ∫|∇u_i||∇u_j| / √(∫|∇u_i|² ∫|∇u_j|²)
    k = np.arange(n)
    neighbour = L[k, (k + 1) % n].mean()
    opposite = L[k, (k + n // 2) % n].mean()
    assert neighbour > 0.3  # measured 0.60 (16 contacts, 32×32 cells)
    assert opposite < neighbour / 5  # measured 0.053
    G = -arr.matrix()
    assert G[k, (k + 1) % n].mean() > 10 * G[k, (k + n // 2) % n].mean()  # measured 37×
