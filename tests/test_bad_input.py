"""Bad input is rejected before anything opens: a table of bad bench files, protocol parameters
and command options, each run through the ``hopbench`` command (in process) against a bench
file whose instruments are a real sim server on 127.0.0.1. Each must end with an error that
names the offending field or value, and the server must have received no message at all.
"""
from __future__ import annotations

import copy
import math
import os
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import ROOT, film_bench_dict, hopbench

from lab.bench import twin_spec
from lab.config import parse_bench
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

N = 6  # a small film: the control run that does reach the server stays quick


@dataclass
class Served:
    server: SimServer
    bench: Path  # a bench file (simulated = false) whose resources are the server's sockets
    data: dict[str, Any]
    folder: Path

    def sent(self) -> int:
        return len(self.server.command_log)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = film_bench_dict(N)
    twin = build_twin(twin_spec(parse_bench(copy.deepcopy(data), "served.toml")))
    server = SimServer(twin.instruments, host="127.0.0.1")
    server.start()
    try:
        data["simulated"] = False
        for inst in data["instruments"]:
            inst["resource"] = server.resources[inst["name"]]
            inst["visa_library"] = "@py"
        folder = tmp_path_factory.mktemp("bad-input")
        path = folder / "served.toml"
        path.write_text(tomli_w.dumps(data))
        yield Served(server, path, data, folder)
    finally:
        server.stop()


