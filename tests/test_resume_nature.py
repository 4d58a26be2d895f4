"""A resumed run is the same run: same nature (twin or bench), protocol, parameters and bench,
and a resume that fails before its first operation leaves the archive byte for byte as it was.

The "bench" is the film bench's simulated instruments served on 127.0.0.1 and reached
through a bench file marked as real (``simulated = false``): the program drives it as it
would a lab, and the sim server's message log tells whether anything reached it.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Iterator

import h5py
import pytest

from lab.app.jobs import run_protocol
from lab.archive import open_run
from lab.archive.writer import peek_resume_point
from lab.bench import twin_spec
from lab.config import SHIPPED_BENCHES, load_bench
from lab.operations import Checkpoint, ReadPair
from protocols.base import Protocol
from sim_backend.server import SimServer
from sim_backend.twin import build_twin


class ExitTestSteps(Protocol):
    """Reads one device, then checkpoints, ``n`` times."""

    name = "exit_test_steps"
    n: int = 4

    def steps(self, bench, resume=None):
        for k in range(resume["k"] if resume else 0, self.n):
            yield ReadPair(0, 1)
            yield Checkpoint({"k": k + 1})


class FailAt:
    """An observer that fails the run at plan index ``at`` (after that many operations)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def start(self, info: Any) -> None:
        pass

    def operation(self, rec: Any) -> None:
        if rec.index == self.at:
            raise RuntimeError("the lab's power dipped")

    def checkpoint(self, index: int, state: Any) -> None:
        pass

    def finish(self, status: str, error: str | None = None) -> None:
        pass


class DropAtStart(FailAt):
    """Makes an instrument drop its link when the run starts, before its first operation."""

    def __init__(self, instrument: Any) -> None:
        super().__init__(-1)
        self.instrument = instrument

    def start(self, info: Any) -> None:
        self.instrument.faults.drop = True


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Any, SimServer, Path]]:
    """(twin, its server on 127.0.0.1, a real-bench file pointing at it)."""
    twin = build_twin(twin_spec(load_bench(SHIPPED_BENCHES / "sim-film35.toml")))
    with SimServer.from_twin(twin) as server:
        text = (SHIPPED_BENCHES / "sim-film35.toml").read_text().replace("simulated = true", "simulated = false")
        for name, res in server.resources.items():
            text = re.sub(rf'(name = "{name}"\nmodel = "[^"]+"\nresource = )"[^"]+"', rf'\1"{res}"', text)
        path = tmp_path / "lab.toml"
        path.write_text(text)
        yield twin, server, path
    for inst in twin.instruments.values():
        inst.faults.clear()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def failed_run(tmp_path: Path, bench: Path, *, dry_run: bool) -> Path:
    archive = tmp_path / ("dry.h5" if dry_run else "bench.h5")
    s = run_protocol("exit_test_steps", bench=bench, archive=archive, dry_run=dry_run, progress=False,
                     observers=[FailAt(3)])
    assert s.status == "failed" and "power dipped" in s.error
    assert s.resume_command == f"hopbench run exit_test_steps --resume {archive}"
    return archive


def test_a_dry_run_resumed_without_dry_run_stays_on_the_twin(lab, tmp_path) -> None:
    twin, server, bench = lab
    archive = failed_run(tmp_path, bench, dry_run=True)
    assert peek_resume_point(archive).sample_state is not None  # the checkpoint kept the film's state
    sent = len(server.command_log)
    s = run_protocol("exit_test_steps", resume=archive, progress=False)  # no dry_run
    assert s.status == "complete", s.error
    assert len(server.command_log) == sent  # nothing reached the (real) bench
    with open_run(archive) as run:
        assert bool(run.info["simulated"]) is True and run.status == "complete" and len(run.resumes) == 1


def test_a_bench_run_refuses_to_continue_on_the_simulator_and_other_setups(lab, tmp_path) -> None:
    twin, server, bench = lab
    archive = failed_run(tmp_path, bench, dry_run=False)
    before = digest(archive)
    with pytest.raises(ValueError, match="made on the bench.*drop --dry-run"):
        run_protocol("exit_test_steps", resume=archive, dry_run=True, progress=False)
    with pytest.raises(ValueError, match="'exit_test_steps' run, not 'read_conductances'"):
        run_protocol("read_conductances", resume=archive, progress=False)
    with pytest.raises(ValueError, match="differs from the bench the run started on"):
        run_protocol("exit_test_steps", resume=archive, bench=SHIPPED_BENCHES / "sim-film35.toml", progress=False)
    with pytest.raises(ValueError, match="would change n"):
        run_protocol("exit_test_steps", resume=archive, overrides={"n": 9}, progress=False)
    assert digest(archive) == before
    # the same bench file is not "another" bench, and the run continues on the bench
    sent = len(server.command_log)
    s = run_protocol("exit_test_steps", resume=archive, bench=bench, progress=False)
    assert s.status == "complete", s.error
    assert len(server.command_log) > sent
    with open_run(archive) as run:
        assert bool(run.info["simulated"]) is False and run.status == "complete"


def test_a_resume_that_fails_before_its_first_operation_leaves_the_archive_unchanged(lab, tmp_path) -> None:
    twin, server, bench = lab
    archive = failed_run(tmp_path, bench, dry_run=False)
    before = digest(archive)
    s = run_protocol("exit_test_steps", resume=archive, progress=False,
                     observers=[DropAtStart(twin.instruments["smu2"])])
    assert s.status == "failed" and "cannot bring the bench to a safe state" in s.error, s.error
    assert "smu2: NOT confirmed" in s.safety
    assert digest(archive) == before
    with h5py.File(archive, "r", swmr=True) as f:
        assert f["entry/status"][()] == b"failed" and "power dipped" in f["entry/error"].asstr()[()]
