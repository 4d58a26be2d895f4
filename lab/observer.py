"""What the runner tells the things that watch a run (the archive, progress, logs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Mapping, Protocol

import numpy as np

from lab.operations import BenchInfo, Operation

RunStatus = Literal["running", "complete", "aborted", "failed"]

# Key of a checkpoint state under which a dry run stores its simulated sample's state (device
# textures, generator, clock), so a resume continues the same film, not a fresh one.
TWIN_STATE = "_twin_sample"


@dataclass
class RunInfo:
    """Provenance of one run: enough to rerun it."""

    run_id: str
    protocol_name: str
    protocol_params: dict[str, Any]
    bench_text: str  # the bench file as written
    bench_parsed: dict[str, Any]  # its validated form
    bench: BenchInfo
    seeds: dict[str, int]
    software_version: str
    git_revision: str | None
    host: str
    start_time: str  # ISO 8601 with time zone
    simulated: bool
    sim_preset: dict[str, Any] | None = None


@dataclass(frozen=True)
class OperationRecord:
    index: int  # position in the plan (0-based, counts every yielded operation)
    op: Operation
    result: Any  # the result object sent back to the protocol (None for some ops)
    t_wall: float  # s since the epoch when the operation started
    t_bench: float  # s of bench time (virtual clock in a dry run) when it started
    duration_bench: float  # s of bench time it took
    settings: Mapping[str, Any]  # instrument settings it used (v_read, nplc, buses ...)
    truth: np.ndarray | None = None  # simulator's true device conductances (S), dry runs only


class RunObserver(Protocol):
    def start(self, info: RunInfo) -> None: ...
    def operation(self, record: OperationRecord) -> None: ...
    def checkpoint(self, index: int, state: Mapping[str, Any]) -> None: ...  # make all durable
    def finish(self, status: RunStatus, error: str | None = None) -> None: ...


class ProgressSink(Protocol):
    """Where the runner reports progress (the application layer draws it)."""

    def start(self, op_estimates: Any = None, description: str = "") -> None: ...

    def update(self, ops_done: int, bench_elapsed_s: float) -> None: ...

    def stop(self) -> None: ...


class _NoProgress:
    def start(self, op_estimates: Any = None, description: str = "") -> None:
        pass

    def update(self, ops_done: int, bench_elapsed_s: float) -> None:
        pass

    def stop(self) -> None:
        pass


NO_PROGRESS: ProgressSink = _NoProgress()
