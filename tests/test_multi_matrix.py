"""Large crossbars wired over several 707B mainframes joined on shared rows.

Row A..H of every mainframe is the same bus; each mainframe's columns go to different lines,
and a crosspoint above the drivers is "<matrix>:<channel>". Checked here: the bench files
(the shipped N=128 and N=256 ones, and errors naming their field), a real dry run over the
simulated VISA library on a small bench split over two mainframes (the read against the
twin's truth, and every mainframe sent only its own channels), cleanup that opens and reads
back each mainframe and says so per mainframe, and the estimate of the N=256 bench.
"""
from __future__ import annotations

import copy
import re
import time
import tomllib
from typing import Any

import numpy as np
import pytest

from lab.bench import Bench, PaperBench, twin_spec
from lab.config import SHIPPED_BENCHES, load_bench, parse_bench
from lab.errors import ConfigError
from lab.matrices import CrosspointError, MatrixGroup
from lab.operations import ReadPair
from lab.runner import Runner
from lab.safety import SafetyGuard, secure
from lab.timing import TimingModel
from protocols.base import Protocol, load_protocol
from sim_backend.twin import build_twin

XBAR35 = SHIPPED_BENCHES / "sim-crossbar35-sot.toml"
_CHANNEL = re.compile(r"\b([1-6][A-H](?:0[1-9]|1[0-2]))\b")


def split_bench(n: int = 8) -> dict[str, Any]:
    """The N=35 crossbar bench cut to ``n``, rows on mainframe m1 and columns on m2 (one card
    each), so row i and column i sit on the same slot and column of two mainframes."""
    d = copy.deepcopy(tomllib.loads(XBAR35.read_text()))
    d["name"] = f"split{n}"
    matrix = d["instruments"][0]
    m1 = {**matrix, "name": "m1", "cards": 1}
    m2 = {**matrix, "name": "m2", "cards": 1, "resource": "TCPIP::192.168.10.30::5025::SOCKET"}
    d["instruments"] = [m1, m2] + d["instruments"][1:]
    d["array"]["n"] = n
    d["wiring"]["matrix"] = ["m1", "m2"]
    d["wiring"]["lines"] = {**{f"R{i}": ["m1", 1, i + 1] for i in range(n)},
                            **{f"K{i}": ["m2", 1, i + 1] for i in range(n)}}
    return d


