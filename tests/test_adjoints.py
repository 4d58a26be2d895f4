"""Read-level work a dry run no longer repeats, each checked against doing it afresh: the noise's
adjoint fields kept across relay configurations, the bound that spares most of them, a
configuration's solution carried over a drift of the state far below the read noise, and a
drive under which no device can move integrated without packing it."""
from __future__ import annotations

import numpy as np
import pytest

from sim_backend import SimulatedBench, crossbar, load_preset
from sim_backend.adjoints import DRIFT
from sim_backend.read_noise import MARGIN_SIGMAS, current_sigmas

BUSES = ("drive", "s0", "s1", "guard")


def _bench(n: int = 12, preset="crossbar-sot") -> SimulatedBench:
    topo = crossbar(n)
    names = topo.line_names
    xp = {f"{bus}:{line}": (bus, line) for bus in BUSES for line in names}
    bench = SimulatedBench(topo, preset, buses=BUSES, crosspoints=xp, seed=3, contact_resistance_ohm=1.0)
    for b in BUSES:
        bench.set_compliance(b, 0.1)
        bench.set_output(b, True)
    return bench


def _route(bench: SimulatedBench, on: dict[str, str]) -> None:
    """Exactly these lines on these buses (the rest on the guard), drive at 0.1 V."""
    bench.set_level("drive", 0.0)
    target = {f"{on.get(line, 'guard')}:{line}" for line in bench.topology.line_names}
    closed = bench.closed()
    bench.open(sorted(closed - target))
    bench.close(sorted(target - closed))
    bench.set_level("drive", 0.1)


def _fresh(bench: SimulatedBench, bus: str) -> np.ndarray:
    bench.solve_now()  # (configures the circuit)
    return bench.circuit.unit_responses(bench.array.conductance(), [bench.circuit.bus_index[bus]])[:, 0]


def test_a_kept_field_is_the_one_a_fresh_solve_gives_and_a_read_solves_few() -> None:
    bench = _bench()
    names = bench.topology.line_names
    rows, cols = names[:12], names[12:]
    configs = 0
    for group in ((cols[0], cols[1]), (cols[2], cols[3]), (cols[0], cols[1])):  # the first group again
        for row in rows:
            _route(bench, {row: "drive", group[0]: "s0", group[1]: "s1"})
            configs += 1
            for bus in ("drive", "s0", "s1", "guard"):
                bench.measure(bus, 0.0)
                kept = bench._adjoints.get(bench.circuit, bench.array.conductance_view(), bench.array.version,
                                           bench._wiring_version, [bench.circuit.bus_index[bus]])[:, 0]
                np.testing.assert_allclose(kept, _fresh(bench, bus), rtol=0, atol=1e-12)
    # the guard's field changes with every drive line; a sense bus's serves its group, a drive
    # line's every group: far fewer solves than configurations times buses
    assert bench._adjoints.solved < 0.5 * configs * 4
    assert bench._adjoints.solved >= 2 * len(rows)  # (drive and guard fields for each row at least)


def test_fields_are_solved_again_once_a_conductance_drifts_past_the_tolerance() -> None:
    bench = _bench(6)
    names = bench.topology.line_names
    _route(bench, {names[0]: "drive", names[6]: "s0", names[7]: "s1"})
    bench.measure("s0", 0.0)
    solved = bench._adjoints.solved
    sigma = bench._noise_scales[3]["s0"]
    x = bench.array.x.copy()
    x[0] = min(x[0] * (1 + 1e-9), 1.0) if x[0] > 0 else 1e-9  # a change far below DRIFT
    bench.array.x = x
    bench.measure("s0", 0.0)
    assert bench._adjoints.solved == solved  # kept
    fresh = current_sigmas(bench.circuit, bench.solve_now(), bench.array.read_sigma(),
                           bench.circuit.unit_responses(bench.array.conductance(), [bench.circuit.bus_index["s0"]]))
    assert bench._noise_scales[3]["s0"] == pytest.approx(float(fresh[0]), rel=10 * DRIFT)
    assert bench._noise_scales[3]["s0"] == pytest.approx(sigma, rel=1e-3)
    x[:] = np.clip(x * 0.5, 0.0, 1.0)  # a real change of state
    bench.array.x = x
    bench.measure("s0", 0.0)
    assert bench._adjoints.solved > solved
    np.testing.assert_allclose(
        bench._adjoints.get(bench.circuit, bench.array.conductance_view(), bench.array.version, bench._wiring_version,
                            [bench.circuit.bus_index["s0"]])[:, 0], _fresh(bench, "s0"), rtol=0, atol=1e-12)


