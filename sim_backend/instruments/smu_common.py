"""State of one simulated source-meter channel, acting on one bus of the simulated bench.

The command languages differ between models; what a channel *is* does not: a voltage
source with a current limit, ranges, an integration time and an output relay. The model
modules translate their language into calls here. Errors are raised as
:class:`~sim_backend.instruments.scpi.ScpiError` with the SCPI code a real instrument queues
(the TSP models use the same codes).

What a model can do is its :class:`SmuRatings`: each model class carries its datasheet
values as the default, and whoever builds the instrument may pass ``limits`` (a plain
mapping of rating fields, e.g. ``{"v_max": 202.0, "i_max": 1.515}``) to override them.
The SCPI models share their channel commands: each names where its SCPI tree keeps them
(:class:`ScpiTree`) and :meth:`ScpiSourceMeter.add_channel_commands` declares them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from .base import SimInstrument
from .scpi import Call, Dispatcher, ScpiError, boolean, choice, nr3, number
from .scpi_settings import Setting, add_settings, integer, readonly, stored

# IEEE 488.2 enable registers and the status subsystem: kept and read back
COMMON_SETTINGS: tuple[Setting, ...] = (
    integer("*ESE", 0, 0, 255), integer("*SRE", 0, 0, 255),
    *(integer(f":STATus:{reg}:ENABle", 0, 0, 65535) for reg in ("OPERation", "QUEStionable", "MEASurement")),
    *(readonly(f":STATus:{reg}[:EVENt]", "0") for reg in ("OPERation", "QUEStionable", "MEASurement")),
    *(readonly(f":STATus:{reg}:CONDition", "0") for reg in ("OPERation", "QUEStionable", "MEASurement")),
    readonly(":SYSTem:VERSion", "1999.0"),
)
COMMON = {"ese": COMMON_SETTINGS[0], "sre": COMMON_SETTINGS[1], "meas_enable": COMMON_SETTINGS[4]}

LINE_FREQUENCY_HZ = 50.0  # integration time = NPLC / line frequency
SOURCE_RANGE_MARGIN = 1.01  # a source may program a little over its range's nominal value


@dataclass(frozen=True)
class SmuRatings:
    """What one model's channel can do (the simulator rejects anything beyond, as the real one does)."""

    v_max: float
    i_max: float
    nplc_min: float
    nplc_max: float
    default_limit: float  # A, current limit after reset
    voltage_ranges: tuple[float, ...]
    current_ranges: tuple[float, ...]

    def with_limits(self, limits: Mapping[str, Any] | None, model: str) -> "SmuRatings":
        """These ratings with ``limits`` (rating field -> value) in place of the defaults."""
        if not limits:
            return self
        known = [f.name for f in fields(self)]
        unknown = sorted(set(limits) - set(known))
        if unknown:
            raise ValueError(f"{model}: unknown limits {unknown} (known: {known})")
        values = {
            key: tuple(float(x) for x in value) if key.endswith("_ranges") else float(value)
            for key, value in limits.items()
        }
        return replace(self, **values)


def pick_range(ranges: tuple[float, ...], value: float) -> float:
    """The smallest range holding |value| (a range request selects the range that fits)."""
    v = abs(value)
    for r in ranges:
        if v <= r * SOURCE_RANGE_MARGIN:
            return r
    raise ScpiError(-222, "Data out of range")


