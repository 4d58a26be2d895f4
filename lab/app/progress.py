"""A progress bar that counts bench time, not operations.

Operations differ by orders of magnitude (a note vs. a 35-node matrix read), so progress
is the dry check's estimated bench time of the operations done over the whole plan's,
and the ETA scales what remains by how fast the bench has really gone so far.
"""
from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _BenchTimeColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        f = task.fields
        return Text(f"bench {_fmt(f.get('bench_s'))} eta {_fmt(f.get('eta_s'))}", style="progress.remaining")


class BenchProgress:
    """``start`` with per-operation estimates (or none), ``update`` after each operation."""

    def __init__(self, enabled: bool = True, console: Console | None = None, description: str = "run") -> None:
        self.enabled = enabled
        self.console = console
        self.description = description
        self._progress: Progress | None = None
        self._task = None
        self._est: Sequence[float] = ()
        self._total = 0.0
        self._done_est = 0.0
        self.eta_s: float | None = None

    def start(self, op_estimates: Sequence[float] | None = None, description: str = "") -> None:
        self.description = description or self.description
        self._est = list(op_estimates or [])
        self._total = float(sum(self._est))
        self._done_est = 0.0
        if not self.enabled:
            return
        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _BenchTimeColumn(),
            console=self.console, transient=False,
        )
        self._progress.start()
        total = len(self._est) if self._est else None
        self._task = self._progress.add_task(self.description, total=total, bench_s=0.0, eta_s=None)

    def update(self, ops_done: int, bench_elapsed_s: float) -> None:
        """``ops_done`` operations of the plan are finished after ``bench_elapsed_s`` of bench time."""
        if self._est:
            self._done_est = float(sum(self._est[:ops_done]))
            remaining = max(self._total - self._done_est, 0.0)
            rate = bench_elapsed_s / self._done_est if self._done_est > 0 else 1.0
            self.eta_s = remaining * rate
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=ops_done, bench_s=bench_elapsed_s, eta_s=self.eta_s)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
