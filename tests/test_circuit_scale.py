"""The structured (iterative) circuit solve of large arrays against the dense reference solve."""
from __future__ import annotations

import numpy as np
import pytest

from sim_backend import Source, crossbar, film
from sim_backend.circuit import Circuit

N_SENSE = 5


def _circuit(topo, rng, *, r: float, floating: int, drive_compliance: float, source_r: float) -> Circuit:
    """A guarded read: one line driven, five sensed, the rest on the guard bus through ``r``;
    ``floating`` random lines left unconnected; the drive bus limited to ``drive_compliance``."""
    buses = ["drive", "guard"] + [f"s{k}" for k in range(N_SENSE)]
    src = {b: Source(level_V=0.0, compliance_A=0.1, output=True) for b in buses}
    src["drive"].level_V = float(rng.uniform(0.05, 0.2))
    src["drive"].compliance_A = drive_compliance
    for k in range(N_SENSE):  # a source's own output resistance: its bus node is not pinned
        src[f"s{k}"].resistance_ohm = source_r
    c = Circuit(topo, src)
    idx = c.bus_index
    lines = rng.permutation(topo.n_lines)
    drive, sense, rest = lines[0], lines[1:1 + N_SENSE], lines[1 + N_SENSE:]
    rest = rest[floating:]  # these float
    links = [(idx["drive"], drive, r)] + [(idx[f"s{k}"], line, r) for k, line in enumerate(sense)]
    links += [(idx["guard"], line, r) for line in rest]
    c.configure(links)
    return c


def _kcl(topo, c: Circuit, sol) -> float:
    """Largest current imbalance at any line or bus node, over the largest device current."""
    L = topo.n_lines
    out = np.zeros(L + len(c.bus_names))
    np.add.at(out, topo.devices[:, 0], sol.device_i)
    np.add.at(out, topo.devices[:, 1], -sol.device_i)
    for (bus, line, _), i_link in zip(c.links, sol.link_current):
        out[L + bus] += i_link
        out[line] -= i_link
    out[:L] += c.leak_S * sol.line_v
    for k, name in enumerate(c.bus_names):
        out[L + k] += c.leak_S * sol.bus_v[name] - sol.bus_current[name]
    return float(np.abs(out).max() / (np.abs(sol.device_i).max() + 1e-30))


CASES = [  # topology, contact ohm, floating lines, drive compliance A, sense source ohm
    (crossbar(64), 1.0, 0, 0.1, 0.0),
    (crossbar(64), 1.0, 12, 0.1, 0.0),
    (crossbar(64), 2.0, 3, 2e-5, 0.0),  # the drive bus in compliance: a current source
    (crossbar(64, tied=True), 0.5, 5, 0.1, 5.0),
    (film(110), 1.0, 4, 0.1, 0.0),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(3))
def test_structured_solve_agrees_with_the_dense_solve(case: int, seed: int) -> None:
    topo, r, floating, compliance, source_r = CASES[case]
    rng = np.random.default_rng([case, seed])
    c = _circuit(topo, rng, r=r, floating=floating, drive_compliance=compliance, source_r=source_r)
    G = rng.uniform(0.2e-4, 5e-4, topo.n_devices) * rng.lognormal(0.0, 0.3, topo.n_devices)
    c.structured = True
    fast = c.solve(G)
    c.structured = False
    ref = c.solve(G)
    assert fast.structured and not ref.structured
    if compliance < 1e-4:
        assert fast.in_compliance["drive"] and ref.in_compliance["drive"]
    v_scale = np.abs(ref.line_v).max()
    assert np.abs(fast.line_v - ref.line_v).max() <= 1e-12 * v_scale
    i_ref = np.array(list(ref.bus_current.values()))
    i_fast = np.array([fast.bus_current[b] for b in ref.bus_current])
    assert np.abs(i_fast - i_ref).max() <= 1e-12 * np.abs(i_ref).max()
    assert np.abs(fast.device_i - ref.device_i).max() <= 1e-12 * np.abs(ref.device_i).max()
    assert _kcl(topo, c, fast) < 1e-9


