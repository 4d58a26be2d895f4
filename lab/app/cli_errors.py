"""How a ``hopbench`` command ends when something fails: one clear line, the bench state the
run's cleanup confirmed, and an exit code (2 bad input, 1 instrument or runner failure, 130
interrupted)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import typer
from pydantic import ValidationError
from rich.console import Console

from protocols.parameters import plain_validation

err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A command whose known failures become one clear line and a non-zero exit."""

    @functools.wraps(fn)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt as exc:
            safety = _safety_of(exc)
            if safety:
                _fail(f"interrupted; {safety}", 130)
            # before a run began (or after it ended): nothing was being driven, nothing read back
            _fail("interrupted outside a run: no plan operation was being sent, the bench was not read back", 130)
        except Exception as exc:  # noqa: BLE001 - every failure ends as one line
            message, code = _explain(exc)
            safety = _safety_of(exc)
            _fail(f"{message}\n{safety}" if safety and safety not in message else message, code)

    return command


_OS_WORDS = {
    FileExistsError: "exists already and is not a folder",
    NotADirectoryError: "part of this path is a file, not a folder",
    IsADirectoryError: "is a folder, not a file",
    FileNotFoundError: "no such file or folder",
    PermissionError: "permission denied",
}


def _safety_of(exc: BaseException) -> str | None:
    """What the cleanup of the run an exception ended confirmed (None: no run, or not read back)."""
    summary = getattr(exc, "summary", None)
    if summary is not None and getattr(summary, "safety", None):
        return summary.safety
    result = getattr(exc, "run_result", None)
    safety = getattr(result, "safety", None)
    return safety.summary() if safety is not None else None


def _explain(exc: Exception) -> tuple[str, int]:
    """One line and an exit code: 2 for bad input, 1 for an instrument or runner failure."""
    if isinstance(exc, ValidationError):
        return "; ".join(plain_validation(exc)), 2
    if isinstance(exc, KeyError):
        return str(exc).strip("'\""), 2
    if isinstance(exc, OSError) and exc.filename is not None:
        words = next((w for t, w in _OS_WORDS.items() if isinstance(exc, t)), exc.strerror or str(exc))
        return f"{exc.filename}: {words}", 2
    if isinstance(exc, (ValueError, OSError)):
        return str(exc), 2
    return f"{type(exc).__name__}: {exc}", 1