class SmuChannel:
    """One source-meter channel: instrument-side state plus its effect on a bench bus."""

    def __init__(self, bench: Any, bus: str, ratings: SmuRatings, faults: Any) -> None:
        self.bench = bench
        self.bus = bus
        self.ratings = ratings
        self._faults = faults  # the owning instrument's Faults (compliance fault)
        self.reset()

    # -- state --------------------------------------------------------------------
    def reset(self) -> None:
        self.source_function = "VOLT"
        self.level = 0.0
        self.limit = self.ratings.default_limit
        self.source_range: float | None = None  # None = auto
        self.measure_range: float | None = None  # None = auto
        self.nplc = 1.0
        self.output = False
        self.last_compliance = False
        self.bench.set_output(self.bus, False)
        self.bench.set_level(self.bus, 0.0)
        self._push_limit()

    def _push_limit(self) -> None:
        # A fixed measure range below the limit clamps first ("range compliance").
        limit = self.limit if self.measure_range is None else min(self.limit, self.measure_range)
        self.bench.set_compliance(self.bus, limit)

    def set_source_function(self, func: str) -> None:
        if func != "VOLT":
            # The simulated bench has voltage sources only; say so instead of pretending.
            raise ScpiError(-221, "Settings conflict; simulated source sources voltage only")
        self.source_function = func

    def set_level(self, volts: float) -> None:
        ceiling = self.ratings.v_max if self.source_range is None else self.source_range
        if not abs(volts) <= ceiling * SOURCE_RANGE_MARGIN:  # NaN is out of every range
            raise ScpiError(-222, "Data out of range")
        self.level = float(volts)
        self.bench.set_level(self.bus, self.level)

    def set_limit(self, amps: float) -> None:
        amps = abs(float(amps))
        if amps <= 0 or amps > self.ratings.i_max * SOURCE_RANGE_MARGIN:
            raise ScpiError(-222, "Data out of range")
        self.limit = amps
        self._push_limit()

    def set_source_range(self, volts: float | None) -> None:
        if volts is None:
            self.source_range = None
            return
        r = pick_range(self.ratings.voltage_ranges, volts)
        if abs(self.level) > r * SOURCE_RANGE_MARGIN:
            raise ScpiError(-221, "Settings conflict")
        self.source_range = r

    def set_measure_range(self, amps: float | None) -> None:
        self.measure_range = None if amps is None else pick_range(self.ratings.current_ranges, amps)
        self._push_limit()

    def set_nplc(self, nplc: float) -> None:
        if not (self.ratings.nplc_min <= nplc <= self.ratings.nplc_max):
            raise ScpiError(-222, "Data out of range")
        self.nplc = float(nplc)

    def set_output(self, on: bool) -> None:
        self.output = bool(on)
        self.bench.set_output(self.bus, self.output)

    # -- measuring ----------------------------------------------------------------
    @property
    def integration_s(self) -> float:
        return self.nplc / LINE_FREQUENCY_HZ

    def measure(self) -> tuple[float, float, bool]:
        """(V, I, compliance) over one integration time of virtual time."""
        v, i, comp = self.bench.measure(self.bus, integration_s=self.integration_s)
        comp = bool(comp) or self._faults.compliance
        self.last_compliance = comp
        return float(v), float(i), comp

    def in_compliance(self) -> bool:
        """Whether the source is clamped now (no virtual time passes)."""
        if self._faults.compliance:
            return True
        if not self.output:
            return False
        return bool(_bus_compliance(self.bench, self.bus, self.last_compliance))


def _bus_compliance(bench: Any, bus: str, fallback: bool) -> bool:
    try:
        flags = bench.solve_now().in_compliance
    except AttributeError:
        return fallback
    if isinstance(flags, dict):
        return bool(flags.get(bus, fallback))
    return fallback


class _OpenTerminals:
    """Stands in for the bench behind a channel wired to nothing: open terminals, no current."""

    def __init__(self, bench: Any) -> None:
        self._bench = bench
        self._level = 0.0
        self._on = False

    def set_level(self, bus: Any, volts: float) -> None:
        self._level = volts

    def set_output(self, bus: Any, on: bool) -> None:
        self._on = on

    def set_compliance(self, bus: Any, amps: float) -> None:
        pass

    def measure(self, bus: Any, integration_s: float) -> tuple[float, float, bool]:
        self._bench.advance(integration_s)  # measuring costs time even on an open channel
        return (self._level if self._on else 0.0), 0.0, False


def make_channels(bench: Any, wiring: dict[str, str], ids: tuple[str, ...], ratings: SmuRatings,
                  faults: Any, model: str) -> dict[str, SmuChannel]:
    """One SmuChannel per physical channel; channels not in ``wiring`` see open terminals."""
    unknown = set(wiring) - set(ids)
    if unknown:
        raise ValueError(f"{model} has channels {list(ids)}, not {sorted(unknown)}")
    out = {}
    for cid in ids:
        if cid in wiring:
            out[cid] = SmuChannel(bench, wiring[cid], ratings, faults)
        else:
            out[cid] = SmuChannel(_OpenTerminals(bench), cid, ratings, faults)
    return out


