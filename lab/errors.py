"""Errors of the lab core, and the one place that decides what counts as a timeout.

Every error a user can meet names what is wrong (a bench-file field, an operation
parameter, a limit) so it can be fixed without reading a traceback.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import pyvisa

from drivers.errors import InstrumentTimeout

T = TypeVar("T")


class HopbenchError(Exception):
    """Base of every error raised by the lab core."""


class ConfigError(HopbenchError, ValueError):
    """A bench file is malformed or inconsistent; ``problems`` lists ``(field, message)``."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {field}: {msg}" for field, msg in problems)
        super().__init__(f"invalid bench file {source}:\n{lines}")


class SafetyError(HopbenchError):
    """An action or operation would exceed a bench limit. Nothing was sent for it."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class RoutingError(SafetyError):
    """The crossbar cannot realise an intention with the buses this bench has."""


class PlanRejected(HopbenchError):
    """A dry check found an operation that must not be sent; ``index`` is its plan position."""

    def __init__(self, index: int, kind: str, cause: Exception) -> None:
        self.index = index
        self.kind = kind
        self.cause = cause
        super().__init__(f"operation #{index} ({kind}) rejected before anything was sent: {cause}")


class BenchBusy(HopbenchError):
    """Another runner holds the lock of one of this bench's instruments."""


class RunAborted(HopbenchError):
    """The run was stopped on request (abort(), Ctrl-C)."""


class Terminated(RunAborted):
    """SIGTERM arrived; raised in the runner's thread so cleanup runs."""


def is_timeout(exc: BaseException) -> bool:
    """A query that got no answer in time (driver error or raw VISA timeout)."""
    if isinstance(exc, InstrumentTimeout):
        return True
    if isinstance(exc, pyvisa.errors.VisaIOError):
        return exc.error_code == pyvisa.constants.StatusCode.error_timeout
    return isinstance(exc, TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retry of idempotent reads; a state-changing command is never retried."""

    attempts: int = 3  # total tries, including the first
    backoff_s: float = 0.05  # wall-clock wait before the 2nd try, doubled each time

    def call(self, fn: Callable[[], T], on_retry: Callable[[int, BaseException], None] | None = None) -> T:
        delay = self.backoff_s
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except BaseException as exc:  # noqa: BLE001 - re-raised unless a timeout
                if not is_timeout(exc) or attempt == self.attempts:
                    raise
                if on_retry is not None:
                    on_retry(attempt, exc)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")