def test_a_solution_carried_over_a_small_drift_reads_what_a_fresh_solve_gives() -> None:
    """A state change below DRIFT within one configuration keeps its solution (no solve); the
    reading adds the first-order change of its current and agrees with a fresh solve to second
    order, where the carried current alone is off by the change itself. A larger change solves."""
    bench = _bench(12, load_preset("crossbar-sot", {"read_noise_window": 0.0, "relax_attempt_Hz": 0.0}))
    names = bench.topology.line_names
    _route(bench, {names[0]: "drive", names[12]: "s0", names[13]: "s1"})
    solves = []
    solve = bench.circuit.solve
    bench.circuit.solve = lambda G: solves.append(1) or solve(G)
    bench.measure("s0", 0.0)
    assert len(solves) == 1
    arr, dev = bench.array, 0  # R0–K0, the device read on s0
    g0 = arr.conductance_view()[dev]
    x = arr.x.copy()
    x[dev] -= np.float32(4e-7) * (1 - arr.contrast[dev] * x[dev]) / arr.contrast[dev]
    arr.x = x
    moved = arr.conductance_view()[dev] / g0 - 1
    assert 1e-7 < moved < DRIFT
    reading = bench.measure("s0", 0.0)[1]
    assert len(solves) == 1  # carried
    fresh = solve(arr.conductance()).bus_current["s0"]
    carried = bench.solve_now().bus_current["s0"]
    assert abs(carried - fresh) > 1e-7 * abs(fresh)  # the drift shows in the current itself
    assert reading == pytest.approx(fresh, rel=1e-12, abs=0)
    for bus in ("drive", "s1", "guard"):  # every bus's reading carries its own change
        assert bench.measure(bus, 0.0)[1] == pytest.approx(solve(arr.conductance()).bus_current[bus],
                                                           rel=1e-11, abs=1e-18)
    assert len(solves) == 1
    x[dev] *= 0.5  # a real change of state: solved afresh, exactly
    arr.x = x
    assert bench.measure("s0", 0.0)[1] == solve(arr.conductance()).bus_current["s0"]
    assert len(solves) == 2


def test_the_cheap_bound_is_above_every_bus_sigma_and_the_verdict_is_the_exact_one() -> None:
    """s_max = ‖σ·ΔV‖ bounds every s_b (|ΔU| ≤ 1); with limits set around |I| + 8σ at random,
    a reading is drawn the exact way exactly when some bus's exact margin is short."""
    bench = _bench(6)
    names = bench.topology.line_names
    rng = np.random.default_rng(2)
    verdicts = set()
    for trial in range(40):
        on = {names[int(rng.integers(6))]: "drive", names[6 + int(rng.integers(6))]: "s0"}
        if rng.random() < 0.5:
            on[names[6 + int(rng.integers(6))]] = "s1"
        for b in BUSES:
            bench.set_compliance(b, 0.1)
        _route(bench, on)
        sol = bench.solve_now()
        idx = bench.circuit.bus_index
        u = bench.circuit.unit_responses(bench.array.conductance(), [idx[b] for b in BUSES])
        s = dict(zip(BUSES, current_sigmas(bench.circuit, sol, bench.array.read_sigma(), u)))
        s_max = float(np.linalg.norm(sol.device_v)) * bench.array.read_sigma()
        assert all(sb <= s_max * (1 + 1e-12) for sb in s.values()), (s, s_max)
        short = False
        for b in BUSES:  # limits within a few σ of the margin, either side
            margin = MARGIN_SIGMAS + float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.5, 2.0))
            limit = abs(sol.bus_current[b]) + margin * s[b]
            if limit <= 0 or rng.random() < 0.6:
                continue
            bench.set_compliance(b, limit)
            short |= margin < MARGIN_SIGMAS
        sol = bench.solve_now()
        if any(sol.in_compliance.values()):
            continue
        verdict, _ = bench._noise_verdict(sol)
        verdicts.add(verdict)
        assert (verdict == "exact") == short, trial
    assert verdicts == {"exact", "noisy"}


def _array_at():
    return _bench(16).array


def test_a_drive_below_every_onset_is_the_packed_step_with_nothing_packed() -> None:
    a, b = _array_at(), _array_at()  # the same seed: the same devices
    v_on = a.preset.creep_onset * a.jd_rel.astype(np.float64) / a._jrel_per_V
    rng = np.random.default_rng(8)
    V = (rng.uniform(-0.9, 0.9, a.n_devices) * v_on.min()).astype(np.float32)
    for k in range(30):
        dt = float(rng.uniform(1e-3, 0.5))
        a.advance(V, dt)  # the read-level path
        d = b._drive_for(V)  # the reference: pack the drive and step it
        assert d.M == 0
        b._step(d, dt)
        assert a.film_temperature_K == pytest.approx(b.film_temperature_K, rel=1e-12)
    # the same relaxation owed, and once applied the same state (float32 rounding aside)
    assert a._pending == pytest.approx(b._pending, rel=1e-9)
    np.testing.assert_allclose(a.x, b.x, rtol=2e-7, atol=0)
    assert a._drive is None and not a.can_move


