"""Virtual time of a simulated bench.

``advance`` only moves time; ``sleep`` is what a bench waits with: on a simulated bench it
also integrates the device physics over the wait (the bench installs itself as sleeper).
"""
from __future__ import annotations

from collections.abc import Callable


class VirtualClock:
    def __init__(self, start_s: float = 0.0) -> None:
        self._now = float(start_s)
        self.sleeper: Callable[[float], None] | None = None

    @property
    def now(self) -> float:
        """Seconds of virtual time since the bench was built."""
        return self._now

    def time(self) -> float:
        return self._now

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError(f"time cannot go backwards (dt = {dt})")
        self._now += dt

    def sleep(self, dt: float) -> None:
        if self.sleeper is not None:
            self.sleeper(dt)
        else:
            self.advance(dt)

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.6g} s)"
