"""The dry run's speedups change no number: each fast path against the plain computation it
replaces (bit for bit where the brief is "exact", to the solve tolerance for the iterative solve)."""
from __future__ import annotations

import numpy as np
import pytest

from lab.config import load_bench
from lab.safety import SafetyGuard
from sim_backend import Source, crossbar, film
from sim_backend.circuit import Circuit
from sim_backend.instruments import lua_machine
from sim_backend.instruments.tsp import TspError, TspInterpreter

# -- compiled Lua chunks kept by text -----------------------------------------------------

CHUNKS = [
    "x = (x or 0) + 1 print(x)",
    "local t = {} for i = 1, 3 do t[i] = i * i end print(t[1] + t[2] + t[3])",
    "function f(a) return (a or 0) * 2 end print(f(x))",
    "print(f(21))",
    "local c = 0 local function inc() c = c + 1 return c end inc() inc() print(c)",
    "s = (s or '') .. 'a' print(s)",
    "print(#(s or ''))",
    "x = (x or 0) + 1 print(x)",
]


def _run(chunks: list[str]) -> list[list]:
    tsp = TspInterpreter()
    out = []
    for text in chunks:
        try:
            out.append(tsp.execute(text))
        except TspError as exc:
            out.append([type(exc).__name__, str(exc)])
    return out


def test_cached_chunks_run_as_freshly_compiled_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _run(CHUNKS * 3)
    monkeypatch.setattr(lua_machine, "CHUNK_CACHE_SIZE", 0)  # every chunk compiled anew
    assert _run(CHUNKS * 3) == cached
    # the globals a chunk leaves are carried to the next run of the same text
    assert [float(cached[k][0]) for k in (0, 7, 8)] == [1.0, 2.0, 3.0]


def test_the_chunk_cache_is_bounded_and_texts_do_not_collide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lua_machine, "CHUNK_CACHE_SIZE", 4)
    tsp = TspInterpreter()
    for k in range(20):
        assert float(tsp.execute(f"print({k})")[0]) == k
        assert float(tsp.execute(f"print({k} + 1)")[0]) == k + 1
    assert len(tsp.machine._chunks) == 4
    # the same text under another chunk name is another entry; a syntax error is never kept
    m = tsp.machine
    assert (m.load("print(1)", "a").proto.name, m.load("print(1)", "b").proto.name) == ("a", "b")
    for _ in range(2):
        with pytest.raises(TspError, match="(?i)syntax"):
            tsp.execute("print(")
    assert all("print(" != key[0] for key in m._chunks)
    # a kept chunk is a fresh function each time: nothing of one run leaks into the next
    assert m.load("print(1)", "a") is not m.load("print(1)", "a")


