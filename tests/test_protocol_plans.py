"""Protocol plans driven by hand: each operation answered from a known conductance matrix.

This exercises the protocols' logic (encodings, bookkeeping, recall from measured fields)
without a runner; the runner-level tests run the same protocols on the simulated bench.
"""
import itertools

import numpy as np
import pytest

from lab.operations import (
    Apply, ApplyResult, BenchInfo, Checkpoint, MatrixResult, Multiply, MultiplyResult, Pulse, ReadMatrix,
    ReadPair, PairResult,
)
from protocols import hopfield_reference as ref
from protocols.common import PatternChoice, field_matrix, outer_product_phases, symmetric_matrix
from protocols.read_conductances import ReadConductances
from protocols.recall import Recall
from protocols.train import TrainHopfield


def film_bench(n):
    pairs = tuple(itertools.combinations(range(n), 2))
    return BenchInfo(
        line_names=tuple(f"C{i}" for i in range(n)), neuron_lines=tuple((i,) for i in range(n)),
        devices=pairs, device_cells=pairs, topology="film", v_max=5.0, v_read_max=0.1,
        max_pulse_width_s=1.0, default_v_read=0.05, simulated=True,
    )


def crossbar_bench(n, tied=True):
    devices = tuple((i, n + j) for i in range(n) for j in range(n))
    cells = tuple((i, j) for i in range(n) for j in range(n))
    lines = tuple(f"R{i}" for i in range(n)) + tuple(f"K{i}" for i in range(n))
    neurons = tuple((i, n + i) for i in range(n)) if tied else tuple((i,) for i in range(n))
    return BenchInfo(lines, neurons, devices, cells, "crossbar", 5.0, 0.1, 1.0, 0.05, True)


class HandBench:
    """Answers operations from a fixed device-conductance vector; records what was asked."""

    def __init__(self, bench, g):
        self.bench, self.g, self.ops = bench, np.asarray(g, float), []

    def answer(self, op):
        self.ops.append(op)
        b = self.bench
        if isinstance(op, ReadMatrix):
            g = self.g.copy()
            if op.devices is not None:
                mask = np.ones(len(g), bool)
                mask[list(op.devices)] = False
                g[mask] = np.nan
            return MatrixResult(g, np.zeros_like(g), symmetric_matrix(b, g), np.zeros((b.n_neurons,) * 2), 0.05)
        if isinstance(op, Multiply):
            v = op.v_read or b.default_v_read
            s = np.array(op.pattern, float)
            cur = v * field_matrix(b, self.g) @ s
            if op.neurons is not None:
                keep = np.full(len(cur), np.nan)
                keep[list(op.neurons)] = cur[list(op.neurons)]
                cur = keep
            return MultiplyResult(cur, s, v)
        if isinstance(op, (Apply, Pulse)):
            return ApplyResult(np.zeros(b.n_lines), 0.0, {})
        if isinstance(op, ReadPair):
            return PairResult(1e-4, 0.0, 1e-4 * 0.05, 0.05)
        return None

    def run(self, protocol, resume=None):
        gen = protocol.steps(self.bench, resume)
        try:
            op = next(gen)
            while True:
                op = gen.send(self.answer(op))
        except StopIteration as stop:
            return stop.value


def hebbian_conductances(bench, x, g0=1e-4, a=2e-6):
    """Device conductances G = g0 + a·W_hebb (what an ideally trained array would read)."""
    w = ref.hebbian(x)
    return np.array([g0 + a * w[i, j] for i, j in bench.device_cells])


def test_read_conductances_full_and_pairs():
    b = film_bench(5)
    g = np.linspace(1e-4, 2e-4, b.n_devices)
    out = HandBench(b, g).run(ReadConductances(repeats=3))
    assert out["matrix"][1, 0] == out["matrix"][0, 1] == g[0]
    assert np.isnan(out["matrix"][2, 2])
    hb = HandBench(b, g)
    out = hb.run(ReadConductances(pairs=((3, 1),)))
    assert hb.ops[0].devices == (b.device_cells.tolist().index([1, 3]),)
    assert np.isfinite(out["g"]).sum() == 1
    with pytest.raises(ValueError, match="neurons run 0..2"):
        HandBench(crossbar_bench(3, tied=False), np.ones(9)).run(ReadConductances(pairs=((0, 7),)))
    with pytest.raises(ValueError, match="read ceiling"):
        HandBench(b, g).run(ReadConductances(v_read=1.0))
    with pytest.raises(ValueError, match="itself"):
        ReadConductances(pairs=((2, 2),))