def problems(d: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_bench(d, "bad.toml")
    return info.value.problems


def has(probs: list[tuple[str, str]], field: str, text: str) -> bool:
    return any(f == field and text in m for f, m in probs)


# ------------------------------------------------------------------ bench files


@pytest.mark.parametrize("n, k", [(128, 4), (256, 8)])
def test_the_shipped_large_crossbars_load_over_several_mainframes(n: int, k: int) -> None:
    t0 = time.perf_counter()
    cfg = load_bench(f"sim-crossbar{n}-sot")
    lay = cfg.layout
    assert time.perf_counter() - t0 < 1.0  # ~10 ms measured; a file of 512 lines stays instant
    assert cfg.multi_matrix and [m.name for m in cfg.matrices] == [f"m{j + 1}" for j in range(k)]
    assert all(m.cards == 6 for m in cfg.matrices)
    assert len(lay.lines) == 2 * n and len(lay.devices) == n * n
    assert len(lay.crosspoint) == 8 * 2 * n  # eight buses on shared rows reach every line
    assert lay.crosspoint[("drive_pos", 0)] == "m1:1A01"
    assert lay.crosspoint[("sense4", 2 * n - 1)] == f"m{k}:6H04"
    assert len(set(lay.crosspoint.values())) == len(lay.crosspoint)
    # otherwise the N=35 bench: same buses, limits, preset, timing
    small = load_bench("sim-crossbar35-sot")
    assert cfg.buses == small.buses and cfg.limits == small.limits
    assert cfg.simulation == small.simulation and cfg.timing == small.timing
    assert TimingModel.from_config(cfg) == TimingModel.from_config(small)
    # at this size the driven line's drop matters: reads correct for the twin's true contacts
    assert cfg.wiring.contact_resistance_ohm == cfg.simulation.contact_resistance_ohm == 1.0
    with pytest.raises(ConfigError, match="wiring.matrix"):
        cfg.matrix  # noqa: B018 - code asking for the one matrix of several is told so


def test_a_single_matrix_bench_keeps_plain_channel_ids() -> None:
    cfg = load_bench("sim-crossbar35-sot")
    assert not cfg.multi_matrix and cfg.matrix.name == "matrix"
    assert cfg.layout.crosspoint[("drive_pos", 0)] == "1A01"
    bench = Bench.open(cfg, simulate=True)
    try:
        assert bench.matrix is bench.instruments["matrix"]  # the plain driver, no group
        assert bench.twin.bench.crosspoints["1A01"] == ("drive_pos", "R0")
    finally:
        bench.close()


def test_array_limits_per_topology() -> None:
    d = split_bench()
    d["array"]["n"] = 257
    assert any(f == "array.n" for f, _ in problems(d))
    film = tomllib.loads((SHIPPED_BENCHES / "sim-film35.toml").read_text())
    film["array"]["n"] = 97
    assert has(problems(film), "array.n", "a film has at most n=96")


def test_wiring_errors_name_their_field() -> None:
    d = split_bench()
    d["wiring"]["lines"]["K3"] = ["m9", 1, 4]
    assert has(problems(d), "wiring.lines.K3", "'m9' is not one of wiring.matrix")

    d = split_bench()
    d["wiring"]["lines"]["K3"] = [1, 4]
    assert has(problems(d), "wiring.lines.K3", "[matrix, slot, column]")

    d = split_bench()
    d["wiring"]["lines"]["K3"] = ["m2", 2, 4]  # m2 holds one card
    assert has(problems(d), "wiring.lines.K3", "slot 2 not installed (m2 has 1 card(s))")

    d = split_bench()
    d["wiring"]["lines"]["K3"] = ["m2", 1, 1]  # K0's crosspoint
    assert has(problems(d), "wiring.lines.K3", "m2 slot 1 column 1 already wired to line 'K0'")

    d = split_bench()
    d["wiring"]["matrix"] = ["m1", "m3"]
    probs = problems(d)
    assert has(probs, "wiring.matrix[1]", "no instrument named 'm3'")

    d = split_bench()
    d["wiring"]["matrix"] = ["m1", "smu1"]
    assert has(problems(d), "wiring.matrix[1]", "not a switch matrix")

    d = tomllib.loads(XBAR35.read_text())
    d["wiring"]["lines"]["K3"] = ["matrix", 4, 4]
    assert has(problems(d), "wiring.lines.K3", "one matrix (matrix); a line is [slot, column]")


def test_the_same_slot_and_column_on_two_mainframes_are_two_crosspoints() -> None:
    cfg = parse_bench(split_bench(), "split8.toml")  # R0 = m1 1/1, K0 = m2 1/1
    lay = cfg.layout
    assert lay.crosspoint[("guard", 0)] == "m1:1C01" and lay.crosspoint[("guard", 8)] == "m2:1C01"


def test_two_buses_on_one_line_through_two_mainframes_are_still_refused() -> None:
    from lab.errors import SafetyError
    d = split_bench()
    cfg = parse_bench(d, "split8.toml")
    guard = SafetyGuard(cfg)
    with pytest.raises(SafetyError, match="two sources on one line"):
        guard.check_switch({"m1:1A01", "m1:1C01"})  # drive_pos and guard both on R0
    guard.check_switch({"m1:1A01", "m2:1C01"})  # R0 and K0: one source each


def test_the_group_splits_by_mainframe_and_refuses_unknown_names() -> None:
    sent: list[tuple[str, str, list[str]]] = []

    class Fake:
        def __init__(self, name: str) -> None:
            self.name = name

        def close(self, chans: list[str]) -> None:
            sent.append((self.name, "close", chans))

        def open(self, chans: list[str]) -> None:
            sent.append((self.name, "open", chans))

    group = MatrixGroup({"m1": Fake("m1"), "m2": Fake("m2"), "m3": Fake("m3")})
    group.close(["m2:1A01", "m1:1B02", "m2:1C03"])
    assert sent == [("m1", "close", ["1B02"]), ("m2", "close", ["1A01", "1C03"])]
    assert group.commands == 2  # one per mainframe reached
    with pytest.raises(CrosspointError, match="m4:1A01"):
        group.open(["m1:1A01", "m4:1A01"])
    with pytest.raises(CrosspointError, match="'1A01'"):
        group.open(["1A01"])
    assert len(sent) == 2  # nothing sent for a list with a bad name


def test_the_group_opens_every_mainframe_even_when_one_fails() -> None:
    told: list[str] = []

    class Fake:
        def __init__(self, name: str, fail: bool = False) -> None:
            self.name, self.fail = name, fail

        def open_all(self) -> None:
            told.append(self.name)
            if self.fail:
                raise TimeoutError(f"{self.name}: no answer")

        def exclusive_close(self, chans: list[str]) -> None:
            told.append(f"{self.name}={','.join(chans)}")

    group = MatrixGroup({"m1": Fake("m1", fail=True), "m2": Fake("m2"), "m3": Fake("m3")})
    with pytest.raises(TimeoutError, match="m1"):
        group.open_all()
    assert told == ["m1", "m2", "m3"]
    told.clear()
    group.exclusive_close(["m3:1A01"])
    assert told == ["m1=", "m2=", "m3=1A01"]  # the others are told to hold nothing closed


# ------------------------------------------------------------------ dry runs


def _channels_sent(bench: Bench, since: int) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for _, name, message in list(bench.command_log)[since:]:
        if name in bench.matrices and "channel." in message:
            out.setdefault(name, set()).update(_CHANNEL.findall(message))
    return out


def one_matrix_twin_of(d: dict[str, Any]) -> dict[str, Any]:
    """The same bench on one 707B: m1's lines on card 1, m2's on card 2."""
    one = copy.deepcopy(d)
    one["instruments"] = [{**d["instruments"][0], "name": "matrix", "cards": 2}] + d["instruments"][2:]
    one["wiring"]["matrix"] = "matrix"
    one["wiring"]["lines"] = {k: [1 if m == "m1" else 2, col] for k, (m, _, col) in d["wiring"]["lines"].items()}
    return one


def _read(d: dict[str, Any]) -> tuple[np.ndarray, Any, Bench]:
    bench = Bench.open(parse_bench(d, f"{d['name']}.toml"), simulate=True)
    truth = bench.truth()
    res = Runner(bench, lock=False).run(load_protocol("read_conductances", {}))
    assert res.status == "complete"
    return truth, res, bench


def _relay_changes(bench: Bench) -> int:
    """Relay-change commands the matrices received, cleanup's "allslots" opens left out."""
    change = re.compile(r'channel\.(?:open|close|exclusiveclose)\("(?!allslots")')
    return sum(1 for _, name, msg in bench.command_log if name in bench.matrices and change.search(msg))


def test_a_dry_run_over_two_mainframes_reads_the_true_conductances() -> None:
    d = split_bench(8)
    cfg = parse_bench(d, "split8.toml")
    truth, res, bench = _read(d)
    try:
        assert isinstance(bench.matrix, MatrixGroup) and set(bench.matrices) == {"m1", "m2"}
        g = np.asarray(res.returned["g"], float)
        sigma = 0.02 * (1.0e-4 - 5.0e-5)  # crossbar-sot read noise: 2 % of the window
        z = (g - truth) / sigma
        assert abs(z.mean()) < 0.5 and np.abs(z).max() < 4.5, (z.mean(), np.abs(z).max())
        # each mainframe was sent its own channels only, and both took part
        own = {name: {xp.partition(":")[2] for xp in cfg.layout.crosspoint.values() if xp.startswith(f"{name}:")}
               for name in ("m1", "m2")}
        sent = _channels_sent(bench, 0)
        assert set(sent) == {"m1", "m2"}
        for name, chans in sent.items():
            assert chans and chans <= own[name], name
        rows = {f"1{r}0{i + 1}" for r in "ABCDEFGH" for i in range(8)}
        assert own["m1"] == own["m2"] == rows  # same ids, different lines: only the mainframe tells
        assert set(bench.twin.bench.crosspoints) == set(cfg.layout.crosspoint.values())
        for name in ("m1", "m2"):
            assert bench.twin.instruments[name].closed == set()
        assert res.safety.confirmed["m1"] == res.safety.confirmed["m2"] == "all relays open"
        assert bench.twin.bench.hot_switches == 0
    finally:
        bench.close()
    # the same devices on one matrix read bit for bit the same; the split bench only costs the
    # extra mainframe commands (a latency and a settling each): ~1.5 % at N=8, 0.2 % at N=128
    truth1, res1, bench1 = _read(one_matrix_twin_of(d))
    bench1.close()
    # one command per mainframe that changes: a few more than on one matrix, never one per crosspoint
    one_matrix_changes = _relay_changes(bench1)
    assert bench.matrix.commands == _relay_changes(bench)
    assert one_matrix_changes < bench.matrix.commands <= 1.2 * one_matrix_changes
    np.testing.assert_array_equal(truth1, truth)
    np.testing.assert_array_equal(np.asarray(res1.returned["g"]), np.asarray(res.returned["g"]))
    assert res.commands == res1.commands and res1.estimated_time_s < res.estimated_time_s
    assert res1.bench_time_s < res.bench_time_s < 1.025 * res1.bench_time_s
    # every mainframe command of the plan is charged by the guard: what the estimate leaves out
    # is the cleanup's alone (a latency and settling per mainframe, outside the plan), as on one
    # matrix; the plan's own time is estimated to the last digit
    gap1 = res1.bench_time_s - res1.estimated_time_s
    assert 0 < gap1 < 0.01
    assert res.bench_time_s - res.estimated_time_s == pytest.approx(2 * gap1, abs=1e-9)


class ReadThenFail(Protocol):
    name = "multi_matrix_read_then_fail"

    def steps(self, bench, resume=None):
        yield ReadPair(0, bench.n_lines - 1)  # R0 on m1 to K7 on m2: both mainframes closed
        raise RuntimeError("protocol bug")


def test_an_exception_mid_run_opens_and_reads_back_every_mainframe() -> None:
    bench = Bench.open(parse_bench(split_bench(8), "split8.toml"), simulate=True)
    try:
        runner = Runner(bench, lock=False, check=False)
        closed_seen: list[set[str]] = []
        real_close = bench.matrix.close

        def close(xps):
            real_close(xps)
            closed_seen.append(set(bench.twin.bench.closed()))
        bench.matrix.close = close  # the backend reads bench.matrix when it is made: patch first
        with pytest.raises(RuntimeError, match="protocol bug"):
            runner.run(ReadThenFail())
        assert any({c.partition(":")[0] for c in seen} == {"m1", "m2"} for seen in closed_seen)
        for name in ("m1", "m2"):
            assert bench.twin.instruments[name].closed == set()
        assert bench.twin.bench.closed() == set()
        state = runner.last_result.safety
        assert state.safe and state.confirmed["m1"] == "all relays open" and state.confirmed["m2"] == "all relays open"
        assert "m1: all relays open" in state.summary() and "m2: all relays open" in state.summary()
    finally:
        bench.close()


def test_a_mainframe_that_cannot_be_read_back_is_named_and_the_others_still_opened() -> None:
    bench = Bench.open(parse_bench(split_bench(8), "split8.toml"), simulate=True)
    try:
        m1, m2 = bench.twin.instruments["m1"], bench.twin.instruments["m2"]
        bench.matrices["m1"].close(["1A01"])
        bench.matrices["m2"].close(["1C02"])
        m1.faults.timeout = True
        state = secure(bench.channels, bench.matrices, instruments=bench.instruments)
        assert not state.safe
        assert "m1" in state.unconfirmed and "m1" not in state.confirmed
        assert state.confirmed["m2"] == "all relays open" and m2.closed == set()
        assert "m1: NOT confirmed" in state.summary()
    finally:
        bench.twin.instruments["m1"].faults.clear()
        bench.close()


def test_the_paper_bench_charges_each_mainframe_as_the_twin_does() -> None:
    cfg = parse_bench(split_bench(8), "split8.toml")
    t = TimingModel.from_config(cfg)
    paper = PaperBench(cfg)
    paper.close(["m1:1A01", "m1:1B02"])
    assert paper.clock.now() == pytest.approx(t.relay_settling_s)
    paper.close(["m1:1A01", "m2:1B02"])
    assert paper.clock.now() == pytest.approx(3 * t.relay_settling_s)  # the latencies are the guard's
    twin = build_twin(twin_spec(cfg))
    assert set(twin.matrices) == {"m1", "m2"}


def test_the_estimate_of_a_split_bench_agrees_with_its_dry_run() -> None:
    from lab.app.jobs import estimate_protocol
    cfg = parse_bench(split_bench(8), "split8.toml")
    est = estimate_protocol("read_conductances", bench=_write(cfg))
    bench = Bench.open(cfg, simulate=True)
    try:
        res = Runner(bench, lock=False).run(load_protocol("read_conductances", {}))
    finally:
        bench.close()
    assert est["relay_operations"] == res.relay_operations and est["commands"] == res.commands
    assert est["bench_time_s"] == pytest.approx(res.estimated_time_s, rel=1e-9)


_TMP: list[Any] = []


def _write(cfg: Any) -> str:
    import tempfile
    import tomli_w
    folder = tempfile.TemporaryDirectory()
    _TMP.append(folder)
    path = f"{folder.name}/{cfg.name}.toml"
    with open(path, "wb") as fh:
        tomli_w.dump(split_bench(8), fh)
    return path


@pytest.mark.slow
def test_estimate_of_the_256_crossbar() -> None:
    """40-140 s of pre-flight on this machine, by its load (the paper read's guard checks, not the wiring)."""
    from lab.app.jobs import estimate_protocol
    est = estimate_protocol("read_conductances", bench=str(SHIPPED_BENCHES / "sim-crossbar256-sot.toml"))
    assert est["bench_time_s"] > 1000 and est["relay_operations"] > 50_000


def test_over_sockets_every_mainframe_is_locked_and_the_archive_keeps_qualified_relays(tmp_path) -> None:
    from lab.archive import ArchiveWriter, open_run
    from lab.lock import instrument_key
    from sim_backend.server import SimServer

    cfg = parse_bench(split_bench(8), "split8.toml")
    twin = build_twin(twin_spec(cfg))
    server = SimServer(twin.instruments, host="127.0.0.1")
    server.start()
    try:
        bench = Bench.open(cfg, server=server, twin=twin, lock=True)
        try:
            for name in ("m1", "m2"):
                assert instrument_key(server.resources[name]) in bench.lock_keys
            path = tmp_path / "run.h5"
            res = Runner(bench, observers=[ArchiveWriter(path)], lock=False).run(PairAcross())
            assert res.status == "complete" and res.safety.safe
            assert twin.bench.closed() == set() and twin.bench.hot_switches == 0
        finally:
            bench.close()
    finally:
        server.stop()
    with open_run(path) as r:
        relays = [s["relays_closed"] for s in r.operations["settings"] if "relays_closed" in s]
    assert relays and {x.partition(":")[0] for x in relays[0]} == {"m1", "m2"}


class PairAcross(Protocol):
    name = "multi_matrix_pair_across"

    def steps(self, bench, resume=None):
        yield ReadPair(0, bench.n_lines - 1)