class SourceMeter(SimInstrument):
    """What every simulated source-meter holds: its ratings and its channels.

    Subclasses set ``channel_ids`` and ``ratings`` (the model's datasheet defaults) and call
    :meth:`setup_channels` from their constructor.
    """

    channel_ids: tuple[str, ...] = ("1",)
    ratings: SmuRatings

    def setup_channels(self, bench: Any, channels: Mapping[str, str] | None,
                       limits: Mapping[str, Any] | None) -> None:
        """Wire ``channels`` (channel id -> bench bus) with the ratings ``limits`` leaves."""
        self.bench = bench
        self.ratings = type(self).ratings.with_limits(limits, self.model)
        self.smu = make_channels(bench, dict(channels or {}), self.channel_ids, self.ratings, self.faults, self.model)

    def reset(self) -> None:
        for ch in self.smu.values():
            ch.reset()
        getattr(self, "settings", {}).clear()


@dataclass(frozen=True)
class ScpiTree:
    """Where one SCPI model keeps the channel settings (patterns as its manual writes them).

    ``source_range_reply``/``measure_range_reply``: what a range query answers in auto range
    (None: the range holding the present level); ``measure_range_fixed``: the range that
    switching auto off fixes, where it differs from the reply.
    """

    function: str
    level: str
    limit: str
    limit_tripped: str
    source_range: str
    source_range_auto: str
    measure_range: str
    measure_range_auto: str
    nplc: tuple[str, ...]
    output: str
    source_range_reply: float | None
    measure_range_reply: float
    measure_range_fixed: float | None = None
    limit_min: float | None = None  # smallest limit accepted (None: -i_max, the sign ignored)
    nplc_default: float = 1.0


def scpi_tree(source: str, sense: str, *, function: str = ":FUNCtion[:MODE]",
              limit: str | None = None, limit_tripped: str | None = None,
              source_range: str = ":VOLTage:RANGe[:UPPer]", nplc: tuple[str, ...] = ("CURRent[:DC]", "VOLTage[:DC]"),
              source_range_reply: float | None, measure_range_reply: float, **behaviour: Any) -> ScpiTree:
    """The :class:`ScpiTree` of a model whose subsystems are ``source``/``sense`` (``":SOURce#"``).

    Defaults follow the common SCPI source-meter layout (the limit is the sense
    subsystem's current protection); a model names only where it departs from it.
    """
    limit = limit or f"{sense}:CURRent[:DC]:PROTection[:LEVel]"
    return ScpiTree(
        function=source + function,
        level=f"{source}:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
        limit=limit,
        limit_tripped=limit_tripped or f"{sense}:CURRent[:DC]:PROTection:TRIPped",
        source_range=source + source_range,
        source_range_auto=f"{source}:VOLTage:RANGe:AUTO",
        measure_range=f"{sense}:CURRent[:DC]:RANGe[:UPPer]",
        measure_range_auto=f"{sense}:CURRent[:DC]:RANGe:AUTO",
        nplc=tuple(f"{sense}:{f}:NPLCycles" for f in nplc),
        output=":OUTPut#[:STATe]",
        source_range_reply=source_range_reply,
        measure_range_reply=measure_range_reply,
        **behaviour,
    )