def test_one_device_over_its_onset_goes_to_the_packed_step() -> None:
    a = _array_at()
    v_on = a.preset.creep_onset * a.jd_rel.astype(np.float64) / a._jrel_per_V
    movable = np.flatnonzero(a.mobility > 0)
    for k in (movable[np.argsort(v_on[movable])[movable.size // 2]],  # a device of middling onset,
              movable[int(np.argmax(v_on[movable]))]):  # and the one hardest to move
        V = np.zeros(a.n_devices, np.float32)
        V[movable] = (0.5 * v_on[movable]).astype(np.float32)
        V[k] = np.float32(1.001 * v_on[k])  # the top voltage, and above its own onset
        assert V.max() < a._v_onset_max or k == movable[int(np.argmax(v_on[movable]))]
        a.advance(V, 1.0)
        assert a._drive is not None and a._drive.M == 1 and int(a._drive.idx[0]) == k  # packed, and only it
        V[k] = np.float32(0.999 * v_on[k])  # just under: nothing can move
        a.advance(V, 1.0)
        assert a._drive is None


def test_a_read_level_drive_kept_over_many_intervals_owes_what_one_interval_does() -> None:
    a, b = _array_at(), _array_at()
    v_on = a.preset.creep_onset * a.jd_rel.astype(np.float64) / a._jrel_per_V
    V = (0.5 * v_on.min() * np.ones(a.n_devices)).astype(np.float32)
    V.flags.writeable = False  # a solution's voltages: the drive is recognised and reused
    for _ in range(50):
        a.advance(V, 0.01)
    b.advance(V.copy(), 0.5)  # (a writeable copy: computed afresh)
    assert a._pending == pytest.approx(b._pending, rel=1e-12)
    assert a.film_temperature_K == b.film_temperature_K


def test_the_state_version_moves_exactly_when_a_packed_step_moves_the_state() -> None:
    """A read that can creep its weakest device re-solves the circuit only after a step that
    moved some device in float32: the version (what readers key their solves on) follows the
    conductances, step by step."""
    a = _array_at()
    v_on = a.preset.creep_onset * a.jd_rel.astype(np.float64) / a._jrel_per_V
    movable = np.flatnonzero(a.mobility > 0)
    k = movable[np.argsort(v_on[movable])[movable.size // 2]]
    V = (0.5 * v_on.min() * np.ones(a.n_devices)).astype(np.float32)
    V[k] = np.float32(3.0 * v_on[k])  # creeping (below depinning), the only device packed
    kept = moved = 0
    for i, dt in enumerate([1e-12] * 20 + [1e-3, 1e-2, 0.1, 1.0] * 5):
        v0, g0 = a.version, a.conductance()
        a.advance(V, dt, continuing=i > 0)
        assert a._drive is not None and a._drive.M == 1
        g1 = a.conductance()
        if np.array_equal(g0, g1):
            kept += a.version == v0
        else:
            assert a.version != v0
            moved += 1
    assert kept >= 10 and moved >= 3


def test_a_packed_drive_resumed_after_a_gap_shows_the_relaxation_owed() -> None:
    """A weak drive packs a few devices; 0 V gaps owe them relaxation, applied when the drive
    resumes: a reader's conductances (kept by version) are the state's, every time."""
    from sim_backend.array import DeviceArray
    from sim_backend.presets import load_preset

    topo = crossbar(16)
    a = DeviceArray(topo, load_preset("crossbar-sot"), np.random.default_rng(1), kernel="numpy")
    x = a.x.copy()
    x[::7] = 2e-3  # some devices near x = 0, where a weak drive reaches their onset
    a.x = x
    V = np.full(topo.n_devices, -0.2, np.float32)
    a.advance(V, 1e-3)
    assert a._drive is not None and 0 < a._drive.M < a.n_devices
    for _ in range(10):
        a.advance(None, 2.0)
        a.conductance_view()  # a reader's look, kept by version
        a.advance(V, 1e-5, continuing=True)  # the same drive again: the owed relaxation applied
        xx = a.x.astype(np.float64)
        true = a.g_max.astype(np.float64) * (1.0 - a.contrast.astype(np.float64) * xx)
        assert np.array_equal(a.conductance_view(), true)


def test_a_swapped_preset_takes_its_onsets_and_relaxation_along() -> None:
    a = _array_at()
    p = a.preset
    v_on = p.creep_onset * a.jd_rel.astype(np.float64) / a._jrel_per_V
    V = (0.5 * v_on.min() * np.ones(a.n_devices)).astype(np.float32)
    V.flags.writeable = False
    a.advance(V, 0.1)  # a read-level drive, kept
    a.preset = p.model_copy(update={"relax_attempt_Hz": 0.0})
    pending = a._pending
    a.advance(V, 1.0)  # the kept drive's rate must not outlive the preset
    assert a._pending == pending
    a.preset = p.model_copy(update={"creep_onset": p.creep_onset * 0.1})  # V is now above onsets
    a.advance(V, 1e-3)
    assert a._drive is not None and a._drive.M > 0