def test_lines_left_floating_in_a_two_probe_read_take_the_dense_solve() -> None:
    # almost every line floats: no diagonal dominance, so the iterative solve does not apply
    topo = crossbar(64)
    src = {b: Source(level_V=0.1 if b == "drive" else 0.0, compliance_A=0.1, output=True) for b in ("drive", "s0")}
    c = Circuit(topo, src)
    c.configure([(c.bus_index["drive"], 0, 1.0), (c.bus_index["s0"], 64, 1.0)])
    G = np.random.default_rng(1).uniform(0.5e-4, 1.5e-4, topo.n_devices)
    sol = c.solve(G)
    assert not sol.structured
    assert _kcl(topo, c, sol) < 1e-9


@pytest.mark.parametrize("merged", [False, True], ids=["links", "some 0 Ω links"])
def test_passive_parts_are_the_dense_passive_laplacians_entries_bit_for_bit(merged: bool) -> None:
    """The structured solve takes the passive diagonal and free×pinned block without building the
    (n, n) matrix (2 MB per relay change at N = 256): the same sums, in the same order."""
    n = 40
    topo = crossbar(n)
    buses = ["drive", "guard"] + [f"s{k}" for k in range(5)]
    c = Circuit(topo, {b: Source(level_V=0.1 if b == "drive" else 0.0, output=True) for b in buses})
    idx = c.bus_index
    rng = np.random.default_rng(11)
    links = [(idx["drive"], 0, 1.0)] + [(idx[f"s{k}"], n + k, 0.0 if merged else 1.0) for k in range(5)]
    links += [(idx["guard"], line, float(rng.choice([0.7, 1.0, 2.0]))) for line in range(1, 2 * n)
              if line not in range(n, n + 5)]
    if merged:
        links.append((idx["guard"], 3, 1.5))  # a second link from the guard to line 3
    c.configure(links)
    _, _, pin_groups, free, *_ = c._layout(("V",) * len(buses))
    diag, fp = c._passive_parts(free, pin_groups)
    P = c._passive_static
    assert np.array_equal(diag, P[free, free]) and np.array_equal(fp, P[np.ix_(free, pin_groups)])
    assert np.count_nonzero(fp) > 0


def test_one_blas_thread_inside_nested_uses_and_the_count_restored_after() -> None:
    """The solves ask for one BLAS thread; a solve inside a step inside a reading nests the
    request, and only the outermost sets and restores the calling thread's count."""
    from sim_backend import blas

    if blas._controller is not None or not blas._setters:
        pytest.skip("threadpoolctl installed, or no OpenBLAS with a per-thread setting here")
    probe = blas._setters[0]

    def now() -> int:  # the present local setting (set_local returns the previous one)
        n = probe(3)
        probe(n)
        return n

    before = now()
    with blas.single_thread():
        assert now() == 1
        with blas.single_thread():
            assert now() == 1
        assert now() == 1  # the inner exit did not restore
    assert now() == before
    try:
        with blas.single_thread():
            raise KeyError("x")
    except KeyError:
        pass
    assert now() == before and blas._single.depth == 0


def test_only_arrays_large_enough_for_threaded_blas_ask_for_one_thread() -> None:
    """Small arrays' products and solves run on one OpenBLAS thread anyway: their steps and
    solves leave the thread count alone; large ones set it to 1 for the call."""
    from sim_backend import blas

    if blas._controller is not None or not blas._setters:
        pytest.skip("threadpoolctl installed, or no OpenBLAS with a per-thread setting here")
    probe = blas._setters[0]

    def now() -> int:
        n = probe(3)
        probe(n)
        return n

    original = probe(2)  # two threads, whatever the machine: so one is a visible change
    try:
        with blas.single_thread_for(blas.THREADED_DEVICES - 1):
            assert now() == 2
        with blas.single_thread_for(blas.THREADED_DEVICES):
            assert now() == 1
        assert now() == 2
    finally:
        probe(original)
