"""Keithley 707B / 708B switching matrix (TSP), on pymeasure's Instrument.

Fills the switch-matrix role structurally: ``close``, ``open``, ``open_all``, ``closed``,
``settling_time_s``. Every relay change is followed by ``*OPC?`` (the call returns only
once the relays have settled) and an error-queue check, so a refused change raises
:class:`~drivers.errors.InstrumentReportedError` at the call that caused it.

Connecting identifies the mainframe, clears stale errors and sets the break-before-make
connect rule (the manual warns make-before-break can dry-weld reed relays); it never
closes or opens a relay. Channel ids are ``<slot><row><column>`` (``"1A01"``: slot 1-6,
708B only 1; row A-H; column 01-12) and are validated before anything is sent.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set

from .capabilities import capability
from .errors import BadReply, InstrumentReportedError
from .transport import GuardedIO

log = logging.getLogger(__name__)

_CARD = capability("keithley707b")  # rows and columns of one matrix card
ROWS = _CARD.rows
COLUMNS = tuple(f"{c:02d}" for c in range(1, _CARD.columns + 1))
CONNECT_RULES = ("OFF", "BREAK_BEFORE_MAKE", "MAKE_BEFORE_BREAK")  # TSP values 0, 1, 2
_CHANNEL = re.compile(rf"^([1-9])([{ROWS}])({'|'.join(COLUMNS)})$")
_CHANNEL_FORM = f"<slot><row {ROWS[0]}-{ROWS[-1]}><column {COLUMNS[0]}-{COLUMNS[-1]}>"


class ChannelError(ValueError):
    """A channel id or list the matrix cannot take; raised before anything is sent."""


def _connect_rule(reply: Any) -> str:
    try:
        return CONNECT_RULES[int(float(reply))]
    except (TypeError, ValueError, IndexError):
        raise BadReply("unexpected connect rule", reply=reply) from None


class Keithley707B(GuardedIO, Instrument):
    """Keithley 707B switching mainframe with ``cards`` 8x12 matrix cards (1-6).

    :param adapter: a VISA resource string (``"TCPIP::192.168.1.20::5025::SOCKET"``) or an
        adapter; further keyword arguments (``visa_library``, ``timeout``...) go to pyvisa.
    :param cards: number of matrix cards installed (slots 1..cards).
    :param settling_time_s: relay settling time the instrument adds to each change.
    """

    model = "keithley707b"
    model_number = "707B"
    max_cards = capability(model).max_cards
    default_name = f"Keithley {model_number}"
    connection_defaults = {"read_termination": "\n", "write_termination": "\n", "includeSCPI": False}

    connect_rule = Instrument.control(
        "print(channel.connectrule)",
        "channel.connectrule = channel.%s",
        """Control the relay connect rule: 'BREAK_BEFORE_MAKE', 'MAKE_BEFORE_BREAK' or 'OFF'.""",
        validator=strict_discrete_set,
        values=CONNECT_RULES,
        get_process=_connect_rule,
        check_set_errors=True,
    )

    def __init__(
        self,
        adapter: Any,
        name: str | None = None,
        cards: int | None = None,
        settling_time_s: float = 0.003,
        **kwargs: Any,
    ) -> None:
        cards = self.max_cards if cards is None else int(cards)
        if not 1 <= cards <= self.max_cards:
            raise ValueError(f"a {self.model_number} holds 1..{self.max_cards} matrix cards, got {cards}")
        super().__init__(adapter, name, **kwargs)
        self.cards = cards
        self.settling_time_s = float(settling_time_s)
        self._forbidden: set[str] = set()
        self._identify()
        self.write("errorqueue.clear()")  # errors left by an earlier session are not ours
        self.connect_rule = "BREAK_BEFORE_MAKE"

    # -- identity and errors ---------------------------------------------------------------
    @property
    def id(self) -> str:
        """Get the identification string (``*IDN?``)."""
        return self.ask("*IDN?").strip()

    def _identify(self) -> None:
        idn = self.id
        if re.search(rf"\b{self.model_number}\b", idn.upper()) is None:
            raise BadReply(f"not a Keithley {self.model_number}", reply=idn, instrument=self.name)

    def sync_marker(self, nonce: int) -> tuple[str, str]:
        token = f"hopbench-sync-{nonce}"
        return f'print("{token}")', token

    def drain_errors(self) -> list[tuple[int, str]]:
        return self.check_errors()

    def check_errors(self) -> list[tuple[int, str]]:
        """Read and empty the error queue; return its entries as (code, message)."""
        count = self.ask("print(errorqueue.count)").strip()
        try:
            n = int(float(count))
        except ValueError:
            raise BadReply("unexpected error count", reply=count, instrument=self.name) from None
        errors = []
        for _ in range(n):
            reply = self.ask("print(errorqueue.next())").strip()
            fields = reply.split("\t")
            try:
                errors.append((int(float(fields[0])), fields[1].strip().strip("\"'")))
            except (ValueError, IndexError):
                raise BadReply("unexpected error entry", reply=reply, instrument=self.name) from None
        for code, message in errors:
            log.error("%s: error %d, %s", self.name, code, message)
        return errors

    def check_set_errors(self, command: str = "") -> list[tuple[int, str]]:
        """Wait until the change is complete (``*OPC?``), then raise any queued error."""
        done = self.ask("*OPC?").strip()
        if done != "1":
            raise BadReply("unexpected *OPC? reply", reply=done, instrument=self.name)
        errors = self.check_errors()
        if errors:
            code, message = errors[0]
            more = f" (+{len(errors) - 1} more: {errors[1:]})" if len(errors) > 1 else ""
            raise InstrumentReportedError(code, message + more, command=command, instrument=self.name)
        return []

    def _change(self, command: str) -> None:
        self.write(command)
        self.check_set_errors(command)

    # -- channel ids ---------------------------------------------------------------------------
    def validate_channels(self, channels: Iterable[str] | str) -> list[str]:
        """Normalize channel ids (sorted, unique, upper case); raise ChannelError if any is bad."""
        if isinstance(channels, str):
            channels = [c for c in channels.split(",") if c.strip()]
        out: set[str] = set()
        for ch in channels:
            if not isinstance(ch, str):
                raise ChannelError(f"{self.name}: channel ids are strings like '1A01', got {ch!r}")
            norm = ch.strip().upper()
            m = _CHANNEL.match(norm)
            if m is None:
                raise ChannelError(
                    f"{self.name}: invalid channel id {ch!r}: expected {_CHANNEL_FORM}, "
                    "e.g. '1A01'"
                )
            if int(m.group(1)) > self.cards:
                raise ChannelError(
                    f"{self.name}: channel {ch!r} is in slot {m.group(1)}, but only slots "
                    f"1..{self.cards} hold cards"
                )
            out.add(norm)
        return sorted(out)

    @staticmethod
    def _parse_list(reply: str) -> set[str]:
        reply = reply.strip()
        if reply in ("nil", ""):
            return set()
        items = {item.strip() for item in re.split(r"[;,]", reply) if item.strip()}
        if not all(_CHANNEL.match(i) for i in items):
            raise BadReply("unexpected channel list", reply=reply)
        return items

    # -- switch-matrix role --------------------------------------------------------------------
    def close(self, channels: Iterable[str] | str) -> None:
        """Close crosspoints, adding to those already closed (break before make)."""
        chans = self.validate_channels(channels)
        bad = sorted(set(chans) & self._forbidden)
        if bad:
            raise ChannelError(f"{self.name}: channels {bad} are forbidden to close")
        if chans:
            self._change(f'channel.close("{",".join(chans)}")')

    def open(self, channels: Iterable[str] | str) -> None:
        """Open crosspoints."""
        chans = self.validate_channels(channels)
        if chans:
            self._change(f'channel.open("{",".join(chans)}")')

    def open_all(self) -> None:
        """Open every relay of every slot."""
        self._change('channel.open("allslots")')

    def exclusive_close(self, channels: Iterable[str] | str) -> None:
        """Open every other relay, then close exactly these (none: open everything)."""
        chans = self.validate_channels(channels)
        bad = sorted(set(chans) & self._forbidden)
        if bad:
            raise ChannelError(f"{self.name}: channels {bad} are forbidden to close")
        self._change(f'channel.exclusiveclose("{",".join(chans)}")')

    def closed(self) -> set[str]:
        """The closed crosspoints, as the instrument reports them."""
        reply = self.ask('print(channel.getclose("allslots"))')
        try:
            return self._parse_list(reply)
        except BadReply as exc:
            raise BadReply("unexpected closed-channel list", reply=reply, instrument=self.name) from exc

    # -- forbidden channels --------------------------------------------------------------------
    def set_forbidden(self, channels: Iterable[str] | str) -> None:
        """Mark channels forbidden to close (the instrument then refuses to close them)."""
        chans = self.validate_channels(channels)
        if chans:
            self._change(f'channel.setforbidden("{",".join(chans)}")')
            self._forbidden |= set(chans)

    def clear_forbidden(self, channels: Iterable[str] | str | None = None) -> None:
        """Lift the forbidden mark from channels (None: from every channel)."""
        chans = None if channels is None else self.validate_channels(channels)
        self._change(f'channel.clearforbidden("{"allslots" if chans is None else ",".join(chans)}")')
        self._forbidden = set() if chans is None else self._forbidden - set(chans)

    def forbidden(self) -> set[str]:
        """The channels forbidden to close, as the instrument reports them."""
        reply = self.ask('print(channel.getforbidden("allslots"))')
        try:
            self._forbidden = self._parse_list(reply)
        except BadReply as exc:
            raise BadReply("unexpected forbidden list", reply=reply, instrument=self.name) from exc
        return set(self._forbidden)

    def reset(self) -> None:
        """Reset the mainframe (*RST): opens every relay and clears forbidden marks."""
        self._change("*RST")
        self._forbidden = set()
        self.connect_rule = "BREAK_BEFORE_MAKE"

    def shutdown(self) -> None:
        """Leave the matrix safe: every relay open."""
        self.open_all()
        super().shutdown()


class Keithley708B(Keithley707B):
    """Keithley 708B: the single-slot 707B."""

    model = "keithley708b"
    model_number = "708B"
    max_cards = capability(model).max_cards
    default_name = f"Keithley {model_number}"
