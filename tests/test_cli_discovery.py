"""Finding your way: protocols and their parameters, --set in plain words, runs listed whole, the
shipped files consistent with the program."""
from __future__ import annotations

import json
import math
import re
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest

from conftest import hopbench
from lab.app.cli import app, parse_sets
from lab.app.demo import keep_previous
from lab.app.jobs import run_protocol
from lab.app.sweep import summary_figure
from protocols.base import load_protocol, registry
from protocols.parameters import ParameterError, parameters

ROOT = Path(__file__).resolve().parents[1]
SIM_BENCH = ROOT / "data" / "benches" / "sim-film35.toml"
PYDANTIC_WORDS = ("Extra inputs are not permitted", "Field required", "more)", "Input should", "validation error")


def test_protocols_lists_every_protocol_with_one_line() -> None:
    res = hopbench("protocols", "--json")
    assert res.returncode == 0, res.stderr
    listed = json.loads(res.stdout)
    assert set(listed) == set(registry())
    assert all(line and "\n" not in line for line in listed.values()), listed


# the shipped protocols: test files register their own throwaway ones in the same registry
SHIPPED = sorted(n for n, cls in registry().items() if cls.__module__.startswith("protocols."))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_parameter_of_every_protocol_has_a_meaning(name: str) -> None:
    rows = parameters(registry()[name])
    missing = [r.name for r in rows if not r.description]
    assert not missing, f"{name}: parameters without a description= : {missing}"


def test_protocols_name_prints_every_parameter_with_type_unit_default_and_range() -> None:
    res = hopbench("protocols", "train_hopfield")
    assert res.returncode == 0, res.stderr
    text = res.stdout
    top = registry()["train_hopfield"].model_fields
    for name in [*top, "pulse.width_s", "pulse.count", "patterns.names"]:
        assert re.search(rf"^  {re.escape(name)}\b", text, re.M), f"{name} not listed"
    assert re.search(r"^  pulse\.width_s \[s\]: number, > 0; default 0\.008$", text, re.M)
    assert re.search(r"^  epochs: integer, ≥ 1; default 10$", text, re.M)
    assert re.search(r"^  v_train \[V\]: ", text, re.M)
    assert re.search(r"^  levels: one of 'split', 'single'; default \"split\"$", text, re.M)
    as_json = json.loads(hopbench("protocols", "train_hopfield", "--json").stdout)
    assert {p["name"] for p in as_json["parameters"]} >= set(top)


def test_run_help_names_a_protocol_s_parameters_and_no_missing_option() -> None:
    bare = hopbench("run", "--help")
    assert bare.returncode == 0 and "--list" not in bare.stdout and "hopbench protocols" in bare.stdout
    res = hopbench("run", "retention", "--bench", str(SIM_BENCH), "--help")
    assert res.returncode == 0, res.stderr
    assert "  times_s [s]: list of number" in res.stdout and "  program.width_s [s]" in res.stdout


def test_a_dotted_set_changes_one_field_and_keeps_the_table_s_other_defaults() -> None:
    proto = load_protocol("train_hopfield", parse_sets(["pulse.width_s=0.004", "epochs=2"]))
    assert (proto.pulse.width_s, proto.pulse.count, proto.epochs) == (0.004, 20, 2)
    whole = load_protocol("train_hopfield", parse_sets(["pulse={width_s=0.004}"]))
    assert whole.pulse.count == 1  # a table given whole takes its own defaults
    recall = load_protocol("recall", parse_sets(['patterns.names=["L", "T"]', "cues.per_pattern=2"]))
    assert recall.patterns.names == ("L", "T") and recall.cues.flip_fraction == 0.1
    res = hopbench("estimate", "train_hopfield", "--set", "pulse.width_s=0.004", "--set", "epochs=1", "--json")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("sets, words", [
    (["epochs=3", "epochs=4"], ("epochs", "twice")),
    (["pulse={count=2}", "pulse.width_s=0.004"], ("pulse", "pulse.width_s")),
    (["=3"], ("name=value",)),
    (["patterns.names=[L, T]"], ("patterns.names", "in quotes")),
])
def test_a_set_given_twice_or_overlapping_is_refused_naming_the_key(sets: list[str], words: tuple[str, ...]) -> None:
    res = hopbench("estimate", "train_hopfield", *[a for s in sets for a in ("--set", s)])
    assert res.returncode == 2
    assert all(w in res.stderr for w in words), res.stderr


