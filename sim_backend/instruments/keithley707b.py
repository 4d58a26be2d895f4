"""Simulated Keithley 707B / 708B switching matrix (TSP).

Parses the TSP ``channel.*`` functions (close, open, exclusiveclose, getclose, getstate,
forbidden lists, connect rule and sequencing, ``pattern.setimage/snapshot/getimage/delete/
catalog`` (a pattern name stands for its channels in any channel list), ``setdelay``/
``getdelay`` (kept), ``getcount`` (closures so far), reset) plus the common commands, keeps the crosspoint state a real mainframe
keeps, and acts on the shared simulated bench: a relay change goes to ``bench.close`` /
``bench.open`` and costs the settling time on the virtual clock (``bench.advance``).

Channel ids are ``<slot><row><column>``: slot 1-6 (708B: 1), row A-H, column 01-12; a
channel list is comma-separated ids, ``A:B`` rectangles on one slot, ``slotN`` or
``allslots`` (the last two are refused by close/exclusiveclose, as on the instrument).
Bad lists change nothing and put an entry in the error queue. Error codes use the SCPI
meanings TSP instruments share (-224 illegal parameter value, -222 out of range,
-221 settings conflict, -285/-286 TSP syntax/runtime); the message texts are the
simulator's own.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from .lua_runtime import HostFunction
from .tsp import TspError, TspInstrument, TspInterpreter, number_argument
from .tsp_base import MAX_DELAY_S

ROWS = "ABCDEFGH"
COLUMNS = range(1, 13)
_ID = re.compile(r"^([1-9])([A-Za-z])(\d{2})$")

# TSP constants of the channel table
OFF, BREAK_BEFORE_MAKE, MAKE_BEFORE_BREAK = 0, 1, 2
ON = 1

ILLEGAL_PARAMETER = -224
OUT_OF_RANGE = -222
SETTINGS_CONFLICT = -221


class ChannelListError(TspError):
    code = ILLEGAL_PARAMETER


class Keithley707B(TspInstrument):
    """One switching mainframe with ``cards`` 8x12 matrix cards.

    :param limits: what the model can hold, ``{"max_cards": n}`` (default: the class's, 6;
        a 708B's 1), as the builder of the simulated bench knows it.
    """

    model = "keithley707b"
    model_number = "707B"
    serial = "04071990"
    max_cards = 6
    error_severity = 2

    def __init__(
        self,
        name: str = "",
        bench: Any = None,
        cards: int | None = None,
        settling_time_s: float = 0.003,
        limits: Mapping[str, Any] | None = None,
    ) -> None:
        limits = dict(limits or {})
        unknown = set(limits) - {"max_cards"}
        if unknown:
            raise ValueError(f"{self.model}: unknown limits {sorted(unknown)} (known: ['max_cards'])")
        self.max_cards = int(limits.get("max_cards", self.max_cards))
        cards = self.max_cards if cards is None else int(cards)
        if not 1 <= cards <= self.max_cards:
            raise ValueError(
                f"{self.model_number} holds 1..{self.max_cards} matrix cards, got cards={cards}"
            )
        if settling_time_s < 0:
            raise ValueError(f"settling_time_s must be >= 0, got {settling_time_s}")
        self.cards = cards
        self.settling_time_s = float(settling_time_s)
        self.idn = f"Keithley Instruments Inc., Model {self.model_number}, 04071990, 1.0.0 (hopbench sim)"
        self.closed: set[str] = set()
        self.forbidden: set[str] = set()
        self.connect_rule = BREAK_BEFORE_MAKE
        self.connect_sequential = OFF
        self.patterns: dict[str, set[str]] = {}
        self.delays: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        super().__init__(name, bench)

    # -- channel lists ---------------------------------------------------------------------
    def slot_channels(self, slot: int) -> list[str]:
        return [f"{slot}{r}{c:02d}" for r in ROWS for c in COLUMNS]

    def all_channels(self) -> list[str]:
        return [ch for s in range(1, self.cards + 1) for ch in self.slot_channels(s)]

    def _parse_id(self, text: str) -> tuple[int, int, int]:
        m = _ID.match(text)
        if m is None or m.group(2).upper() not in ROWS or not 1 <= int(m.group(3)) <= 12:
            raise ChannelListError(f"Illegal parameter value: invalid channel '{text}'")
        slot = int(m.group(1))
        if not 1 <= slot <= self.cards:
            raise TspError(
                f"Parameter data out of range: channel '{text}' is in empty slot {slot}",
                OUT_OF_RANGE,
            )
        return slot, ROWS.index(m.group(2).upper()), int(m.group(3))

    def parse_channels(self, channel_list: Any, *, allow_slots: bool = True) -> list[str]:
        """Expand a channel list string (ids, ranges, slots, pattern names) into sorted ids; raises TspError."""
        if not isinstance(channel_list, str):
            raise ChannelListError("Illegal parameter value: channel list must be a string")
        out: set[str] = set()
        for item in (s.strip() for s in channel_list.split(",")):
            if not item:
                raise ChannelListError(f"Illegal parameter value: empty item in '{channel_list}'")
            if item in getattr(self, "patterns", {}):
                out |= self.patterns[item]
                continue
            low = item.lower()
            if low == "allslots" or re.fullmatch(r"slot\d", low):
                if not allow_slots:
                    raise ChannelListError(f"Illegal parameter value: '{item}' not allowed here")
                if low == "allslots":
                    out.update(self.all_channels())
                else:
                    slot = int(low[4:])
                    if not 1 <= slot <= self.cards:
                        raise TspError(f"Parameter data out of range: slot {slot} is empty", OUT_OF_RANGE)
                    out.update(self.slot_channels(slot))
            elif ":" in item:
                first, last = (s.strip() for s in item.split(":", 1))
                (s1, r1, c1), (s2, r2, c2) = self._parse_id(first), self._parse_id(last)
                if s1 != s2:
                    raise ChannelListError(f"Illegal parameter value: range '{item}' spans slots")
                for r in range(min(r1, r2), max(r1, r2) + 1):
                    for c in range(min(c1, c2), max(c1, c2) + 1):
                        out.add(f"{s1}{ROWS[r]}{c:02d}")
            else:
                s, r, c = self._parse_id(item)
                out.add(f"{s}{ROWS[r]}{c:02d}")
        return sorted(out)

    @staticmethod
    def format_channels(channels: Iterable[str]) -> str:
        items = sorted(channels)
        return ";".join(items) if items else "nil"

    # -- relays ----------------------------------------------------------------------------
    def _bench_channels(self, channels: Iterable[str]) -> list[str]:
        """The channels the bench has wired (an unwired relay still clicks, but joins nothing)."""
        wired = getattr(self.bench, "crosspoints", None)
        chans = sorted(channels)
        return [c for c in chans if c in wired] if wired is not None else chans

    def _settle(self) -> None:
        if self.bench is not None and self.settling_time_s > 0:
            self.bench.advance(self.settling_time_s)

    def _apply(self, to_open: set[str], to_close: set[str]) -> None:
        """Change relays in the order the connect rule prescribes, settling after each step."""
        to_open = to_open & self.closed
        to_close = to_close - self.closed
        steps = [(to_open, False), (to_close, True)]
        if self.connect_rule == MAKE_BEFORE_BREAK:
            steps.reverse()
        if self.connect_rule == OFF:
            self._switch(to_open, False)
            self._switch(to_close, True)
            self._settle()
            return
        for chans, closing in steps:
            if chans:
                self._switch(chans, closing)
                self._settle()
        if not to_open and not to_close:
            self._settle()  # the command still waits for the relay drivers to settle

    def _switch(self, channels: set[str], closing: bool) -> None:
        if not channels:
            return
        if closing:
            for c in channels - self.closed:
                self.counts[c] = self.counts.get(c, 0) + 1
            self.closed |= channels
        else:
            self.closed -= channels
        if self.bench is not None:
            wired = self._bench_channels(channels)
            if wired:
                (self.bench.close if closing else self.bench.open)(wired)

    def _check_forbidden(self, channels: Iterable[str]) -> None:
        bad = sorted(set(channels) & self.forbidden)
        if bad:
            raise TspError(
                f"Settings conflict: channel {','.join(bad)} is forbidden to close", SETTINGS_CONFLICT
            )

    # -- TSP functions -----------------------------------------------------------------------
    def _close(self, channel_list: Any = None) -> None:
        chans = set(self.parse_channels(channel_list, allow_slots=False))
        self._check_forbidden(chans)
        self._apply(set(), chans)

    def _open(self, channel_list: Any = None) -> None:
        self._apply(set(self.parse_channels(channel_list)), set())

    def _exclusiveclose(self, channel_list: Any = None) -> None:
        if isinstance(channel_list, str) and not channel_list.strip():
            chans: set[str] = set()
        else:
            chans = set(self.parse_channels(channel_list, allow_slots=False))
        self._check_forbidden(chans)
        self._apply(self.closed - chans, chans)

    def _getclose(self, channel_list: Any = None) -> str | None:
        scope = set(self.parse_channels(channel_list))
        items = self.closed & scope
        return self.format_channels(items) if items else None

    def _setforbidden(self, channel_list: Any = None) -> None:
        self.forbidden |= set(self.parse_channels(channel_list))

    def _clearforbidden(self, channel_list: Any = None) -> None:
        self.forbidden -= set(self.parse_channels(channel_list))

    def _getforbidden(self, channel_list: Any = None) -> str | None:
        items = self.forbidden & set(self.parse_channels(channel_list))
        return self.format_channels(items) if items else None

    def _channel_reset(self, channel_list: Any = None) -> None:
        scope = set(self.parse_channels(channel_list))
        self._apply(self.closed & scope, set())
        self.forbidden -= scope

    def reset(self) -> None:
        self._apply(set(self.closed), set())
        self.forbidden.clear()
        self.delays.clear()
        self.connect_rule = BREAK_BEFORE_MAKE
        self.connect_sequential = OFF

    def _set_rule(self, value: Any) -> None:
        if value not in (OFF, BREAK_BEFORE_MAKE, MAKE_BEFORE_BREAK):
            raise TspError(f"Parameter data out of range: connectrule {value}", OUT_OF_RANGE)
        self.connect_rule = int(value)

    def _set_sequential(self, value: Any) -> None:
        if value not in (OFF, ON):
            raise TspError(f"Parameter data out of range: connectsequential {value}", OUT_OF_RANGE)
        self.connect_sequential = int(value)

    def add_functions(self, t: TspInterpreter) -> None:
        for const, value in (
            ("OFF", OFF), ("ON", ON),
            ("BREAK_BEFORE_MAKE", BREAK_BEFORE_MAKE), ("MAKE_BEFORE_BREAK", MAKE_BEFORE_BREAK),
        ):
            t.constant(f"channel.{const}", value)
        t.attribute("channel.connectrule", lambda: self.connect_rule, self._set_rule)
        t.attribute("channel.connectsequential", lambda: self.connect_sequential, self._set_sequential)
        t.function("channel.close", self._close)
        t.function("channel.open", self._open)
        t.function("channel.exclusiveclose", self._exclusiveclose)
        t.function("channel.getclose", self._getclose)
        t.function("channel.setforbidden", self._setforbidden)
        t.function("channel.clearforbidden", self._clearforbidden)
        t.function("channel.getforbidden", self._getforbidden)
        t.function("channel.reset", self._channel_reset)
        self._add_patterns_and_delays(t)

    def _add_patterns_and_delays(self, t: TspInterpreter) -> None:
        """``channel.pattern.*`` (named images of closed channels), ``getstate``, delays, counts."""
        t.function("channel.pattern.setimage", self._setimage)
        t.function("channel.pattern.snapshot", lambda name: self._store_pattern(name, set(self.closed)))
        t.function("channel.pattern.getimage", lambda name: self.format_channels(self._pattern(name)))
        t.function("channel.pattern.delete", lambda name: self.patterns.pop(self._pattern_name(name)) and None)
        t.function("channel.pattern.catalog", self._catalog)
        t.function("channel.getstate", self._getstate)
        t.function("channel.setdelay", self._setdelay)
        t.function("channel.getdelay", lambda lst: ",".join(f"{self.delays.get(c, 0.0):g}" for c in self.parse_channels(lst)))
        t.function("channel.getcount", lambda lst: ",".join(str(self.counts.get(c, 0)) for c in self.parse_channels(lst)))

    def _pattern_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name or len(name) > 32:
            raise ChannelListError("Illegal parameter value: pattern name")
        return name

    def _pattern(self, name: Any) -> set[str]:
        key = self._pattern_name(name)
        if key not in self.patterns:
            raise ChannelListError(f"Illegal parameter value: no pattern '{key}'")
        return self.patterns[key]

    def _store_pattern(self, name: Any, chans: set[str]) -> None:
        self.patterns[self._pattern_name(name)] = chans

    def _setimage(self, channel_list: Any = None, name: Any = None) -> None:
        self._store_pattern(name, set(self.parse_channels(channel_list, allow_slots=False)))

    def _catalog(self) -> Any:
        names = iter(sorted(self.patterns))
        return HostFunction("channel.pattern.catalog", lambda *a: next(names, None))

    def _getstate(self, channel_list: Any = None) -> str:
        """Per channel ``1`` closed / ``0`` open, comma-separated (707B-901-01, channel.getstate)."""
        return ",".join("1" if c in self.closed else "0" for c in self.parse_channels(channel_list))

    def _setdelay(self, channel_list: Any = None, delay: Any = None) -> None:
        d = number_argument(delay, "channel.setdelay")
        if not 0 <= d <= MAX_DELAY_S:  # NaN fails too; the manual gives 0 s as the minimum only
            raise TspError(f"Parameter data out of range: delay must be 0..{MAX_DELAY_S:g} s", OUT_OF_RANGE)
        for c in self.parse_channels(channel_list):
            self.delays[c] = d


class Keithley708B(Keithley707B):
    """The one-slot sibling of the 707B."""

    model = "keithley708b"
    model_number = "708B"
    max_cards = 1
