"""Every shell command of README.md runs, so the README and the program cannot drift apart.

The commands are taken from the README's ```bash blocks (lines joined at a trailing
backslash, comments dropped, ``a && b`` split), in README order, and run in one working
folder (``data/`` and ``benchmarks/`` linked from the checkout) as a reader would type them,
so a later command finds what an earlier one wrote (``runs/``, the ``film-A`` sample).
Words are expanded by bash itself (quotes, ``"$(ls -t ...)"``); a command that starts with
``hopbench`` then runs in this process. The mechanical rules, all in tables below:

- ``SETUP``: commands that build the environment this suite already runs in: not run.
- ``SKIP``: commands not run, each with its reason (the suite itself, minutes-long speed
  measurements, a run that needs an unfinished archive another test makes).
- ``needs_real_lab``: a command that would open a real bench file's instruments (``run``
  without ``--dry-run``, ``check`` without ``--offline``); skipped, never connected to.
- ``SHRINK``: per command, words replaced and arguments appended to keep it fast (fewer
  epochs, pulses, cues; a two-point copy of the example sweep; a server that stops by itself).
- a word with ``<...>`` in it (``runs/<run>.h5``) is the newest file that matches it.
"""
from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.app.cli import app
from lab.config import load_bench

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

SETUP = ("python3 -m venv", ". .venv/bin/activate", "source ", "pip install")
SKIP = [
    (re.compile(r"^python -m pytest\b"), "the test suite itself, which this test is part of"),
    (re.compile(r"^python benchmarks/"), "a speed measurement of minutes, run by hand; "
                                         "test_every_benchmark_the_readme_names_exists checks the script is there"),
    (re.compile(r"\s--resume\s"), "needs an unfinished run: tests/test_cli_commands.py::"
                                  "test_a_killed_run_resumes_into_the_same_file kills a run and resumes it"),
]
SMALL_SWEEP = "small-read-noise.toml"  # the shipped sweep cut to two points (see small_sweep)
SHRINK: list[tuple[re.Pattern[str], dict[str, str], list[str]]] = [
    (re.compile(r"^hopbench demo$"), {}, ["--epochs", "1", "--materio-cues", "1", "-q"]),
    (re.compile(r"^hopbench run train_hopfield --bench data/benches/707b-2x2636b"),
     {"epochs=10": "epochs=1"}, ["--set", "pulse.count=2", "--set", "read_first=false", "-q"]),
    (re.compile(r"^hopbench run read_conductances"), {"repeats=4": "repeats=1"}, ["-q"]),
    (re.compile(r"^hopbench run train_hopfield --bench data/benches/707b-3x2450"),
     {"epochs=2": "epochs=1"}, ["--set", "pulse.count=2", "-q"]),
    (re.compile(r"^hopbench sweep data/sweeps/read-noise.toml"),
     {"data/sweeps/read-noise.toml": SMALL_SWEEP, "--workers 2": "--workers 1"}, ["-q"]),
    (re.compile(r"^hopbench sim-server"), {}, ["--for", "0.5"]),
    (re.compile(r"^hopbench run train_hopfield --dry-run --set epochs=4 --monitor"),
     {"epochs=4": "epochs=1"}, ["--set", "pulse.count=2", "-q"]),
    (re.compile(r"^hopbench monitor "), {}, ["--for", "0.5"]),
    (re.compile(r"--sample film-A --set epochs=4"), {"epochs=4": "epochs=1"}, ["--set", "pulse.count=2", "-q"]),
    (re.compile(r"^hopbench run recall .*--sample film-A"), {},
     ["--set", "cues.per_pattern=1", "--set", "max_steps=1", "--set", "calibrate=false", "-q"]),
]
# > ~10 s each even shrunk: the demo (~15 s of CPU at one epoch and one cue per glyph), the
# sweep (a Dask LocalCluster starts worker processes), the train/recall pair on one sample,
# a run with its monitor
SLOW = [re.compile(r"^hopbench demo"), re.compile(r"^hopbench sweep"), re.compile(r"--sample film-A"),
        re.compile(r"--monitor")]  # the monitor runs in a child process that imports the CLI


@dataclass(frozen=True)
class Command:
    line: int
    text: str

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.text[:60]}"


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts, quote, start, i = [], None, 0, 0
    while i < len(text):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _strip_comment(text: str) -> str:
    quote = None
    for i, c in enumerate(text):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i].rstrip()
    return text.rstrip()


def readme_commands(text: str) -> list[Command]:
    """Every command of every ```bash / ```sh / ```shell block, with its README line number."""
    out: list[Command] = []
    in_block, pending, first = False, "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.startswith("```"):
            in_block = raw.strip() in ("```bash", "```sh", "```shell")
            continue
        if not in_block:
            continue
        line = _strip_comment(raw)
        if not line and not pending:
            continue
        if not pending:
            first = n
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line.strip()).strip()
        pending = ""
        out += [Command(first, part) for part in _split_outside_quotes(whole, "&&") if part]
    return out


COMMANDS = readme_commands(README.read_text())


def needs_real_lab(argv: list[str]) -> str | None:
    """Why this command would talk to a real bench's instruments, or None."""
    if argv[:1] != ["hopbench"] or len(argv) < 2:
        return None
    benches = [a for a in argv if a.endswith(".toml") and "benches" in a]
    real = [b for b in benches if not load_bench(ROOT / b).simulated]
    if argv[1] == "check" and real and "--offline" not in argv:
        return f"would open the instruments of the real bench {real[0]}"
    if argv[1] == "run" and real and "--dry-run" not in argv:
        return f"a real run on {real[0]}"
    return None


