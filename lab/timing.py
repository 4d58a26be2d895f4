"""Bench time: what each instrument action costs, and the clocks that let it pass.

One timing model serves three purposes: the dry check's estimate (a paper clock), the
progress bar's ETA, and the simulated twin, whose virtual clock is charged the command
latency a real bench would spend, so a dry run's bench time is what a bench would take.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from lab.errors import RunAborted


@dataclass(frozen=True)
class TimingModel:
    nplc: float = 1.0
    line_frequency_Hz: float = 50.0
    command_latency_s: float = 0.001  # one command's round trip (write, or write + short reply)
    measure_overhead_s: float = 0.0  # ranging / trigger overhead on top of the integration
    relay_settling_s: float = 0.003  # matrix settling after each relay change command

    @classmethod
    def from_config(cls, cfg: Any) -> "TimingModel":
        """From a :class:`lab.config.BenchConfig` (its [timing] and matrix settling)."""
        t = cfg.timing
        # several mainframes: a change waits for the slowest of them to settle
        settling = max(0.003 if m.settling_time_s is None else m.settling_time_s for m in cfg.matrices)
        return cls(
            nplc=t.nplc,
            line_frequency_Hz=float(t.line_frequency_Hz),
            command_latency_s=t.command_latency_s,
            measure_overhead_s=t.measure_overhead_s,
            relay_settling_s=settling,
        )

    @property
    def integration_s(self) -> float:
        return self.nplc / self.line_frequency_Hz

    @property
    def command_s(self) -> float:
        return self.command_latency_s

    @property
    def measure_s(self) -> float:
        return self.command_latency_s + self.integration_s + self.measure_overhead_s

    @property
    def relay_s(self) -> float:
        """One close or open command (any number of crosspoints), settled."""
        return self.command_latency_s + self.relay_settling_s

    def pulse_s(self, width_s: float) -> float:
        return width_s + 2 * self.command_latency_s


class Clock(Protocol):
    simulated: bool

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...
    def charge(self, seconds: float) -> None: ...  # time a real bench spends by itself


class WallClock:
    """A real bench: time passes by itself; a sleep can be cut short by abort()."""

    simulated = False

    def __init__(self) -> None:
        self.interrupt = threading.Event()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0 and self.interrupt.wait(seconds):
            raise RunAborted("aborted during a wait")

    def charge(self, seconds: float) -> None:
        pass


class TwinClock:
    """A simulated bench: sleeping advances the twin's virtual clock and its physics."""

    simulated = True

    def __init__(self, sim_bench: Any) -> None:
        self._bench = sim_bench
        self.interrupt = threading.Event()

    def now(self) -> float:
        return float(self._bench.clock.now)

    def sleep(self, seconds: float) -> None:
        if self.interrupt.is_set():
            raise RunAborted("aborted during a wait")
        if seconds > 0:
            self._bench.advance(seconds)

    def charge(self, seconds: float) -> None:
        if seconds > 0:
            self._bench.advance(seconds)


class PaperClock:
    """A dry check: nothing runs, time is only added up; ``on_advance(dt)`` integrates dose."""

    simulated = True

    def __init__(self, on_advance: Callable[[float], None] | None = None) -> None:
        self.t = 0.0
        self.on_advance = on_advance

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            if self.on_advance is not None:
                self.on_advance(seconds)
            self.t += seconds

    charge = sleep