@pytest.mark.parametrize("protocol, sets, words", [
    ("train_hopfield", ["epoch=3"], ("'epoch'", "did you mean 'epochs'", "read_every")),
    ("train_hopfield", ["pulse.widht_s=0.004"], ("'pulse.widht_s'", "did you mean 'pulse.width_s'")),
    ("train_hopfield", ["width_s=0.004"], ("did you mean 'pulse.width_s'",)),
    ("train_hopfield", ["epochs=0", "v_train=-1"], ("epochs must be ≥ 1, got 0", "v_train must be > 0 V, got -1")),
    ("train_hopfield", ["levels=both"], ("levels must be 'split' or 'single', got 'both'",)),
    ("train_hopfield", ["epochs.x=1"], ("epochs is a single value",)),
    ("recall", [], ("'patterns' is required",)),
    ("train_hopfeld", [], ("did you mean 'train_hopfield'",)),
])
def test_bad_parameters_are_said_in_plain_words(protocol: str, sets: list[str], words: tuple[str, ...]) -> None:
    res = hopbench("estimate", protocol, *[a for s in sets for a in ("--set", s)])
    assert res.returncode == 2, res.stdout
    message = " ".join(res.stderr.split())
    assert all(w in message for w in words), message
    assert not any(w in message for w in PYDANTIC_WORDS), message
    assert "Traceback" not in message


def test_a_parameter_error_is_a_value_error_naming_the_protocol() -> None:
    with pytest.raises(ParameterError, match=r"^read_conductances: repeats must be ≥ 1"):
        load_protocol("read_conductances", {"repeats": 0})