def _edit(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A bench-file change: set the dotted ``path`` (a number indexes a list) to ``value``."""
    def apply(d: dict[str, Any]) -> None:
        *parents, leaf = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = d
        for p in parents:
            node = node[p]
        node[leaf] = value
    return apply


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # after "hopbench"; {bench} and {out} are filled in
    names: tuple[str, ...]  # each must appear in the error
    bench_edit: Callable[[dict[str, Any]], None] | None = None
    bench_file: Callable[[Path], Path] | None = None  # makes an odd bench "file" in a folder
    extra: dict[str, Any] = field(default_factory=dict)


RUN = ("run", "read_conductances", "--bench", "{bench}", "--out", "{out}", "-q")
TRAIN = ("run", "train_hopfield", "--bench", "{bench}", "--out", "{out}", "-q")
RETENTION = ("run", "retention", "--bench", "{bench}", "--out", "{out}", "-q")
RECALL = ("run", "recall", "--bench", "{bench}", "--out", "{out}", "-q")


def _bench(id: str, path: str, value: Any, *names: str) -> Case:
    return Case(id, RUN, names or (path.rsplit(".", 1)[-1],), bench_edit=_edit(path, value))


def _set(id: str, base: tuple[str, ...], *sets: str, names: tuple[str, ...]) -> Case:
    return Case(id, base + tuple(a for s in sets for a in ("--set", s)), names)


def _dev_zero(folder: Path) -> Path:
    return Path("/dev/zero")


def _folder(folder: Path) -> Path:
    d = folder / "a-folder.toml"
    d.mkdir(exist_ok=True)
    return d


def _fifo(folder: Path) -> Path:
    p = folder / "fifo.toml"
    if not p.exists():
        os.mkfifo(p)  # reading it would block for ever: no writer
    return p


def _huge(folder: Path) -> Path:
    p = folder / "huge.toml"
    p.write_text("# padding\n" * 200_000)  # 2 MB of comments: valid TOML, not a bench file
    return p


CASES = [
    # --- the bench file: every bound finite, positive where it must be, types strict
    _bench("power_max_inf", "limits.power_max_W", math.inf),
    _bench("pulse_width_max_inf", "limits.pulse_width_max_s", math.inf),
    _bench("v_max_nan", "limits.v_max_V", math.nan),
    _bench("v_max_negative", "limits.v_max_V", -1.0),
    _bench("g_max_zero", "limits.g_max_expected_S", 0.0),
    _bench("power_max_text", "limits.power_max_W", "1e-3"),
    _bench("v_read_default_tiny", "limits.v_read_default_V", 1e-300),
    _bench("nplc_inf", "timing.nplc", math.inf),
    _bench("compliance_nan", "buses.drive_pos.compliance_A", math.nan, "compliance_A"),
    _bench("simulated_text", "simulated", "no"),
    _bench("simulated_int", "simulated", 0),
    _bench("tied_int", "array.tied", 1),
    _bench("n_bool", "array.n", True, "array.n"),
    _bench("n_float", "array.n", 6.0, "array.n"),
    _bench("timeout_text", "instruments.0.timeout_ms", "5000", "timeout_ms"),
    _bench("seed_negative", "simulation.seed", -1, "seed"),
    _bench("read_noise_unknown", "simulation.read_noise", "exact", "read_noise"),
    _bench("unknown_limit_key", "limits.v_maxx", 1.0),
    _bench("preset_absolute_path", "simulation.preset", "/etc/passwd", "preset"),
    _bench("preset_relative_escape", "simulation.preset", "../../../../etc/hostname.toml", "preset"),
    _bench("preset_dev_zero", "simulation.preset", "/dev/zero", "preset"),
    _bench("preset_unknown_name", "simulation.preset", "no-such-preset", "preset"),
    _bench("preset_override_inf", "simulation.preset_overrides", {"read_noise_window": math.inf}, "read_noise_window"),
    _bench("preset_override_bool", "simulation.preset_overrides", {"read_noise_window": True}, "read_noise_window"),
    _bench("model_unknown", "instruments.0.model", "keithley9999", "model"),
    _bench("wiring_column_float", "wiring.lines.C0", [1.5, 1], "wiring.lines.C0"),
    _bench("n_huge", "array.n", 1_000_000_000, "array.n"),
    _bench("v_read_max_microvolt", "limits.v_read_max_V", 1e-6, "v_read_max_V"),
    _bench("line_frequency_55", "timing.line_frequency_Hz", 55, "line_frequency_Hz"),
    _bench("forbidden_line_unknown", "limits.forbidden_lines", ["ZZ"], "forbidden_lines"),
    _bench("name_number", "name", 5, "name"),
    Case("check_bad_bench_online", ("check", "{bench}"), ("power_max_W",),
         bench_edit=_edit("limits.power_max_W", math.inf)),
    # --- bench files that are not files of a bench
    Case("bench_dev_zero", RUN, ("/dev/zero", "regular file"), bench_file=_dev_zero),
    Case("bench_folder", RUN, ("a-folder.toml", "regular file"), bench_file=_folder),
    Case("bench_fifo", RUN, ("fifo.toml", "regular file"), bench_file=_fifo),
    Case("bench_huge", RUN, ("huge.toml", "bytes"), bench_file=_huge),
    # --- protocol parameters: strict types, finite numbers, ranges, bounded counts
    _set("epochs_bool", TRAIN, "epochs=true", names=("epochs",)),
    _set("epochs_float", TRAIN, "epochs=1e9", names=("epochs",)),
    _set("epochs_zero", TRAIN, "epochs=0", names=("epochs",)),
    _set("epochs_negative", TRAIN, "epochs=-1", names=("epochs",)),
    _set("epochs_text", TRAIN, "epochs=ten", names=("epochs",)),
    _set("v_train_inf", TRAIN, "v_train=inf", names=("v_train",)),
    _set("v_train_nan", TRAIN, "v_train=nan", names=("v_train",)),
    _set("pulse_count_huge", RETENTION, "program={{v = 0.8, count = 100000000}}", names=("pulse.count",)),
    _set("pulse_count_bool", TRAIN, "pulse.count=true", names=("pulse.count",)),
    _set("pulse_width_inf", TRAIN, "pulse.width_s=inf", names=("pulse.width_s",)),
    _set("pulse_width_1e9", RETENTION, "program={{v = 0.8, width_s = 1e9}}",
         names=("pulse.width_s", "pulse_width_max_s")),
    _set("calibrate_text", RECALL, 'calibrate="no"', names=("calibrate",)),
    _set("calibrate_int", RECALL, "calibrate=0", names=("calibrate",)),
    _set("v_read_tiny", RUN, "v_read=1e-300", names=("v_read",)),
    _set("v_read_microvolt", RUN, "v_read=1e-6", names=("v_read",)),
    _set("v_read_nan", RUN, "v_read=nan", names=("v_read",)),
    _set("v_read_inf", RUN, "v_read=inf", names=("v_read",)),
    _set("v_read_negative", RUN, "v_read=-0.1", names=("v_read",)),
    _set("v_read_too_high", RUN, "v_read=5.0", names=("v_read",)),
    _set("repeats_bool", RUN, "repeats=true", names=("repeats",)),
    _set("repeats_huge", RUN, "repeats=100000000", names=("repeats",)),
    _set("repeats_zero", RUN, "repeats=0", names=("repeats",)),
    _set("unknown_parameter", RUN, "nosuch=1", names=("nosuch",)),
    _set("duplicate_set", RUN, "repeats=1", "repeats=2", names=("repeats",)),
    _set("scheme_unknown", RUN, 'scheme="bogus"', names=("scheme",)),
    _set("pairs_no_such_line", RUN, "pairs=[[0, 99]]", names=("99",)),
    _set("set_without_value", RUN, "repeats", names=("repeats",)),
    _set("set_without_name", RUN, "=5", names=("=5",)),
    Case("estimate_v_read_tiny", ("estimate", "read_conductances", "--bench", "{bench}", "--set", "v_read=1e-300"),
         ("v_read",)),
    Case("protocol_file_bad_type", ("run", "{protocol}", "--bench", "{bench}", "--out", "{out}", "-q"),
         ("repeats",), extra={"protocol": 'protocol = "read_conductances"\nrepeats = true\n'}),
    Case("protocol_file_fifo", ("run", "{fifo_protocol}", "--bench", "{bench}", "--out", "{out}", "-q"),
         ("regular file",)),
    # --- where to write
    Case("out_root", ("run", "read_conductances", "--bench", "{bench}", "--out", "/", "-q"), ("--out",)),
    Case("out_etc", ("run", "read_conductances", "--bench", "{bench}", "--out", "/etc", "-q"), ("--out", "/etc")),
    Case("out_usr_below", ("run", "read_conductances", "--bench", "{bench}", "--out", "/usr/lib/hb", "-q"),
         ("--out",)),
    Case("demo_out_root", ("demo", "--out", "/", "-q"), ("--out",)),
    Case("sweep_workers_zero", ("sweep", str(ROOT / "data" / "sweeps" / "read-noise.toml"), "--workers", "0",
                                "--out", "{out}", "-q"), ("--workers",)),
]


def _args(case: Case, served: Served, tmp: Path) -> list[str]:
    bench = served.bench
    if case.bench_edit is not None:
        data = copy.deepcopy(served.data)
        case.bench_edit(data)
        bench = tmp / f"{case.id}.toml"
        bench.write_text(_toml(data))
    elif case.bench_file is not None:
        bench = case.bench_file(served.folder)
    protocol = tmp / "protocol.toml"
    protocol.write_text(case.extra.get("protocol", ""))
    fifo = tmp / "fifo-protocol.toml"
    os.mkfifo(fifo)
    return [a.format(bench=bench, out=tmp / "runs", protocol=protocol, fifo_protocol=fifo) for a in case.args]


def _toml(data: dict[str, Any]) -> str:
    """TOML of a bench dict, NaN and inf included (TOML has them: nan, inf)."""
    text = tomli_w.dumps(data)
    tomllib.loads(text)  # the file itself is valid TOML: the error must come from the checks
    return text


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_named_and_sends_nothing(case: Case, served: Served, tmp_path: Path) -> None:
    args = _args(case, served, tmp_path)
    before = served.sent()
    res = hopbench(*args)
    error = " ".join((res.stderr + res.stdout).split())
    assert res.returncode != 0, f"accepted: {args}\n{res.stdout}"
    assert "error" in error.lower() and "Traceback" not in error
    for name in case.names:
        assert name in error, f"{case.id}: {name!r} not named in: {error}"
    assert served.sent() == before, f"{case.id}: {served.sent() - before} message(s) reached the instruments"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").glob("*.h5")), "an archive was made"


def test_a_good_run_does_reach_the_server(served: Served, tmp_path: Path) -> None:
    """The control: the same bench file and command with good input sends messages (so zero above
    means nothing was sent, not that nothing is counted)."""
    before = served.sent()
    res = hopbench("run", "read_conductances", "--bench", str(served.bench), "--out", str(tmp_path), "-q")
    assert res.returncode == 0, res.stderr
    assert served.sent() > before