def test_long_chunks_are_not_kept() -> None:
    tsp = TspInterpreter()
    text = "x = 0 " + "x = x + 1 " * (lua_machine.CHUNK_CACHE_MAX_CHARS // 10) + "print(x)"
    assert float(tsp.execute(text)[0]) == lua_machine.CHUNK_CACHE_MAX_CHARS // 10
    assert all(key[0] != text for key in tsp.machine._chunks)


# -- pymeasure's reserved names, checked in fewer steps ----------------------------------

def test_driver_attributes_keep_pymeasures_reserved_name_rule() -> None:
    from pymeasure.adapters import FakeAdapter

    from drivers.keithley2600b import Keithley2636B

    inst = Keithley2636B(FakeAdapter())
    ch = inst.smua
    for obj in (inst, ch):
        special = object.__getattribute__(obj, "_special_names")
        for name in special:
            with pytest.raises(AttributeError, match="reserved"):
                getattr(obj, name)
    assert "source_voltage_values" in object.__getattribute__(ch, "_special_names")
    assert ch.name.endswith(".a") and inst.name and ch.parent is inst
    with pytest.raises(AttributeError):
        getattr(ch, "no_such_attribute")


# -- the circuit ------------------------------------------------------------------------

def _guarded(topo, rng, n_sense: int = 5, floating: int = 0, r: float = 1.0) -> Circuit:
    buses = ["drive", "guard"] + [f"s{k}" for k in range(n_sense)]
    src = {b: Source(level_V=0.0, compliance_A=0.1, output=True) for b in buses}
    src["drive"].level_V = float(rng.uniform(0.05, 0.2))
    c = Circuit(topo, src)
    idx = c.bus_index
    lines = rng.permutation(topo.n_lines)
    drive, sense, rest = lines[0], lines[1:1 + n_sense], lines[1 + n_sense + floating:]
    links = [(idx["drive"], drive, r)] + [(idx[f"s{k}"], line, r) for k, line in enumerate(sense)]
    c.configure(links + [(idx["guard"], line, r) for line in rest])
    return c


@pytest.mark.parametrize("seed", range(3))
def test_the_crossbar_block_solve_agrees_with_the_dense_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    topo = crossbar(64)
    c = _guarded(topo, rng, floating=3 * seed)
    c.sources["drive"].compliance_A = 2e-5 if seed == 2 else 0.1  # a drive in compliance too
    G = rng.uniform(0.2e-4, 5e-4, topo.n_devices)
    fast = c.solve(G)
    modes = tuple("V" if c.sources[b].output else "off" for b in c.bus_names)
    assert fast.structured
    assert any(k[0] == "structure" and v[-1] is not None for k, v in c._mode_cache.items() if isinstance(k, tuple)
               and k and k[0] == "structure"), "the (N, N) block path was not taken"
    c.structured = False
    ref = c.solve(G)
    assert modes and not ref.structured
    scale = np.abs(ref.line_v).max()
    assert np.abs(fast.line_v - ref.line_v).max() <= 1e-12 * scale
    i_ref = np.array([ref.bus_current[b] for b in c.bus_names])
    i_fast = np.array([fast.bus_current[b] for b in c.bus_names])
    assert np.abs(i_fast - i_ref).max() <= 1e-12 * np.abs(i_ref).max()
    assert fast.in_compliance == ref.in_compliance
    assert np.array_equal(fast.device_v, fast.line_v[topo.devices[:, 0]] - fast.line_v[topo.devices[:, 1]])


@pytest.mark.parametrize("kind", ["film", "crossbar"])
def test_the_dense_blocks_are_the_full_laplacians_bit_for_bit(kind: str) -> None:
    rng = np.random.default_rng(7)
    topo = film(23) if kind == "film" else crossbar(17)
    c = _guarded(topo, rng, n_sense=3, floating=2, r=1.3)
    # merge a line into the guard bus (0 Ω): devices then end at a pinned node
    c.configure(c.links + [(c.bus_index["guard"], int(c.links[-1][1]), 0.0)])
    G = rng.uniform(0.2e-4, 5e-4, topo.n_devices)
    modes = tuple("V" for _ in c.bus_names)
    _, _, pin, free, _, _, _ = c._layout(modes)
    ff, fp = c._flat_blocks(modes, free, pin)
    full = c._passive_static + c._device_laplacian(G)
    A, a_fp = c._dense_blocks(G, modes, ff, fp, free.size, pin.size)
    assert np.array_equal(A, full.take(ff).reshape(free.size, free.size))
    assert np.array_equal(a_fp, full.take(fp).reshape(free.size, pin.size))


def test_dense_blocks_kept_across_relay_changes_are_the_full_laplacians_bit_for_bit() -> None:
    """The devices' places in the dense blocks are kept from one relay configuration to the
    next with the same nodes pinned (a guarded read's): each configuration's blocks are still
    the full Laplacian's, and so are those of a bus left floating (links between free nodes)."""
    rng = np.random.default_rng(11)
    topo = film(23)
    c = _guarded(topo, rng, n_sense=3)
    G = rng.uniform(0.2e-4, 5e-4, topo.n_devices)
    idx = c.bus_index
    for step in range(4):
        lines = rng.permutation(topo.n_lines)
        links = [(idx["drive"], lines[0], 1.0)] + [(idx[f"s{k}"], line, 1.0) for k, line in enumerate(lines[1:4])]
        c.configure(links + [(idx["guard"], line, 1.3) for line in lines[4:]])
        c.sources["s2"].output = step != 3  # the last: s2 floats, its node joins its line through the link
        c.reset_modes()
        modes = tuple("V" if c.sources[b].output else "off" for b in c.bus_names)
        _, _, pin, free, _, _, _ = c._layout(modes)
        ff, fp = c._flat_blocks(modes, free, pin)
        full = c._passive_static + c._device_laplacian(G)
        A, a_fp = c._dense_blocks(G, modes, ff, fp, free.size, pin.size)
        assert np.array_equal(A, full.take(ff).reshape(free.size, free.size)), step
        assert np.array_equal(a_fp, full.take(fp).reshape(free.size, pin.size)), step
    assert len(c._index_kept) == 2  # one structure for the three guarded configurations, one with s2 off


def test_configure_builds_the_passive_matrix_a_loop_over_the_links_builds() -> None:
    rng = np.random.default_rng(3)
    topo = film(12)
    src = {b: Source(output=True) for b in ("a", "b", "c")}
    c = Circuit(topo, src)
    links = [(int(rng.integers(3)), int(rng.integers(12)), float(rng.choice([0.0, 0.7, 1.0, 3.3])))
             for _ in range(30)]
    c.configure(links)
    L, n = topo.n_lines, c.n_groups
    ref = np.zeros((n, n))
    ref[np.diag_indices(n)] += c.leak_S * np.bincount(c.group, minlength=n)
    for b, line, r in links:
        a, k = c.group[L + b], c.group[line]
        if r > 0 and a != k:
            g = 1.0 / r
            ref[a, a] += g
            ref[k, k] += g
            ref[a, k] -= g
            ref[k, a] -= g
    assert np.array_equal(c._passive_static, ref)


# -- the safety guard ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def crossbar_guard() -> SafetyGuard:
    return SafetyGuard(load_bench("sim-crossbar35-sot"))


def _reference_bound(guard: SafetyGuard, line_v: np.ndarray) -> np.ndarray:
    driven = np.isfinite(line_v)
    if not driven.any():
        return np.zeros(len(guard.layout.devices))
    lo, hi = float(np.min(line_v[driven])), float(np.max(line_v[driven]))
    l_lo, l_hi = np.where(driven, line_v, lo), np.where(driven, line_v, hi)
    a, b = guard.layout.devices[:, 0], guard.layout.devices[:, 1]
    return np.maximum(l_hi[a] - l_lo[b], l_hi[b] - l_lo[a])


def test_the_device_voltage_bound_on_a_crossbar_is_the_per_device_one(crossbar_guard: SafetyGuard) -> None:
    g = crossbar_guard
    assert g._bounds.bipartite is not None
    rng = np.random.default_rng(0)
    n_lines = len(g.layout.lines)
    for trial in range(200):
        v = rng.choice([0.0, 0.1, -0.1, 0.25, 1.5, np.nan], size=n_lines) if trial % 2 else \
            np.round(rng.uniform(-2, 2, n_lines), int(rng.integers(0, 3)))
        v[rng.random(n_lines) < rng.random()] = np.nan
        ref = _reference_bound(g, v)
        assert np.array_equal(g.device_voltage_bound(v), ref)
        worst, vmax = g._worst_device(v)
        assert (worst, vmax) == (int(np.argmax(ref)), float(ref[int(np.argmax(ref))]))


def test_line_voltages_and_current_bounds_match_a_loop_over_the_relays(crossbar_guard: SafetyGuard) -> None:
    g = crossbar_guard
    lay = g.layout
    rng = np.random.default_rng(1)
    owner = lay.owner
    by_line: dict[int, list[str]] = {}
    for xp, (_, line) in owner.items():
        by_line.setdefault(line, []).append(xp)
    try:
        for _ in range(20):
            g.reset_state()
            for b in lay.buses:
                g.outputs[b] = bool(rng.random() < 0.8)
                g.levels[b] = float(rng.choice([0.0, 0.05, -0.1, 0.2]))
            g.closed.update(str(rng.choice(xps)) for xps in by_line.values() if rng.random() < 0.7)
            g.changed()
            ref = np.full(len(lay.lines), np.nan)
            for xp in g.closed:
                bus, line = owner[xp]
                if g.outputs[bus]:
                    ref[line] = g.levels[bus]
            assert np.array_equal(g.line_voltages(), ref, equal_nan=True)
            other = {b: 0.3 for b in lay.buses}
            ref_other = np.where(np.isnan(ref), np.nan, 0.3)
            assert np.array_equal(g.line_voltages(other), ref_other, equal_nan=True)
            for bus in lay.buses:  # one level changed, as a level check asks
                ref_one = ref.copy()
                if g.outputs[bus]:
                    ref_one[[owner[xp][1] for xp in g.closed if owner[xp][0] == bus]] = -0.25
                assert np.array_equal(g._line_voltages_with(bus, -0.25), ref_one, equal_nan=True)
            dv = _reference_bound(g, ref)
            per_line = np.bincount(lay.devices[:, 0], dv * g.limits.g_max_expected_S, len(lay.lines)) + \
                np.bincount(lay.devices[:, 1], dv * g.limits.g_max_expected_S, len(lay.lines))
            want = {b: 0.0 for b in lay.buses if g.outputs[b]}
            for xp in sorted(g.closed, key=lambda x: owner[x][1]):  # summed in line order
                bus, line = owner[xp]
                if bus in want:
                    want[bus] += float(per_line[line])
            assert g.bus_current_bounds() == want
    finally:
        g.reset_state()


def test_conductance_is_the_float64_formula_bit_for_bit() -> None:
    from sim_backend import SimulatedBench

    sb = SimulatedBench(crossbar(9), "crossbar-sot", seed=4, buses=["a"], crosspoints={})
    arr = sb.array
    ref = arr.g_max.astype(np.float64) * (1.0 - arr.contrast.astype(np.float64) * arr.x)
    assert np.array_equal(arr.conductance(), ref)
    g1 = arr.read_conductance(np.random.default_rng(5))
    sigma = arr.preset.read_noise_window * arr.window_S
    assert np.array_equal(g1, ref + sigma * np.random.default_rng(5).standard_normal(ref.size))


def _formula(arr) -> np.ndarray:  # noqa: ANN001
    return arr.g_max.astype(np.float64) * (1.0 - arr.contrast.astype(np.float64) * arr.x)


def test_the_kept_conductances_follow_every_change_of_state() -> None:
    """The conductances kept between readings must go stale with the state: after a pulse (packed
    drive), a pulse at the same drive, an idle relaxation, a set state and a restored sample."""
    from sim_backend import SimulatedBench

    sb = SimulatedBench(crossbar(9), "crossbar-sot", seed=4, buses=["a"], crosspoints={})
    arr = sb.array
    seen = [arr.conductance()]
    assert np.array_equal(seen[-1], _formula(arr))
    V = np.full(arr.n_devices, 1.0)
    saved = arr.sample_state()
    steps = [lambda: arr.advance(V, 1e-3), lambda: arr.advance(V, 1e-3, continuing=True),
             lambda: arr.advance(None, 1e9), lambda: arr.advance(V * -2.0, 1e-3),
             lambda: setattr(arr, "x", np.full(arr.n_devices, 0.25)), lambda: arr.restore_sample(saved)]
    for step in steps:
        step()
        g = arr.conductance()
        assert np.array_equal(g, _formula(arr))
        assert not np.array_equal(g, seen[-1])  # each step moved the state: a stale copy is caught
        seen.append(g)
    # what a caller does with its copy, or a noisy read adds, never reaches the kept one
    seen[-1][:] = 0.0
    with pytest.raises(ValueError):
        arr.conductance_view()[0] = 0.0  # the shared one is read-only
    noisy = arr.read_conductance(np.random.default_rng(1))
    assert np.array_equal(arr.conductance(), _formula(arr))
    assert not np.array_equal(noisy, _formula(arr))


def test_readings_after_a_pulse_see_the_pulsed_state() -> None:
    """On the bench: a reading's noiseless part is the present state's, before and after a pulse."""
    from sim_backend import SimulatedBench

    topo = crossbar(4)
    xps = {"r0": ("a", topo.line_names[0]), "c0": ("b", topo.line_names[4])}
    sb = SimulatedBench(topo, "crossbar-sot", seed=2, buses=["a", "b"], crosspoints=xps)
    for bus in ("a", "b"):
        sb.set_compliance(bus, 0.1)
        sb.set_output(bus, True)
    sb.close(["r0", "c0"])
    sb.set_level("a", 0.1)
    before = sb.array.conductance()
    sb.measure("b", 0.02)
    sb.set_level("a", 2.0)
    sb.advance(5e-3)  # a write: the devices of row 0 / column 0 move
    sb.set_level("a", 0.1)
    sb.measure("b", 0.02)
    after = sb.array.conductance()
    assert not np.array_equal(before, after)
    assert np.array_equal(after, _formula(sb.array))
    assert np.array_equal(sb.solve_now().device_v, sb.circuit.solve(_formula(sb.array)).device_v)


def test_the_bus_current_verdict_is_the_exact_bounds(crossbar_guard: SafetyGuard,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """buses_reaching_limit decides as bus_current_bounds() >= limit would, limits set at,
    one ulp either side of and far from the exact bound; the O(N log N) line currents agree
    with the N² ones within the error bound they carry."""
    g = crossbar_guard
    monkeypatch.setattr(g, "fast_bounds_min_devices", 0)  # the O(N log N) path on this small crossbar
    lay = g.layout
    rng = np.random.default_rng(7)
    by_line: dict[int, list[str]] = {}
    for xp, (_, line) in lay.owner.items():
        by_line.setdefault(line, []).append(xp)
    gmax = g.limits.g_max_expected_S
    try:
        for trial in range(60):
            g.reset_state()
            for b in lay.buses:
                g.outputs[b] = bool(rng.random() < 0.8)
                g.levels[b] = float(rng.choice([0.0, 0.05, -0.1, 0.2, 1e-3]))
            g.closed.update(str(rng.choice(xps)) for xps in by_line.values() if rng.random() < 0.7)
            g.changed()
            v = g.line_voltages()
            fast, err = g._bounds.line_currents_fast(v, gmax)
            exact_lines = g._bounds.line_currents(v, gmax)
            assert np.all(np.abs(fast - exact_lines) <= err)
            assert np.abs(fast - exact_lines).max() < 1e-6 * np.abs(exact_lines).max() + 1e-300  # not vacuous
            exact = g.bus_current_bounds()
            for b in lay.buses:
                bound = exact.get(b, 0.0)
                pick = trial % 4
                lim = [bound, np.nextafter(bound, 0), np.nextafter(bound, np.inf), bound * rng.uniform(0.5, 1.5)][pick]
                g.compliance[b] = float(lim) if lim > 0 else None
            want = [b for b, bound in exact.items() if g.compliance[b] is not None and bound >= g.compliance[b]]
            assert g.buses_reaching_limit() == want
    finally:
        g.reset_state()
        g.compliance = {b: None for b in lay.buses}


def test_the_loose_line_currents_bound_the_exact_ones_and_alone_clear_a_guarded_read(
        crossbar_guard: SafetyGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    """The O(N) triangle-inequality bound of each line's current is above the exact bound in
    every state; in a guarded read's state (one row at the read voltage, every other line at
    0 V) it clears the bench file's limits alone, and the verdict is the exact one."""
    g = crossbar_guard
    monkeypatch.setattr(g, "fast_bounds_min_devices", 0)
    lay = g.layout
    rng = np.random.default_rng(8)
    gmax = g.limits.g_max_expected_S
    n_lines = len(lay.lines)
    for trial in range(200):
        v = rng.choice([0.0, 0.1, -0.1, 0.25, 1.5, np.nan], size=n_lines)
        v[rng.random(n_lines) < rng.random()] = np.nan
        loose, exact = g._bounds.line_currents_loose(v, gmax), g._bounds.line_currents(v, gmax)
        assert np.all(loose >= exact * (1 - 1e-12)), trial
        if np.isnan(v).all():  # nothing driven: nothing flows
            assert not loose.any()
            continue
        m = np.fmax(np.abs(np.fmax(v, np.nanmin(v))), np.abs(np.fmin(v, np.nanmax(v))))
        ra, cb = g._bounds.bipartite  # the bound as stated, summed device by device's line
        ref = np.zeros(n_lines)
        np.add.at(ref, ra, gmax * (cb.size * m[ra] + m[cb].sum()))
        np.add.at(ref, cb, gmax * (ra.size * m[cb] + m[ra].sum()))
        assert np.array_equal(loose, ref), trial
    by_line = {}
    for xp, (bus, line) in lay.owner.items():
        by_line.setdefault(line, {})[bus] = xp
    drive, guard = lay.by_role("drive")[0], lay.by_role("guard")[0]
    try:
        g.reset_state()
        for b, cfg in g.config.buses.items():
            g.outputs[b] = True
            g.compliance[b] = cfg.compliance_A
        g.levels[drive] = g.limits.v_read_default_V
        g.closed.update([by_line[0][drive]] + [by_line[line][guard] for line in range(1, n_lines)])
        g.changed()
        exact = g.bus_current_bounds()
        assert 0 < max(exact.values()) and all(exact[b] < g.compliance[b] for b in exact)

        def not_needed(*_a: object) -> None:
            raise AssertionError("the loose bound should have decided")

        monkeypatch.setattr(g._bounds, "line_currents_fast", not_needed)
        assert g.buses_reaching_limit() == []
        g.compliance[drive] = exact[drive]  # at the exact bound: the loose one cannot clear it
        monkeypatch.undo()
        monkeypatch.setattr(g, "fast_bounds_min_devices", 0)
        assert g.buses_reaching_limit() == [drive]
    finally:
        g.reset_state()
        g.compliance = {b: None for b in lay.buses}


def test_the_shared_line_voltages_change_object_with_the_state(crossbar_guard: SafetyGuard) -> None:
    g = crossbar_guard
    try:
        g.reset_state()
        first = g.present_line_voltages()
        assert g.present_line_voltages() is first and not first.flags.writeable
        bus = g.layout.buses[0]
        g.outputs[bus] = True
        g.closed.add(next(xp for xp, (b, _) in g.layout.owner.items() if b == bus))
        g.changed()
        g.commit_level(bus, 0.1)
        now = g.present_line_voltages()
        assert now is not first and np.array_equal(now, g.line_voltages(), equal_nan=True)
        assert np.nanmax(now) == 0.1
    finally:
        g.reset_state()


def test_the_paper_bench_readings_follow_the_guard_state() -> None:
    """The paper bench keeps per-state currents: after every change of levels, outputs or relays
    a reading is the plain sum over the bus's closed lines of the per-line currents."""
    from lab.bench import PaperBench

    cfg = load_bench("sim-crossbar35-sot")
    g, paper = SafetyGuard(cfg), PaperBench(cfg)
    paper.guard = g
    lay = g.layout
    a, b = lay.devices[:, 0], lay.devices[:, 1]
    by_line: dict[int, list[str]] = {}
    for xp, (_, line) in lay.owner.items():
        by_line.setdefault(line, []).append(xp)
    rng = np.random.default_rng(3)
    for _ in range(30):
        g.reset_state()
        for bus in lay.buses:
            g.outputs[bus] = bool(rng.random() < 0.9)
            g.levels[bus] = float(rng.choice([0.0, 0.05, -0.1]))
        g.closed.update(str(rng.choice(xps)) for xps in by_line.values() if rng.random() < 0.7)
        g.changed()
        for _ in range(2):  # the second time from what was kept
            v = g.line_voltages()
            i_dev = np.where(np.isfinite(v[a] - v[b]), paper.g * (v[a] - v[b]), 0.0)
            out = np.bincount(a, i_dev, len(lay.lines)) - np.bincount(b, i_dev, len(lay.lines))
            for bus in lay.buses:
                lines = sorted(lay.owner[xp][1] for xp in g.closed if lay.owner[xp][0] == bus)  # line order
                want = float(out[lines].sum()) if lines else 0.0
                assert paper.measure(bus).current == want


def test_the_twin_links_its_closed_relays_in_channel_name_order() -> None:
    """The circuit's passive sums follow its links' order, the closed channels' sorted names: a
    closed set kept in step with each relay change gives that order, whatever the wiring's."""
    from sim_backend import SimulatedBench

    topo = crossbar(5)
    buses = ("drive", "sense", "guard")
    rng = np.random.default_rng(4)
    pairs = [(b, line) for b in buses for line in topo.line_names]
    xp = {f"{rng.integers(10**6):06d}:{b}:{line}": (b, line) for b, line in (pairs[i] for i in rng.permutation(len(pairs)))}
    bench = SimulatedBench(topo, "crossbar-sot", buses=buses, crosspoints=xp, seed=1)
    names = list(xp)
    assert names != sorted(names)
    idx = bench.circuit.bus_index
    for _ in range(30):
        bench.close([c for c in names if rng.random() < 0.3])
        bench.open([c for c in names if rng.random() < 0.3])
        bench.solve_now()
        want = [(idx[xp[c][0]], topo.line_index(xp[c][1]), bench.contact_resistance_ohm) for c in sorted(bench.closed())]
        assert bench.circuit.links == want
