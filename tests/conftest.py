"""Shared test fixtures: the shipped film bench (as a dict, a config, an open twin), a sim
server on loopback, a fresh archive path.

Tests run the real parts: pyvisa with the simulated instruments, sockets on 127.0.0.1, real
HDF5 files. Only the ``slow`` marker (``-m "not slow"`` skips them) separates the long ones.
"""
from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lab.app.cli import app
from lab.bench import Bench, twin_spec
from lab.config import SHIPPED_BENCHES, BenchConfig, parse_bench
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

ROOT = Path(__file__).resolve().parent.parent
FILM_BENCH = SHIPPED_BENCHES / "sim-film35.toml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than ~10 s (deselect with -m 'not slow')")


def film_bench_dict(n: int = 35) -> dict[str, Any]:
    """The shipped simulated film bench as a dict, cut down to ``n`` contacts on one card."""
    d = copy.deepcopy(tomllib.loads(FILM_BENCH.read_text()))
    if n != 35:
        d["array"]["n"] = n
        d["instruments"][0]["cards"] = 1
        d["wiring"]["lines"] = {f"C{i}": [1, i + 1] for i in range(n)}
    return d


def film_config(n: int = 35, **limits: object) -> BenchConfig:
    d = film_bench_dict(n)
    d["limits"].update(limits)
    return parse_bench(d, f"film{n}.toml")


@pytest.fixture
def film35() -> Iterator[Bench]:
    """The shipped 35-contact film bench, open on its simulated twin."""
    bench = Bench.open("sim-film35", simulate=True)
    yield bench
    bench.close()


@pytest.fixture
def film_server() -> Iterator[SimServer]:
    """The shipped film bench's simulated instruments served on 127.0.0.1, stopped after."""
    twin = build_twin(twin_spec(film_config()))
    server = SimServer(twin.instruments, host="127.0.0.1")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def archive_path(tmp_path: Path) -> Path:
    return tmp_path / "run.h5"


@dataclass
class CommandResult:
    returncode: int
    stdout: str
    stderr: str


def hopbench(*args: str) -> CommandResult:
    """Run a ``hopbench`` command in this process, as the console script would.

    Commands whose subject is the process itself (signals, kills, servers) are run as real
    subprocesses by their tests instead.
    """
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"}, catch_exceptions=False)
    return CommandResult(res.exit_code, res.stdout, res.stderr)
