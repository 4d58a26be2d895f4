"""Trigger lines between the simulated instruments of one twin.

A bench joins instruments with trigger cables: the 2600B's DB-25 digital I/O lines (one
line ``k`` of every instrument wired together, as a straight cable does) or TSP-Link. A
:class:`TriggerLine` is that wire in the simulator: a plain object the twin creates, with
the instruments on it as members. When one member asserts the line, every member that
listens (an instrument whose trigger model waits for the line's event) hands back the
level changes it makes, relative to the edge, and the simulated bench plays them all on
its virtual clock (:meth:`~sim_backend.bench.SimulatedBench.play`): changes at the same
offset take effect at the same virtual instant, and the physics integrates the levels in
between. The edges are logged as ``(virtual time s, asserting member)``.

Members are connected with :meth:`TriggerLine.connect` and a listener
``listener(line_number) -> list[Armed]``; the listener must not block (it runs while the
bench is locked, inside the asserting instrument's message).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Armed:
    """What one armed source does on a trigger edge.

    ``changes``: ``(offset s from the edge, bus, volts)``; ``done``: called after the
    whole timeline of the edge has played (e.g. to restore a sweep limit).
    """

    changes: list[tuple[float, str, float]]
    done: Callable[[], None] | None = None


Listener = Callable[[int], Sequence[Armed]]


@dataclass
class TriggerLine:
    """One trigger line joining ``members`` (instrument names) of a twin; ``number`` is the
    line on each instrument (digio line 1..14 of a 2600B)."""

    number: int
    bench: Any  # SimulatedBench
    members: tuple[str, ...]
    edges: list[tuple[float, str]] = field(default_factory=list)
    _listeners: dict[str, Listener] = field(default_factory=dict)

    def connect(self, member: str, listener: Listener) -> None:
        if member not in self.members:
            raise ValueError(f"{member!r} is not wired to trigger line {self.number} (members: {list(self.members)})")
        self._listeners[member] = listener

    def fire(self, source: str) -> list[tuple[float, str, float]]:
        """``source`` asserts the line: every armed member acts at this virtual instant.

        Returns the timeline played, as absolute ``(virtual time s, bus, volts)``.
        """
        with self.bench.lock:
            t0 = float(self.bench.clock.now)
            self.edges.append((t0, source))
            armed = [a for member in self.members if member in self._listeners
                     for a in self._listeners[member](self.number)]
            changes = [c for a in armed for c in a.changes]
            try:
                self.bench.play(changes)
            finally:
                for a in armed:
                    if a.done is not None:
                        a.done()
            return sorted((t0 + off, bus, v) for off, bus, v in changes)


def build_lines(spec: Mapping[str, Iterable[str]], bench: Any, known: Iterable[str]) -> dict[int, TriggerLine]:
    """Trigger lines from a twin spec's ``trigger_lines`` (``{"1": ["smu1", "smu2"]}``).

    Raises ValueError (TypeError for a member list that is not a list) naming the problem.
    """
    names = set(known)
    lines: dict[int, TriggerLine] = {}
    for key, members in spec.items():
        try:
            number = int(str(key))
        except ValueError:
            raise ValueError(f"trigger line {key!r} must be a digital I/O line number 1..14") from None
        if not 1 <= number <= 14:
            raise ValueError(f"trigger line {key!r} must be a digital I/O line number 1..14")
        if number in lines:
            raise ValueError(f"trigger line {number} is listed twice")
        if isinstance(members, str) or not isinstance(members, Iterable):
            raise TypeError(f"trigger line {number} must list instrument names, got {members!r}")
        members = tuple(str(m) for m in members)
        if not members:
            raise ValueError(f"trigger line {number} joins no instrument")
        unknown = [m for m in members if m not in names]
        if unknown:
            raise ValueError(f"trigger line {number}: unknown instrument(s) {unknown}")
        if len(set(members)) != len(members):
            raise ValueError(f"trigger line {number}: an instrument is listed twice in {list(members)}")
        lines[number] = TriggerLine(number, bench, members)
    return lines