def _expand(text: str, cwd: Path) -> list[str]:
    """The command's words as bash expands them (quotes removed, substitutions run) in ``cwd``."""
    res = subprocess.run(["bash", "-c", "printf '%s\\0' " + text], cwd=cwd, capture_output=True,
                         text=True, timeout=30, check=True)
    return res.stdout.split("\0")[:-1]


def _newest(pattern: str, cwd: Path) -> str:
    glob = re.sub(r"<[^>]+>", "*", pattern)
    found = sorted(cwd.glob(glob), key=lambda p: p.stat().st_mtime)
    assert found, f"no file matches {pattern} (from an earlier README command) in {cwd}"
    return str(found[-1].relative_to(cwd))


def shrunk(cmd: Command) -> tuple[str, list[str]]:
    for pattern, words, extra in SHRINK:
        if pattern.search(cmd.text):
            text = cmd.text
            for old, new in words.items():
                assert old in text, f"SHRINK rule for {cmd.text!r}: {old!r} is not in it"
                text = text.replace(old, new)
            return text, extra
    return cmd.text, []


def small_sweep(workdir: Path) -> None:
    """The shipped example sweep with its grid cut to two points that differ in read noise only."""
    spec = tomllib.loads((ROOT / "data/sweeps/read-noise.toml").read_text())
    grid = spec["grid"]
    lines = [f"protocol = {spec['protocol']!r}".replace("'", '"'), 'mode = "grid"', f"seed = {spec['seed']}"]
    if "metric" in spec:
        lines.append(f'metric = "{spec["metric"]}"')
    lines.append("[grid]")
    for key, values in grid.items():
        keep = [values[0], values[-1]] if key.startswith("preset.") else values[:1]
        lines.append(f'"{key}" = {keep!r}')
    (workdir / SMALL_SWEEP).write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = tmp_path_factory.mktemp("readme")
    for name in ("data", "benchmarks"):
        (wd / name).symlink_to(ROOT / name)
    small_sweep(wd)
    return wd


def _param(cmd: Command):  # noqa: ANN202 - a pytest ParameterSet
    marks = [pytest.mark.slow] if any(p.search(cmd.text) for p in SLOW) else []
    return pytest.param(cmd, id=cmd.id, marks=marks)


@pytest.mark.parametrize("cmd", [_param(c) for c in COMMANDS])
def test_readme_command(cmd: Command, workdir: Path) -> None:
    if cmd.text.startswith(SETUP):
        pytest.skip("builds the environment this suite runs in (.ci/run does it from scratch)")
    for pattern, reason in SKIP:
        if pattern.search(cmd.text):
            pytest.skip(reason)
    text, extra = shrunk(cmd)
    text = re.sub(r"\S*<[^>\s]+>\S*", lambda m: shlex.quote(_newest(m.group(0), workdir)), text)
    argv = _expand(text, workdir)
    reason = needs_real_lab(argv)
    if reason:
        pytest.skip(reason)
    argv += extra
    assert argv[0] == "hopbench", f"README line {cmd.line}: no rule for {cmd.text!r}; add one to this test"
    here = Path.cwd()
    os.chdir(workdir)
    try:
        res = CliRunner().invoke(app, argv[1:], env={"COLUMNS": "200"}, catch_exceptions=False)
    finally:
        os.chdir(here)
    assert res.exit_code == 0, f"README line {cmd.line}: {' '.join(argv)}\n{res.stdout}\n{res.stderr}"
    assert "Traceback" not in res.stdout + res.stderr
    if argv[1] == "sweep":  # the example sweep's plotted metric must vary over its points
        rows = list(csv.DictReader((workdir / "hopbench-runs/sweep/summary.csv").open()))
        metric = tomllib.loads((ROOT / "data/sweeps/read-noise.toml").read_text())["metric"]
        values = {round(float(r[metric]), 12) for r in rows}
        assert len(rows) == 2 and len(values) == 2, rows
        assert (workdir / "hopbench-runs/sweep/summary.png").stat().st_size > 5000


def test_the_rules_match_the_readme() -> None:
    """The extraction finds the README's commands, and no rule of this test has gone stale."""
    texts = [c.text for c in COMMANDS]
    assert len(texts) >= 20 and any(t.startswith("hopbench protocols") for t in texts)
    for pattern, _, _ in SHRINK:
        assert any(pattern.search(t) for t in texts), f"SHRINK rule {pattern.pattern!r} matches no README command"
    for pattern, _ in SKIP:
        assert any(pattern.search(t) for t in texts), f"SKIP rule {pattern.pattern!r} matches no README command"
    assert readme_commands("```bash\na --x 'y # z' \\\n  b  # note\nc && d\n```\n") == [
        Command(2, "a --x 'y # z' b"), Command(4, "c"), Command(4, "d")]


def test_every_benchmark_the_readme_names_exists() -> None:
    scripts = [c.text.split()[1] for c in COMMANDS if c.text.startswith("python benchmarks/")]
    assert scripts and all((ROOT / s).is_file() for s in scripts), scripts


def test_a_real_bench_command_is_recognised_and_never_run() -> None:
    assert needs_real_lab(["hopbench", "run", "train_hopfield", "--bench", "data/benches/707b-2x2636b.toml"])
    assert needs_real_lab(["hopbench", "check", "data/benches/707b-3x2450.toml"])
    assert not needs_real_lab(["hopbench", "check", "data/benches/707b-3x2450.toml", "--offline"])
    assert not needs_real_lab(["hopbench", "check", "data/benches/sim-film35.toml"])


if shutil.which("bash") is None:  # pragma: no cover - every CI image has bash
    pytestmark = pytest.mark.skip(reason="the README's commands are bash; no bash on this machine")
