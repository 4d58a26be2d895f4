"""The guard's closed relays: the line -> bus table kept by the changes alone, and the relay
check made from the change agreeing with a check of the whole target."""
from __future__ import annotations

import numpy as np
import pytest

from lab.config import load_bench
from lab.errors import SafetyError
from lab.safety import SafetyGuard
from conftest import film_config


def _reparsed(guard: SafetyGuard) -> tuple[np.ndarray, np.ndarray] | None:
    """(lines, bus indices) in line order from every closed id, parsed afresh; None if shared."""
    owner, idx = guard.layout.owner, guard.bus_index
    pairs = sorted((owner[xp][1], idx[owner[xp][0]]) for xp in guard.closed)
    lines = [line for line, _ in pairs]
    if len(set(lines)) < len(lines):
        return None
    return np.array(lines, dtype=np.intp), np.array([b for _, b in pairs], dtype=np.intp)


def test_the_line_table_follows_every_change_including_shared_lines() -> None:
    guard = SafetyGuard(film_config(8))
    lay = guard.layout
    ids = list(lay.crosspoint.values())
    rng = np.random.default_rng(5)
    closed = guard.closed
    seen_shared = seen_clear = 0
    held: list[frozenset[str]] = []
    for step in range(400):
        before = closed.version
        choice = rng.random() if step % 7 else 0.95  # (replace often enough to repeat sets)
        chans = [str(x) for x in rng.choice(ids, size=int(rng.integers(1, 6)), replace=False)]
        if choice < 0.45:
            closed.update(chans)
        elif choice < 0.9:
            closed.difference_update(chans + [str(rng.choice(sorted(closed)))] if len(closed) else chans)
        elif choice < 0.97:  # a set held before comes back from its kept table
            if held and rng.random() < 0.5:
                closed.replace(held[int(rng.integers(len(held)))])
            else:
                closed.replace(chans)
                held.append(frozenset(closed.ids))
        else:
            closed.clear()
        want = _reparsed(guard)
        got = closed.routed()
        if want is None:
            seen_shared += 1
            assert got is None
            assert closed.shared_lines
        else:
            seen_clear += 1
            assert got is not None
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), step
            assert got[2] == tuple(sorted(set(want[1].tolist())))
        for line in range(len(lay.lines)):
            assert closed.count(line) == sum(1 for xp in closed if lay.owner[xp][1] == line)
        assert closed.version >= before
    assert seen_shared > 20 and seen_clear > 20  # both regimes were exercised


def test_an_unwired_id_is_refused_before_anything_changes() -> None:
    guard = SafetyGuard(film_config(6))
    real = next(iter(guard.layout.crosspoint.values()))
    guard.closed.add(real)
    version = guard.closed.version
    with pytest.raises(KeyError):
        guard.closed.add("9Z99")
    assert guard.closed == {real} and guard.closed.version == version
    assert guard.closed.routed() is not None


def _full_check(guard: SafetyGuard, target: set[str]) -> str | None:
    """What the whole-target loop says of a target: None (allowed) or the fault's field."""
    per_line: dict[int, str] = {}
    for xp in target:
        owner = guard.layout.owner_of(xp)
        if owner is None:
            return "wiring"
        if owner[1] in guard.layout.forbidden:
            return "limits.forbidden_lines"
        if owner[1] in per_line:
            return "two sources on one line"
        per_line[owner[1]] = xp
    return None


def test_the_check_of_a_change_agrees_with_a_check_of_the_whole_target() -> None:
    """Random targets from random (even invalid) closed states: the same verdict, the same
    fault named, and the change returned is exactly the difference."""
    cfg = film_config(8, forbidden_lines=["C5"])
    guard = SafetyGuard(cfg)
    ids = list(cfg.layout.crosspoint.values())
    rng = np.random.default_rng(11)
    verdicts = {}
    for _ in range(600):
        guard.reset_state()
        guard.closed.update(str(x) for x in rng.choice(ids, size=int(rng.integers(0, 12)), replace=False))
        target = {str(x) for x in rng.choice(ids, size=int(rng.integers(0, 12)), replace=False)}
        if rng.random() < 0.5:  # mostly a small change of what is closed, as a read makes
            target = set(guard.closed.ids) ^ set(sorted(target)[:2])
        if rng.random() < 0.15:
            target.add("9Z99")  # no such channel
        want = _full_check(guard, target)
        verdicts[want] = verdicts.get(want, 0) + 1
        if want is None:
            to_open, to_close = guard.check_switch(target)
            assert to_open == sorted(guard.closed.ids - target)
            assert to_close == sorted(target - guard.closed.ids)
        else:
            with pytest.raises(SafetyError) as err:
                guard.check_switch(target)
            assert err.value.field == want
    assert all(verdicts.get(k, 0) > 10 for k in (None, "wiring", "limits.forbidden_lines", "two sources on one line"))