class ScpiSourceMeter(SourceMeter):
    """Base of the SCPI source-meters: IEEE 488.2 common commands, error queue, channels.

    Subclasses set ``channel_ids``, ``ratings``, ``idn``, ``tree`` (their :class:`ScpiTree`)
    and add the rest of their commands in :meth:`add_commands`.
    """

    error_format = '{code:d},"{message}"'
    tree: ScpiTree

    def budget_error(self, message: str) -> Exception:
        return ScpiError(-200, f"Execution error; {message}")

    def __init__(self, name: str, bench: Any, channels: Mapping[str, str] | None = None,
                 limits: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.settings: dict[Any, Any] = {}  # stored settings (scpi_settings), cleared by *RST
        self.setup_channels(bench, channels, limits)
        self.scpi = Dispatcher()
        self._add_common_commands()
        self.add_channel_commands(self.tree)
        self.add_commands()

    def add_commands(self) -> None:
        raise NotImplementedError

    def handle(self, message: str) -> str | None:
        try:
            return self.scpi.execute(message)
        except ScpiError as e:
            self.push_error(e.code, e.message)
            return None

    def channel(self, call: Call, index: int = 0) -> SmuChannel:
        """The channel named by a header's numeric suffix (``SOUR2``); absent suffix = 1."""
        cid = str(call.suffix(index))
        if cid not in self.smu:
            raise ScpiError(-114, "Header suffix out of range")
        return self.smu[cid]

    def source_range_reply(self, c: Call) -> float:
        """The source range a query reports (the fixed one, else the auto-range's)."""
        ch = self.channel(c)
        if ch.source_range is not None:
            return ch.source_range
        reply = self.tree.source_range_reply
        return pick_range(self.ratings.voltage_ranges, ch.level) if reply is None else reply

    def add_channel_commands(self, t: ScpiTree) -> None:
        """Source function, level, limit, ranges, NPLC and output at the places ``t`` names."""
        add, ch, r = self.scpi.add, self.channel, self.ratings
        v = r.v_max
        i_lo = -r.i_max if t.limit_min is None else t.limit_min
        fixed_measure = t.measure_range_reply if t.measure_range_fixed is None else t.measure_range_fixed
        add(t.function, lambda c: ch(c).set_source_function(choice(c.one(), ("VOLTage", "CURRent"))[:4]),
            lambda c: ch(c).source_function)
        add(t.level, lambda c: ch(c).set_level(number(c.one(), -v, v, 0)), lambda c: nr3(ch(c).level))
        add(t.limit, lambda c: ch(c).set_limit(number(c.one(), i_lo, r.i_max, r.default_limit)),
            lambda c: nr3(ch(c).limit))
        add(t.limit_tripped, None, lambda c: "1" if ch(c).in_compliance() else "0")
        add(t.source_range, lambda c: ch(c).set_source_range(number(c.one(), -v, v)),
            lambda c: nr3(self.source_range_reply(c)))
        add(t.source_range_auto,
            lambda c: ch(c).set_source_range(None if boolean(c.one()) else self.source_range_reply(c)),
            lambda c: "1" if ch(c).source_range is None else "0")
        add(t.measure_range, lambda c: ch(c).set_measure_range(number(c.one(), -r.i_max, r.i_max)),
            lambda c: nr3(ch(c).measure_range or t.measure_range_reply))
        add(t.measure_range_auto,
            lambda c: ch(c).set_measure_range(None if boolean(c.one()) else (ch(c).measure_range or fixed_measure)),
            lambda c: "1" if ch(c).measure_range is None else "0")
        for pattern in t.nplc:
            add(pattern, lambda c: ch(c).set_nplc(number(c.one(), r.nplc_min, r.nplc_max, t.nplc_default)),
                lambda c: nr3(ch(c).nplc))
        add(t.output, lambda c: ch(c).set_output(boolean(c.one())), lambda c: "1" if ch(c).output else "0")

    esr = 0  # standard event status register

    def push_error(self, code: int, message: str) -> None:
        super().push_error(code, message)
        # ESR bits: 5 command error, 4 execution error, 3 device-dependent, 2 query error
        bit = {-1: 5, -2: 4, -3: 3, -4: 2}.get(-(abs(code) // 100) if code < 0 else -3, 3)
        self._set_esr(1 << bit)

    def _set_esr(self, bits: int) -> None:
        self.esr |= bits

    def _take_esr(self) -> int:
        value, self.esr = self.esr, 0
        return value

    def status_byte(self) -> int:
        """Bit 2 error available, bit 5 event summary (ESR & *ESE), bit 6 request (STB & *SRE)."""
        stb = (4 if self.error_queue else 0) | (32 if self.esr & stored(self.settings, COMMON["ese"]) else 0)
        return stb | (64 if stb & stored(self.settings, COMMON["sre"]) else 0)

    def format_error(self, code: int, message: str) -> str:
        return self.error_format.format(code=code, message=message)

    def _add_common_commands(self) -> None:
        add = self.scpi.add

        def rst(call: Call) -> None:
            call.none()
            self.reset()

        def cls(call: Call) -> None:
            self.error_queue.clear()
            self.esr = 0

        add("*IDN", None, lambda c: self.idn)
        add("*RST", rst)
        add("*CLS", cls)
        add("*OPC", lambda c: self._set_esr(1), lambda c: "1")
        add("*WAI", lambda c: None)
        add("*ESR", None, lambda c: str(self._take_esr()))
        add("*STB", None, lambda c: str(self.status_byte()))
        add("*TST", None, lambda c: "0")
        add(":SYSTem:ERRor[:NEXT]", None, lambda c: self.format_error(*self.next_error()))
        add(":SYSTem:ERRor:COUNt", None, lambda c: str(len(self.error_queue)))
        add(":SYSTem:CLEar", cls)
        add(":STATus:PRESet", lambda c: None)
        add(":STATus:CLEar", cls)
        add(":SYSTem:BEEPer[:IMMediate]", lambda c: None if len(c.params) == 2 else c.one() and None)
        add_settings(self.scpi, COMMON_SETTINGS, self.settings)
