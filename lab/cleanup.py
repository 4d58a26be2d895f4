"""Cleanup: whatever happened, sources to 0 V, outputs off and relays open, each step read
back and reported instrument by instrument (what the user is told about the bench's state)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping

log = logging.getLogger("hopbench.safety")  # cleanup logs as part of the safety layer, as ever


@dataclass
class SafeState:
    """What cleanup did and confirmed, instrument by instrument (the words the user is told).

    ``confirmed``: instrument -> what its read-back showed; ``unconfirmed``: instrument ->
    the steps that failed or whose read-back disagreed. The bench is safe only if every
    instrument is confirmed and none is unconfirmed.
    """

    confirmed: dict[str, str] = field(default_factory=dict)
    unconfirmed: dict[str, list[str]] = field(default_factory=dict)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def safe(self) -> bool:
        return not self.unconfirmed and bool(self.confirmed)

    def summary(self) -> str:
        """One line: per instrument, what was confirmed or what was not."""
        parts = [f"{name}: {what}" for name, what in self.confirmed.items()]
        for name, why in self.unconfirmed.items():
            more = f"; +{len(why) - 2} more" if len(why) > 2 else ""
            parts.append(f"{name}: NOT confirmed ({'; '.join(why[:2])}{more})")
        head = ("bench safe, confirmed by read-back" if self.safe
                else "bench NOT confirmed safe, check it by hand")
        return f"{head}: " + "; ".join(parts) if parts else f"{head}: no instrument answered"

    def as_dict(self) -> dict[str, Any]:
        return {"safe": self.safe, "confirmed": dict(self.confirmed),
                "unconfirmed": {k: list(v) for k, v in self.unconfirmed.items()}}


def _instrument_of(bus: str, channel: Any) -> str:
    return str(getattr(getattr(channel, "parent", None), "name", "") or bus)


def secure(channels: Mapping[str, Any], matrix: Any | None, logger: logging.Logger | None = None, *,
           instruments: Mapping[str, Any] | None = None, matrix_name: str = "matrix",
           resync: bool = True) -> SafeState:
    """Make the bench safe and say what was confirmed; every step is attempted whatever fails.

    1. every instrument's link resynchronised (a cut exchange's reply must not be read as an
       answer of the steps below, see ``drivers.transport.GuardedIO.resync``);
    2. sources to 0 V, outputs off, relays open, in that order;
    3. each read back: output state and level of every channel, the matrix's closed list;
       an instrument is confirmed only if all of its read-backs agree.

    ``channels`` maps bus names to source-meter channels, ``instruments`` names every driver
    to resynchronise. ``matrix`` is the one matrix driver (named ``matrix_name``), or the
    mainframes of a large array, {name: driver} or a group with ``members``: each is opened and
    read back by itself, and confirmed or not under its own name. Nothing here is checked by
    the guard: each step only makes the bench safer.
    """
    logger = logger or log
    state = SafeState()
    failed: dict[str, list[str]] = {}
    if matrix is None:
        mainframes: dict[str, Any] = {}
    elif isinstance(matrix, Mapping):
        mainframes = dict(matrix)
    else:
        mainframes = dict(getattr(matrix, "members", None) or {matrix_name: matrix})

    def attempt(inst: str, step: str, fn: Any) -> Any:
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - collected, the next step still runs
            logger.error("cleanup step %s failed: %s: %s", step, type(exc).__name__, exc)
            state.errors.append((step, exc))
            text = str(exc).removeprefix(f"{inst}: ")
            failed.setdefault(inst, []).append(f"{step} failed ({type(exc).__name__}: {text[:100]})")
            return None

    if resync:
        for name, drv in (instruments or {}).items():
            if hasattr(drv, "resync"):
                attempt(name, f"{name}: resync", drv.resync)
    for bus, ch in channels.items():
        attempt(_instrument_of(bus, ch), f"{bus}: source to 0 V", lambda ch=ch: ch.set_voltage(0.0))
    for bus, ch in channels.items():
        attempt(_instrument_of(bus, ch), f"{bus}: output off", lambda ch=ch: ch.set_output(False))
    for name, drv in mainframes.items():
        attempt(name, f"{name}: open all relays", drv.open_all)
    # read back: what the user is told is what the instruments say
    seen: dict[str, list[str]] = {}
    for bus, ch in channels.items():
        inst = _instrument_of(bus, ch)
        chan = str(getattr(ch, "id", bus))
        seen.setdefault(inst, [])
        on = attempt(inst, f"{bus}: read back output", ch.output_enabled)
        if on is True:
            failed.setdefault(inst, []).append(f"{bus} ({chan}): output reads back ON")
        if not hasattr(type(ch), "source_voltage"):  # a channel that cannot report its level
            failed.setdefault(inst, []).append(f"{bus} ({chan}): level cannot be read back")
            continue
        level = attempt(inst, f"{bus}: read back level", lambda ch=ch: float(ch.source_voltage))
        if level is not None and abs(level) > 1e-9:
            failed.setdefault(inst, []).append(f"{bus} ({chan}): level reads back {level:g} V")
        if on is False and level is not None and abs(level) <= 1e-9:
            seen[inst].append(chan)
    for name, drv in mainframes.items():
        closed = attempt(name, f"{name}: read back closed relays", drv.closed)
        if closed:
            failed.setdefault(name, []).append(f"{len(closed)} relays read back closed: "
                                               f"{', '.join(sorted(closed)[:6])}")
        elif closed is not None:
            seen[name] = []
    for inst, chans in seen.items():
        if inst in failed:
            continue
        state.confirmed[inst] = ("all relays open" if inst in mainframes
                                 else f"output{'s' if len(chans) > 1 else ''} {', '.join(chans)} off at 0 V")
    state.unconfirmed = failed
    return state


def make_safe(channels: Mapping[str, Any], matrix: Any | None,
              logger: logging.Logger | None = None) -> list[tuple[str, BaseException]]:
    """Sources to 0 V, outputs off, relays open, each read back; returns the failed steps.

    ``channels`` maps bus names to source-meter channels. See :func:`secure` for the
    resynchronised, per-instrument account the runner uses.
    """
    return secure(channels, matrix, logger, resync=False).errors
