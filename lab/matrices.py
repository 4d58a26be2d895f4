"""Several switch-matrix mainframes on shared rows, presented as the one matrix above them.

A large array is wired over several mainframes (a 707B holds 72 columns): row A..H of
every mainframe is cabled to the same bus, and each mainframe's columns go to different
lines. Above the drivers a crosspoint is then named ``"<matrix>:<channel>"`` (``"m2:1A01"``);
:class:`MatrixGroup` splits such names by mainframe and sends each mainframe only its own
channels, in one command per mainframe that changes (a command costs a latency and a
settling on the bench). It routes; it decides nothing: the safety guard has checked the
whole target (every line, across all mainframes) before anything reaches it.

A bench with one matrix uses the plain driver and plain channel ids (``"1A01"``) instead.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

SEPARATOR = ":"


class CrosspointError(ValueError):
    """A crosspoint name that names no mainframe of the group; nothing was sent."""


def qualify(matrix: str, channel: str) -> str:
    return f"{matrix}{SEPARATOR}{channel}"


def mainframes_touched(crosspoints: Iterable[str]) -> int:
    """How many mainframes one change of these crosspoints commands (plain ids: the one matrix)."""
    names = {str(xp).partition(SEPARATOR)[0] if SEPARATOR in str(xp) else "" for xp in crosspoints}
    return len(names)


class MatrixGroup:
    """Mainframes by instrument name, in the wiring's order; the switch-matrix role over them.

    Each mainframe settles on its own; the safety layer charges every mainframe command's
    latency (lab.safety.GuardedActuator.switch).
    """

    def __init__(self, members: Mapping[str, Any]) -> None:
        if not members:
            raise ValueError("a matrix group needs at least one mainframe")
        self.members: dict[str, Any] = dict(members)
        self.name = "+".join(self.members)
        self.commands = 0  # mainframe commands sent (relay changes; read-backs not counted)

    def __repr__(self) -> str:
        return f"MatrixGroup({', '.join(self.members)})"

    @property
    def settling_time_s(self) -> float:
        return max(float(getattr(m, "settling_time_s", 0.0)) for m in self.members.values())

    def split(self, crosspoints: Iterable[str] | str) -> dict[str, list[str]]:
        """Channel ids by mainframe, in the group's order; every name checked before any is sent."""
        if isinstance(crosspoints, str):
            crosspoints = [c for c in crosspoints.split(",") if c.strip()]
        out: dict[str, list[str]] = {}
        for xp in crosspoints:
            matrix, sep, channel = str(xp).strip().partition(SEPARATOR)
            if not sep or matrix not in self.members:
                raise CrosspointError(f"{self.name}: crosspoint {xp!r} names no mainframe of this bench "
                                      f"(expected '<matrix>{SEPARATOR}<channel>' with matrix one of "
                                      f"{', '.join(self.members)})")
            out.setdefault(matrix, []).append(channel)
        return {name: out[name] for name in self.members if name in out}

    def _command(self) -> None:
        self.commands += 1

    def close(self, crosspoints: Iterable[str] | str) -> None:
        for name, channels in self.split(crosspoints).items():
            self._command()
            self.members[name].close(channels)

    def open(self, crosspoints: Iterable[str] | str) -> None:
        for name, channels in self.split(crosspoints).items():
            self._command()
            self.members[name].open(channels)

    def exclusive_close(self, crosspoints: Iterable[str] | str) -> None:
        """Exactly these closed on the whole group: every mainframe is told (an empty list opens it)."""
        by = self.split(crosspoints)
        for name, drv in self.members.items():
            self._command()
            drv.exclusive_close(by.get(name, []))

    def open_all(self) -> None:
        """Every relay of every mainframe open; each is tried even if another fails."""
        def one(drv: Any) -> Callable[[], None]:
            return lambda: (self._command(), drv.open_all())
        _each(one(drv) for drv in self.members.values())

    def closed(self) -> set[str]:
        """The closed crosspoints, as each mainframe reports them, qualified by its name."""
        return {qualify(name, ch) for name, drv in self.members.items() for ch in drv.closed()}

    def shutdown(self) -> None:
        _each(drv.shutdown for drv in self.members.values())


def _each(calls: Iterable[Any]) -> None:
    """Make every call; then raise the first failure (a mainframe left closed is worse than an error)."""
    first: BaseException | None = None
    for call in calls:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - the other mainframes still get theirs
            first = first or exc
    if first is not None:
        raise first