@pytest.mark.parametrize("bench", ["sim-crossbar35-sot", "707b-3x2450", "sim-film35"])
@pytest.mark.parametrize("protocol", ["iv_sweep", "retention"])
def test_device_protocols_run_with_their_defaults_on_every_topology(protocol: str, bench: str) -> None:
    res = hopbench("estimate", protocol, "--bench", str(ROOT / "data" / "benches" / f"{bench}.toml"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["bench_time_s"] > 0


def test_characterize_takes_the_crossbar_s_first_device_by_default() -> None:
    res = hopbench("estimate", "characterize", "--bench", str(ROOT / "data/benches/sim-crossbar35-sot.toml"), "--json")
    assert res.returncode == 0, res.stderr


def test_a_single_read_reports_an_unknown_uncertainty_not_zero(tmp_path: Path) -> None:
    def g_std(repeats: int) -> float:
        s = run_protocol("read_conductances", overrides={"pairs": [[0, 1]], "repeats": repeats}, dry_run=True,
                         out_dir=tmp_path, progress=False)
        from lab.archive import open_run

        with open_run(s.archive) as run:
            return float(run.g_errors.values[-1][0])

    assert math.isnan(g_std(1))
    assert 0 < g_std(3) < 1e-5


def test_ls_lists_whole_names_oldest_first(tmp_path: Path) -> None:
    made = []
    for _ in range(2):
        s = run_protocol("read_conductances", overrides={"pairs": [[0, 1]]}, dry_run=True, out_dir=tmp_path,
                         progress=False)
        made.append(Path(s.archive))
        time.sleep(1.1)  # start times a second apart
    # names whose alphabetical order is the reverse of their time order, one of them long
    first = made[0].rename(tmp_path / ("z_first_" + "long-name-" * 8 + ".h5"))
    second = made[1].rename(tmp_path / "a_second.h5")
    res = hopbench("ls", str(tmp_path))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    at = {name: next(i for i, line in enumerate(lines) if name in line) for name in (first.name, second.name)}
    assert at[first.name] < at[second.name]
    listed = json.loads(hopbench("ls", str(tmp_path), "--json").stdout)
    assert [Path(r["path"]).name for r in listed] == [first.name, second.name]
    assert {r["status"] for r in listed} == {"complete"}


def test_an_unknown_sweep_metric_is_an_error_naming_the_columns(tmp_path: Path) -> None:
    table = pd.DataFrame({"point": [0, 1], "preset.read_noise_window": [0.01, 0.1], "status": ["complete"] * 2,
                          "bench_time_s": [1.0, 1.0], "read_error_rel": [1e-4, 1e-3], "wall_s": [1.0, 1.0]})
    with pytest.raises(ValueError, match=r"'read_eror_rel'.*did you mean 'read_error_rel'.*read_error_rel"):
        summary_figure(table, ["preset.read_noise_window"], "read_eror_rel", tmp_path / "s.png")
    assert summary_figure(table, ["preset.read_noise_window"], None, tmp_path / "s.png") == "read_error_rel"


def test_the_shipped_sweep_names_a_metric_the_summary_has() -> None:
    spec = tomllib.loads((ROOT / "data/sweeps/read-noise.toml").read_text())
    assert spec["metric"] == "read_error_rel"  # computed for every point by lab.app.sweep.read_error


def test_a_demo_rerun_keeps_the_previous_archives(tmp_path: Path) -> None:
    old = tmp_path / "demo-train.h5"
    old.write_bytes(b"first run")
    moved = keep_previous([old, tmp_path / "demo-recall.h5"], tmp_path / "previous")
    assert not old.exists() and len(moved) == 1
    assert Path(moved[0][1]).read_bytes() == b"first run"
    old.write_bytes(b"second run")  # same minute: a second copy, not an overwrite
    moved2 = keep_previous([old], tmp_path / "previous")
    assert moved2[0][1] != moved[0][1] and len(list((tmp_path / "previous").iterdir())) == 2


def test_shipped_bench_files_are_named_as_their_files_and_name_only_real_options() -> None:
    import typer.main

    click_app = typer.main.get_command(app)
    options = {opt for cmd in click_app.commands.values() for p in cmd.params for opt in getattr(p, "opts", ())}
    for path in sorted((ROOT / "data" / "benches").glob("*.toml")):
        text = path.read_text()
        assert tomllib.loads(text)["name"] == path.stem, path.name
        comments = "\n".join(line.partition("#")[2] for line in text.splitlines())
        unknown = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", comments)) - options
        assert not unknown, f"{path.name} names options hopbench does not have: {unknown}"
    crossbar = (ROOT / "data/benches/sim-crossbar35-sot.toml").read_text()
    assert "film" not in tomllib.loads(crossbar)["description"].lower()


def test_report_help_names_the_file_the_demo_writes() -> None:
    text = " ".join(hopbench("report", "--help").stdout.split())
    assert "demo-train.h5" in text and "demo/demo.h5" not in text


def test_a_path_error_is_said_in_words_not_errno(tmp_path: Path) -> None:
    res = hopbench("ls", str(tmp_path / "nope"))
    assert res.returncode == 2 and "nope" in res.stderr and "Errno" not in res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = hopbench("run", "read_conductances", "--dry-run", "--out", str(blocker / "sub"), "--set", "pairs=[[0, 1]]")
    assert res.returncode == 2 and "Errno" not in res.stderr, res.stderr


def test_piped_output_never_wraps_a_path(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a-folder-name-that-goes-on-" * 8)  # longer than the 200 columns the runner sets
    long_dir.mkdir()
    res = hopbench("ls", str(long_dir))
    assert res.returncode == 0 and str(long_dir) in res.stdout


def test_report_of_a_recall_run_speaks_of_no_epoch(tmp_path: Path) -> None:
    s = run_protocol("recall", overrides=parse_sets(['patterns={names=["L", "T"]}', "compute=software",
                                                     "cues.per_pattern=1"]), dry_run=True, out_dir=tmp_path,
                     progress=False)
    res = hopbench("report", s.archive, "--out", str(tmp_path / "fig"))
    assert res.returncode == 0, res.stderr
    assert "recall scores" in res.stdout and not re.search(r"\bepoch 1\b", res.stdout), res.stdout


def test_protocols_has_help_with_an_example() -> None:
    res = hopbench("protocols", "--help")
    assert res.returncode == 0 and "Example: hopbench protocols" in " ".join(res.stdout.split())


DIES_MID_RUN = """
import os, sys
from lab.app.jobs import run_protocol

class DiesAfterFirstOperation:  # the process ends as under SIGKILL: no cleanup, no close
    def start(self, info): pass
    def operation(self, record): os._exit(9)
    def checkpoint(self, index, state): pass
    def finish(self, status, error=None): pass

run_protocol("read_conductances", overrides={"pairs": [[0, 1]]}, dry_run=True, out_dir=sys.argv[1],
             progress=False, observers=[DiesAfterFirstOperation()])
"""


def test_ls_shows_a_run_whose_writer_died_as_interrupted(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", DIES_MID_RUN, str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 9, proc.stderr
    res = hopbench("ls", str(tmp_path))
    assert res.returncode == 0, res.stderr
    row = next(line for line in res.stdout.splitlines() if "read_conductances" in line)
    assert "interrupted" in row and "running" not in row, res.stdout