@pytest.mark.parametrize("scope", ["read", "write"])
@pytest.mark.parametrize("bench", ["film", "film-low-power", "crossbar"])
def test_a_level_check_and_the_writing_verdict_are_the_exact_ones(scope: str, bench: str) -> None:
    """The guard passes a level from the span of the driven lines when that alone keeps every
    device within the limits; random states: the same verdict as the worst device's (on a
    crossbar the two extreme lines may be two rows, which no device joins)."""
    if bench == "crossbar":
        cfg = load_bench("sim-crossbar35-sot")
    else:  # (low power: a read-level span can exceed the power limit)
        cfg = film_config(8, power_max_W=0.004 if bench == "film" else 1e-6)
    guard = SafetyGuard(cfg)
    lay, lim = cfg.layout, cfg.limits
    by_line: dict[int, list[str]] = {}
    for xp, (_, line) in lay.owner.items():
        by_line.setdefault(line, []).append(xp)
    rng = np.random.default_rng(3)
    outcomes = set()
    with guard.scoped(scope):
        for _ in range(300):
            guard.reset_state()
            for b in lay.buses:
                guard.outputs[b] = bool(rng.random() < 0.9)
                guard.compliance[b] = 0.01
                if guard.outputs[b]:
                    guard.levels[b] = float(rng.choice([0.0, 0.05, -0.1, 0.2, 1.0, -2.5]))
            guard.closed.update(str(rng.choice(sorted(xps))) for xps in by_line.values() if rng.random() < 0.6)
            guard.changed()
            _, vmax_now = guard._worst_device(guard.line_voltages())
            assert guard.writing() == (vmax_now > lim.v_read_max_V + 1e-9)
            bus = str(rng.choice(lay.buses))
            volts = float(rng.choice([0.0, 0.1, -0.2, 0.6, 2.0]))
            levels = dict(guard.levels)
            levels[bus] = volts
            _, vmax = guard._worst_device(guard.line_voltages(levels))
            ceiling = lim.v_read_max_V if scope == "read" else np.inf
            want = None
            if abs(volts) > guard.v_line_max + 1e-9:
                want = "limits.v_max_V"
            elif volts != 0.0 and not guard.outputs[bus]:
                want = f"buses.{bus}"
            elif vmax > ceiling + 1e-9:
                want = "limits.v_read_max_V"
            elif vmax * vmax * lim.g_max_expected_S > lim.power_max_W * (1 + 1e-9):
                want = "limits.power_max_W"
            outcomes.add(want)
            if want is None:
                guard.check_level(bus, volts)
                assert guard._pending[:3] == (bus, volts, vmax > lim.v_read_max_V + 1e-9)
                guard.commit_level(bus, volts)  # the checked line voltages become the present ones
                assert np.array_equal(guard.line_voltages(), guard.line_voltages(levels), equal_nan=True)
            else:
                with pytest.raises(SafetyError) as err:
                    guard.check_level(bus, volts)
                assert err.value.field == want
    assert None in outcomes and len(outcomes) >= 3
    if bench == "film-low-power":
        assert "limits.power_max_W" in outcomes
    if bench == "crossbar":  # two rows at ±0.15 V, every column at 0 V: a span of 0.3 V, 0.15 V per device
        guard.reset_state()
        n = cfg.array.n
        for b in lay.buses:
            guard.outputs[b], guard.compliance[b] = True, 0.01
        guard.closed.update([lay.crosspoint[("drive_pos", 0)], lay.crosspoint[("drive_neg", 1)]]
                            + [lay.crosspoint[("guard", n + j)] for j in range(n)])
        guard.changed()
        with guard.scoped("read"):
            guard.check_level("drive_pos", 0.15)
            guard.commit_level("drive_pos", 0.15)
            guard.check_level("drive_neg", -0.15)
            guard.commit_level("drive_neg", -0.15)
            assert not guard.writing()
            guard.changed()  # the verdict worked out afresh, not the check's
            assert not guard.writing()


def test_an_id_of_the_wrong_type_is_named_as_unwired() -> None:
    guard = SafetyGuard(film_config(6))
    real = next(iter(guard.layout.crosspoint.values()))
    for bad in (5, None, ("1", "A01")):
        with pytest.raises(SafetyError) as err:
            guard.check_switch({real, bad})
        assert err.value.field == "wiring"