def test_train_puts_patterns_on_lines_and_reads_every_k():
    b = film_bench(35)
    t = TrainHopfield(patterns=PatternChoice(names=("L", "T")), epochs=4, v_train=1.5, read_every=2,
                      pulse={"width_s": 1e-3, "count": 3}, anneal="none", level_power=False, shuffle=False,
                      read_first=False)
    hb = HandBench(b, np.full(b.n_devices, 1e-4))
    out = hb.run(t)
    pulses = [op for op in hb.ops if isinstance(op, Pulse)]
    assert len(pulses) == 8 and all(p.count == 3 and p.width_s == 1e-3 for p in pulses)
    x = t.patterns.load()[1]
    assert [v for _, v in pulses[1].line_voltages] == list(1.5 * x[1])
    # one level: the + lines at 2V, the − lines held at 0 V — every device sees (s_i − s_j)·V
    single = HandBench(b, np.full(b.n_devices, 1e-4))
    single.run(t.model_copy(update={"levels": "single"}))
    first = [op for op in single.ops if isinstance(op, Pulse)][1]
    assert dict(first.line_voltages) == {i: 3.0 for i in range(35) if x[1][i] > 0}
    assert out["epochs"] == [2, 4] and len(out["g"]) == 2
    assert sum(isinstance(op, Checkpoint) for op in hb.ops) == 4
    hb2 = HandBench(b, np.full(b.n_devices, 1e-4))
    hb2.run(t, resume={"epoch": 3})
    assert sum(isinstance(op, Pulse) for op in hb2.ops) == 2


def test_train_refuses_bad_plans_before_touching_anything():
    b = film_bench(35)
    with pytest.raises(ValueError, match="v_max"):
        HandBench(b, np.ones(b.n_devices)).run(TrainHopfield(patterns=PatternChoice(names=("L",)), v_train=9.0))
    with pytest.raises(ValueError, match="needs a crossbar"):
        HandBench(b, np.ones(b.n_devices)).run(
            TrainHopfield(patterns=PatternChoice(names=("L",)), v_train=1.0, encoding="outer_product"))
    with pytest.raises(ValueError, match="7 neurons|pixels"):
        HandBench(film_bench(7), np.ones(21)).run(TrainHopfield(patterns=PatternChoice(names=("L",)), v_train=1.0))
    with pytest.raises(ValueError, match="not both or neither"):
        PatternChoice()
    with pytest.raises(ValueError, match="no glyph"):
        PatternChoice(names=("L", "?"))


def test_outer_product_phases_give_signed_products_and_respect_half_select():
    n = 5
    b = crossbar_bench(n, tied=False)
    s = np.array([1, -1, -1, 1, 1], float)
    total = np.zeros(b.n_devices)
    worst_unselected = 0.0
    for volts, sign in outer_product_phases(b, s, s, 2.0):
        dv = np.array([volts.get(a, 0.0) - volts.get(c, 0.0) for a, c in b.devices])
        selected = np.isclose(np.abs(dv), 2.0)
        worst_unselected = max(worst_unselected, np.abs(dv[~selected]).max(initial=0))
        assert np.all(np.sign(dv[selected]) == sign)
        total += np.where(selected, dv, 0.0)
    expect = np.array([2.0 * s[i] * s[j] for i, j in b.device_cells])
    assert np.allclose(total, expect)
    assert worst_unselected <= 1.0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_materio_recall_equals_software_recall_on_the_same_weights(mode):
    b = film_bench(35)
    names, x = PatternChoice(names=("C", "O", "D", "G")).load()
    g = hebbian_conductances(b, x)
    rec = Recall(patterns=PatternChoice(names=names), cues={"per_pattern": 3, "seed": 4}, mode=mode, order_seed=5)
    out = HandBench(b, g).run(rec)
    gm = symmetric_matrix(b, g)
    w = np.nan_to_num(gm - np.nanmean(gm))
    np.fill_diagonal(w, 0)
    rng = np.random.default_rng(5)
    for cue, final in zip(out["cues"], out["finals"]):
        r = ref.recall(w, cue, mode=mode, max_steps=30, rng=rng)
        assert np.array_equal(r.final, final)
    soft = HandBench(b, g).run(rec.model_copy(update={"compute": "software"}))
    assert np.array_equal(soft["finals"], out["finals"])
    assert soft["exact"] == out["exact"]


def test_recall_records_energy_trace_that_falls():
    b = film_bench(35)
    names, x = PatternChoice(names=("L", "T", "X", "O")).load()
    hb = HandBench(b, hebbian_conductances(b, x))
    out = hb.run(Recall(patterns=PatternChoice(names=names), cues={"per_pattern": 5, "seed": 1}, mode="async"))
    assert out["exact"] == 1.0 and out["bit_accuracy"] == 1.0 and out["n_cues"] == 20
    from lab.operations import Record

    traces = [op.values for op in hb.ops if isinstance(op, Record) and op.stream == "recall"]
    assert len(traces) == 20
    for tr in traces:
        assert np.all(np.diff(tr["energy"]) <= 1e-18)
        assert tr["overlaps"][tr["target"]] == 1.0
    # a calibration read (for the multiply's contact-loss model), one full multiply for the
    # reference, then per cue: full + single-neuron multiplies
    kinds = [op.kind for op in hb.ops if op.kind != "note"]
    assert kinds[:2] == ["read_matrix", "multiply"]
    first = next(op for op in hb.ops if isinstance(op, Multiply))
    assert first.pattern == (1,) * 35


def test_recall_with_probe_and_sync_cycle_stop():
    b = film_bench(35)
    names, x = PatternChoice(names=("D", "O")).load()
    out = HandBench(b, hebbian_conductances(b, x)).run(
        Recall(patterns=PatternChoice(names=names), probes=PatternChoice(names=("Q",)), mode="sync"))
    assert out["targets"].tolist() == [1]  # Q is scored against O, its closest stored glyph
