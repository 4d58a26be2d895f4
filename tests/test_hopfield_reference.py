"""Textbook facts the software Hopfield reference must reproduce."""
import numpy as np
import pytest

from protocols import hopfield_reference as ref


def random_patterns(p, n, seed):
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(p, n))


def test_hebbian_recall_near_perfect_well_below_capacity_and_collapses_above():
    n = 200
    low = random_patterns(int(0.05 * n), n, 1)  # α = 0.05 ≪ 0.138
    high = random_patterns(int(0.30 * n), n, 2)  # α = 0.30 ≫ 0.138
    for x, lo, hi in ((low, 0.99, 1.0), (high, 0.0, 0.2)):
        cues, t = ref.make_cues(x, 2, 0.05, seed=3)
        sc = ref.evaluate(ref.hebbian(x), x, cues, t, mode="sync")
        assert lo <= sc.exact <= hi, sc


def test_hebbian_bit_error_rate_follows_signal_to_noise_at_storage():
    # one-step error of a stored bit ≈ Φ(−1/√α) for random patterns (Gaussian crosstalk)
    n, p = 400, 40
    x = random_patterns(p, n, 4)
    w = ref.hebbian(x)
    errors = np.mean([np.mean(ref.update_sign(w @ xi, xi) != xi) for xi in x])
    from scipy.stats import norm

    assert errors == pytest.approx(norm.cdf(-1 / np.sqrt(p / n)), abs=0.006)


def test_pseudo_inverse_stores_half_n_correlated_patterns():
    n, p = 60, 30
    rng = np.random.default_rng(5)
    parent = rng.choice([-1.0, 1.0], size=n)
    # each pattern keeps the parent's bit with probability 0.8: pairwise overlap ≈ 0.36
    x = np.where(rng.random((p, n)) < 0.8, parent, -parent)
    assert ref.stable_patterns(ref.pseudo_inverse(x), x).all()
    assert ref.stable_patterns(ref.hebbian(x), x).mean() < 0.2


def test_storkey_beats_hebbian_at_moderate_load():
    n, p = 100, 20
    x = random_patterns(p, n, 6)
    assert ref.stable_patterns(ref.storkey(x), x).mean() >= ref.stable_patterns(ref.hebbian(x), x).mean()
    assert ref.stable_patterns(ref.storkey(x), x).mean() > 0.9


def test_clamped_oja_converges_to_the_correlation_matrix():
    x = random_patterns(5, 30, 7)
    w = ref.clamped_oja(x, eta=0.01, epochs=2000)
    assert ref.weight_correlation(w, ref.hebbian(x)) > 0.99
    # bounded: entries stay within ±1 whatever the number of epochs
    assert np.abs(ref.clamped_oja(x, eta=0.5, epochs=50)).max() <= 1.0


def test_async_energy_never_rises_and_ends_at_fixed_point():
    x = random_patterns(8, 64, 8)
    w = ref.hebbian(x)
    rng = np.random.default_rng(9)
    for _ in range(5):
        r = ref.recall(w, rng.choice([-1.0, 1.0], size=64), mode="async", rng=rng)
        assert np.all(np.diff(r.energies) <= 1e-12)
        assert r.converged
        assert np.array_equal(ref.update_sign(w @ r.final, r.final), r.final)


def test_sync_detects_two_cycle():
    w = np.array([[0.0, -1.0], [-1.0, 0.0]])
    r = ref.recall(w, np.array([1.0, 1.0]), mode="sync")
    assert r.cycle and not r.converged and r.steps <= 2


def test_energy_from_field_matches_energy():
    x = random_patterns(3, 20, 10)
    w = ref.hebbian(x)
    s = x[0].copy()
    assert ref.energy_from_field(s, w @ s, 0.1) == pytest.approx(ref.energy(w, s, 0.1))


def test_measures():
    x = np.array([[1, 1, 1, 1], [1, 1, -1, -1]], dtype=float)
    s = np.array([1, 1, 1, -1], dtype=float)
    assert ref.overlaps(x, s).tolist() == [0.5, 0.5]
    assert ref.bit_accuracy(s, x[0]) == 0.75
    assert not ref.exact_recall(s, x[0]) and ref.exact_recall(x[0], x[0])
    assert ref.correct_retrieval(x[0], x, 0) and not ref.correct_retrieval(s, x, 0)
    assert ref.n_flips(35, 0.1) == 4 and ref.n_flips(35, 0.0) == 0


def test_make_cues_flips_exactly_k_bits_reproducibly():
    x = random_patterns(3, 35, 11)
    cues, t = ref.make_cues(x, 5, 0.1, seed=12)
    assert cues.shape == (15, 35) and list(t) == [0] * 5 + [1] * 5 + [2] * 5
    assert all(np.sum(c != x[k]) == 4 for c, k in zip(cues, t))
    assert np.array_equal(cues, ref.make_cues(x, 5, 0.1, seed=12)[0])


def test_basin_of_attraction_shrinks_with_load():
    n = 100
    small = ref.basin_of_attraction(ref.hebbian(x := random_patterns(3, n, 13)), x, flips=[0, 10, 20, 30], trials=5)
    big = ref.basin_of_attraction(ref.hebbian(y := random_patterns(14, n, 14)), y, flips=[0, 10, 20, 30], trials=5)
    assert small["radius"].mean() > big["radius"].mean()
    assert small["rate"][:, 0].min() == 1.0


def test_pattern_values_checked():
    with pytest.raises(ValueError, match="-1 and \\+1"):
        ref.hebbian(np.array([[1, 0, 1]]))
