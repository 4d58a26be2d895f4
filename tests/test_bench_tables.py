"""The bench layer's index tables: shared read-only int32 arrays (not tuples per device), a
BenchInfo that compares and pickles by value, a compact device index; and the pre-flight's
cheap keys, which must reuse exactly what the full replay computes."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from conftest import film_config
from lab import preflight
from lab.bench import bench_info
from lab.layout import DeviceIndex
from lab.operations import BenchInfo, Pulse, ReadMatrix
from protocols.base import Protocol
from protocols.common import symmetric_matrix
from protocols.train import TrainHopfield


def _info(**kw) -> BenchInfo:
    args = dict(line_names=("C0", "C1", "C2"), neuron_lines=((0,), (1,), (2,)),
                devices=((0, 1), (0, 2), (1, 2)), device_cells=((0, 1), (0, 2), (1, 2)), topology="film",
                v_max=5.0, v_read_max=0.1, max_pulse_width_s=1.0, default_v_read=0.05, simulated=True)
    return BenchInfo(**{**args, **kw})


def test_bench_info_shares_the_layouts_read_only_arrays() -> None:
    cfg = film_config(6)
    info = bench_info(cfg, True)
    lay = cfg.layout
    assert info.devices is lay.devices and info.device_cells is lay.device_cells
    assert lay.devices is lay.device_cells  # a film's cells are its lines: one table
    for a in (info.devices, lay.devices):
        assert a.dtype == np.int32 and a.shape == (15, 2) and not a.flags.writeable
        with pytest.raises(ValueError):
            a[0, 0] = 3
    assert info.devices.tolist()[:2] == [[0, 1], [0, 2]]


def test_bench_info_from_tuples_compares_and_pickles_by_value() -> None:
    a, b = _info(), _info(devices=np.array([[0, 1], [0, 2], [1, 2]]))
    assert a.devices.dtype == np.int32 and not a.devices.flags.writeable
    assert a == b and a != _info(devices=((0, 1), (0, 2), (2, 1)))
    assert a != _info(v_max=4.0)
    with pytest.raises(TypeError):
        hash(a)
    c = pickle.loads(pickle.dumps(a))
    assert c == a and not c.devices.flags.writeable and c.devices.dtype == np.int32
    own = np.array([[0, 1], [0, 2], [1, 2]], dtype=np.int32)
    d = _info(devices=own)
    assert np.shares_memory(d.devices, own) and own.flags.writeable  # a read-only view, the caller's left alone
    with pytest.raises(ValueError, match="device_cells"):
        _info(device_cells=((0, 1),))
    with pytest.raises(ValueError, match="BenchInfo.devices"):
        _info(devices=((0.5, 1), (0, 2), (1, 2)))
    assert _info(devices=(), device_cells=()).n_devices == 0


class _SquareTable:
    """The former device index: an n_lines × n_lines table, filled forwards then backwards."""

    def __init__(self, devices: np.ndarray, n: int) -> None:
        self.k = np.full((n, n), -1)
        self.k[devices[:, 0], devices[:, 1]] = np.arange(len(devices))
        self.k[devices[:, 1], devices[:, 0]] = np.arange(len(devices))


def test_the_compact_device_index_answers_as_the_square_table() -> None:
    rng = np.random.default_rng(3)
    cases = [(film_config(6).layout.devices, 6)]
    cases += [(rng.integers(0, n, size=(int(rng.integers(1, 40)), 2)), n)
              for n in rng.integers(2, 12, size=60).tolist()]  # duplicates, both orientations, loops
    for devices, n in cases:
        new, ref = DeviceIndex(devices, n), _SquareTable(devices, n)
        expect = {(a, b): int(ref.k[a, b]) for a in range(n) for b in range(n) if ref.k[a, b] >= 0}
        assert dict(new.items()) == expect and len(new) == len(expect)
        for a in range(-1, n + 1):
            for b in range(-1, n + 1):
                if (a, b) in expect:
                    assert new[(a, b)] == expect[(a, b)]
                else:
                    assert (a, b) not in new
    big = np.stack(np.divmod(np.arange(200 * 200), 200), axis=1) + [0, 200]
    assert DeviceIndex(big, 400)._k.dtype == np.int32 and DeviceIndex(big[:1000], 400)._k.dtype == np.int16


def test_symmetric_matrix_of_the_same_reading_again_is_an_independent_copy() -> None:
    info = _info()
    g = np.array([1.0, 2.0, np.nan])
    m1 = symmetric_matrix(info, g)
    m1[0, 1] = 99.0
    m2 = symmetric_matrix(info, g.copy())
    assert m2[0, 1] == 1.0 and m2[1, 0] == 1.0 and np.isnan(m2[1, 2])
    g[0] = 3.0  # the same object with other values: recomputed, not reused
    assert symmetric_matrix(info, g)[0, 1] == 3.0


class _FreshTuples(Protocol):
    """Equal pulse drives as new tuple objects every time, some at widths seen before."""

    name = "test_bench_tables_fresh"
    epochs: int = 40

    def steps(self, bench, resume=None):
        for e in range(self.epochs):
            for k in range(3):
                volts = {i: (0.5 if (i + k) % 2 else -0.5) for i in range(bench.n_lines)}
                yield Pulse.of(volts, 2e-3 + 1e-5 * (e % 7) + 1e-4 * e * (k == 2), count=2)
            yield ReadMatrix()


def _same(fast, full) -> None:
    assert (fast.commands, fast.relay_operations, fast.measurements) == (full.commands, full.relay_operations,
                                                                         full.measurements)
    for name in ("bench_time_s", "charge_C", "energy_J", "write_time_s", "max_device_V"):
        assert getattr(fast, name) == pytest.approx(getattr(full, name), rel=1e-9, abs=1e-15), name


@pytest.mark.parametrize("entries", [4096, 5])
def test_drives_as_new_equal_tuples_and_a_forgetful_cache_reuse_exactly(
        monkeypatch: pytest.MonkeyPatch, entries: int) -> None:
    # equal line voltages arrive as distinct tuples (interned by value, not identity only); with
    # a tiny bound every table is forgotten again and again mid-plan: still exact
    monkeypatch.setattr(preflight, "_CACHE_ENTRIES", entries)
    cfg = film_config(6)
    info = bench_info(cfg, True)
    fast = preflight.dry_check(cfg, info, _FreshTuples())
    full = preflight.dry_check(cfg, info, _FreshTuples(), reuse=False)
    _same(fast, full)
    if entries > 100:
        assert fast.reused > 0.8 * fast.n_operations


def test_the_width_window_passes_only_widths_the_hold_by_hold_check_passes() -> None:
    cfg = film_config(6)
    info = bench_info(cfg, True)
    shapes: list = []
    make = preflight.PulseShape

    def spy() -> preflight.PulseShape:
        s = make()
        shapes.append(s)
        return s

    mp = pytest.MonkeyPatch()
    mp.setattr(preflight, "PulseShape", spy)
    try:
        preflight.dry_check(cfg, info, TrainHopfield(epochs=150, read_every=0,
                                                    patterns={"vectors": [[1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1]]}))
    finally:
        mp.undo()
    limit = cfg.limits.pulse_width_max_s * (1 + 1e-9)
    used = [s for s in shapes if s._window is not None]
    assert used and any(np.isfinite(s._window[1]) for s in used)  # some shapes have holds bounding the width
    for s in used:
        lo, hi = s._window
        edges = [w for w in (lo, hi) if np.isfinite(w) and w > 0]
        probes = [w * (1 + f) for w in edges for f in (-1e-6, -1e-9, -1e-12, 0.0, 1e-12, 1e-9, 1e-6)]
        probes += np.geomspace(1e-7, 0.1, 200).tolist()
        for w in probes:
            if lo < w < hi:
                assert s._passes(w, limit), (w, lo, hi)
        # outside the window a width is decided hold by hold, as before: no false refusals either
        inside = [w for w in probes if s._passes(w, limit)]
        assert all(lo * (1 - 1e-6) <= w <= hi * (1 + 1e-6) for w in inside)


def _records(cfg, proto, resume=None) -> list:
    """The train_epoch records a plan yields, driven by the pre-flight's paper bench."""
    replay = preflight._Replay(cfg, None, True)
    gen = proto.steps(bench_info(cfg, True), resume=resume)
    out, result, first = [], None, True
    while True:
        try:
            op = next(gen) if first else gen.send(result)
        except StopIteration:
            return out
        first = False
        if getattr(op, "stream", None) == "train_epoch":
            out.append((op.values["epoch"], op.values["order"].tolist(), op.values["v_train"].tolist()))
        result, _ = replay.step(op)


def test_training_orders_are_drawn_per_epoch_as_presentations_lists_them_and_resume_continues() -> None:
    cfg = film_config(6)
    patterns = {"vectors": [[1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1], [1, 1, 1, -1, -1, -1]]}
    proto = TrainHopfield(epochs=7, read_every=3, patterns=patterns)
    plan = proto.presentations(bench_info(cfg, True))
    full = _records(cfg, proto)
    assert [o for _, o, _ in full] == [[k for e, k, _ in plan if e == epoch] for epoch in range(7)]
    assert len({tuple(o) for _, o, _ in full}) > 1  # shuffled: the check can tell orders apart
    levels = full[0][2]
    by_pattern = dict(zip(full[0][1], levels))
    resumed = _records(cfg, proto, resume={"epoch": 4, "v_levels": [by_pattern[k] for k in range(3)]})
    assert [(e, o) for e, o, _ in resumed] == [(e, o) for e, o, _ in full[4:]]
