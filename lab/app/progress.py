"""A progress bar that counts bench time, not operations, with the wall-clock ETA beside it.

Operations differ by orders of magnitude (a note vs. a 35-node matrix read), so progress
is the dry check's estimated bench time of the operations done over the whole plan's.
Two ETAs: the wall clock's (what a user waits for: on a real bench it follows the bench,
in a dry run the simulator's speed — a 25 s dry run of 5 minutes of bench time shows
seconds), and the bench's (the estimate of what remains, scaled by how fast the bench has
really gone so far).

The per-operation estimates are summed once at start (a cumulative array), so an update
costs the same at operation 10 as at operation 10 million.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
from rich.text import Text


def _fmt(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "-:--:--"
    s = int(round(max(seconds, 0.0)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _BenchTimeColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        f = task.fields
        if f.get("checking"):
            return Text(f"pre-flight, wall {_fmt(f.get('wall_s'))}", style="progress.remaining")
        return Text(f"wall {_fmt(f.get('wall_s'))} eta {_fmt(f.get('wall_eta_s'))} · "
                    f"bench {_fmt(f.get('bench_s'))} eta {_fmt(f.get('eta_s'))}", style="progress.remaining")


class BenchProgress:
    """``start`` with per-operation estimates (or none), ``update`` after each operation.

    ``checking(done, total)`` shows the pre-flight's progress (called only when it is not
    instant). ``eta_s`` is the bench-time ETA, ``wall_eta_s`` the wall-clock one.
    """

    def __init__(self, enabled: bool = True, console: Console | None = None, description: str = "run") -> None:
        self.enabled = enabled
        self.console = console
        self.description = description
        self._progress: Progress | None = None
        self._task = None
        self._check_task = None
        self._cum = np.zeros(0)
        self._total = 0.0
        self._done_est = 0.0
        self._wall0 = time.monotonic()
        self._check_wall0: float | None = None
        self.eta_s: float | None = None
        self.wall_eta_s: float | None = None

    def _ensure_display(self) -> Progress | None:
        if not self.enabled:
            return None
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), _BenchTimeColumn(),
                console=self.console, transient=False,
            )
            self._progress.start()
        return self._progress

    # -------------------------------------------------------------- pre-flight
    def checking(self, done: int, total: int | None) -> None:
        """The pre-flight has checked ``done`` operations of ``total`` (None: not known)."""
        now = time.monotonic()
        if self._check_wall0 is None:
            self._check_wall0 = now
        prog = self._ensure_display()
        if prog is None:
            return
        if self._check_task is None:
            self._check_task = prog.add_task(f"{self.description}: checking the plan", total=total,
                                             checking=True, wall_s=0.0)
        prog.update(self._check_task, completed=done, total=total, wall_s=now - self._check_wall0)
        if total is not None and done >= total and self._task is None:
            self.stop()  # checked (or refused): the run, if it starts, shows its own bar

    # -------------------------------------------------------------- run
    def start(self, op_estimates: Sequence[float] | None = None, description: str = "") -> None:
        self.description = description or self.description
        est = np.asarray(op_estimates if op_estimates is not None else [], dtype=float)
        self._cum = np.cumsum(est)
        self._total = float(self._cum[-1]) if self._cum.size else 0.0
        self._done_est = 0.0
        self._wall0 = time.monotonic()
        prog = self._ensure_display()
        if prog is None:
            return
        total = int(self._cum.size) if self._cum.size else None
        self._task = prog.add_task(self.description, total=total, bench_s=0.0, eta_s=None, wall_s=0.0,
                                   wall_eta_s=None)

    def update(self, ops_done: int, bench_elapsed_s: float) -> None:
        """``ops_done`` operations of the plan are finished after ``bench_elapsed_s`` of bench time."""
        wall = time.monotonic() - self._wall0
        if self._cum.size:
            k = min(int(ops_done), self._cum.size)
            self._done_est = float(self._cum[k - 1]) if k > 0 else 0.0
            remaining = max(self._total - self._done_est, 0.0)
            if self._done_est > 0:
                self.eta_s = remaining * bench_elapsed_s / self._done_est
                self.wall_eta_s = remaining * wall / self._done_est
            else:
                self.eta_s = remaining
                self.wall_eta_s = None
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=ops_done, bench_s=bench_elapsed_s, eta_s=self.eta_s,
                                  wall_s=wall, wall_eta_s=self.wall_eta_s)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None
            self._check_task = None
