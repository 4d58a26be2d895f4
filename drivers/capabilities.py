"""What each instrument model can do: the one table of model names and datasheet limits.

The keys are the model names bench files use; every driver reads its validators' bounds
from its entry, :func:`drivers.open_instrument` finds the driver class through it, and
``lab.models`` re-exports it so a bench file cannot ask for more than a model can do.

Values are the rated DC limits of the source ranges (datasheets); a bench's own limits
must fit inside them. A source-meter's largest current is only available on its
low-voltage ranges: ``envelope`` lists the DC (|V| up to, |I| up to) corners of its source
ranges, and :meth:`ModelCapability.i_max_at` gives the largest current it can hold at a
voltage; :attr:`ModelCapability.i_limit_max` is the largest current limit the instrument
itself accepts (what a driver lets through). A matrix's ``v_max``/``i_max`` are the signal
and carry ratings of its relays (we switch cold, so the switched rating never applies).

Sources (manufacturers' datasheets and manuals, DC, not pulsed):
- 2400 and 2450: ±21 V at 1.05 A, ±210 V at 105 mA; NPLC 0.01 to 10.
- 2600B, 200 V class (2612B, 2634B, 2635B, 2636B): ±20 V at 1.5 A, ±200 V at 100 mA, 1 %
  over-range (202 V, 1.515 A); 10 A only pulsed; NPLC 0.001 to 25.
- 2602B (and 2601B), 40 V class: ±6 V at 3 A, ±40 V at 1 A, with over-range; NPLC 0.001 to 25.
- B2901A/B2902A: ±6 V at 3.03 A, ±21 V at 1.515 A, ±210 V at 105 mA (10.5 A only pulsed);
  the two channels of a B2902A share 4 A (≤ 6 V) or 2.5 A (≤ 21 V) between them, so the
  conservative per-channel current is 1.515 A; NPLC 4e-4 to 100 (50 Hz line).
- Smallest current limit / measure range the drivers accept: 2450 and B2900 1 nA, 200 V
  2600B 100 pA, 2602B 1 nA.
- 707B/708B with 7174A-class cards: 200 V signal, 1 A carry (conservative; check the card
  fitted); 8 rows (A-H) by 12 columns per card, 6 slots (708B: 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelCapability:
    kind: Literal["smu", "matrix"]
    v_max: float = 0.0  # V, largest |V| the source can output (matrix: relay signal rating)
    i_max: float = 0.0  # A, largest DC current a bench may ask of it (matrix: relay carry rating)
    channels: tuple[str, ...] = ()  # SMU channel ids as the driver names them
    max_cards: int = 0  # matrix: slots
    rows: str = ""  # matrix: row letters of one card
    columns: int = 0  # matrix: columns of one card
    nplc_range: tuple[float, float] = (0.01, 10.0)
    envelope: tuple[tuple[float, float], ...] = ()  # SMU: DC (|V| up to, |I| up to), ascending V
    i_limit_min: float = 0.0  # A, smallest current limit / measure range the source accepts
    driver: str = ""  # "module:Class" of the driver that opens this model
    # digital-I/O trigger lines a cable can join across instruments (2600B: 14, DB-25), so
    # armed sources start a pulse together (``arm_sync_pulse`` / ``fire_trigger_line``)
    trigger_lines: int = 0

    def i_max_at(self, volts: float) -> float:
        """Largest DC current at ``|volts|`` (``i_max`` where no envelope is known)."""
        for v_top, i_top in self.envelope:
            if abs(volts) <= v_top:
                return min(i_top, self.i_max)
        return self.i_max if not self.envelope else 0.0

    @property
    def i_limit_max(self) -> float:
        """Largest current limit the instrument accepts (its envelope's first corner).

        Above ``i_max`` where channels share a supply (B2902A: 3.03 A accepted, 1.515 A
        for each of two channels at once).
        """
        return max((i for _, i in self.envelope), default=self.i_max)


_2600_DUAL = ("a", "b")
_2400 = ((21.0, 1.05), (210.0, 0.105))
_2600_200V = ((20.2, 1.515), (202.0, 0.101))
_2600_40V = ((6.06, 3.03), (40.4, 1.01))
_B2900 = ((6.0, 3.03), (21.0, 1.515), (210.0, 0.105))
_TSP_NPLC = (0.001, 25.0)
_B2900_NPLC = (4e-4, 100.0)
_K2600 = "drivers.keithley2600b:"
_B29 = "drivers.keysight_b2900:"
_K707 = "drivers.keithley707b:"


def _k2600(channels: tuple[str, ...], cls: str, *, v: float = 202.0, i: float = 1.515, i_min: float = 1e-10,
           envelope: tuple[tuple[float, float], ...] = _2600_200V) -> ModelCapability:
    return ModelCapability("smu", v, i, channels, nplc_range=_TSP_NPLC, envelope=envelope, i_limit_min=i_min,
                           driver=_K2600 + cls, trigger_lines=14)


def _b2900(channels: tuple[str, ...], cls: str) -> ModelCapability:
    return ModelCapability("smu", 210.0, 1.515, channels, nplc_range=_B2900_NPLC, envelope=_B2900,
                           i_limit_min=1e-9, driver=_B29 + cls)


def _matrix(max_cards: int, cls: str) -> ModelCapability:
    return ModelCapability("matrix", 200.0, 1.0, max_cards=max_cards, rows="ABCDEFGH", columns=12,
                           driver=_K707 + cls)


MODELS: dict[str, ModelCapability] = {
    # the 2400 driver bounds the current limit symmetrically, as pymeasure's 2400 does
    "keithley2400": ModelCapability("smu", 210.0, 1.05, ("1",), envelope=_2400,
                                    driver="drivers.keithley2400:Keithley2400"),
    "keithley2450": ModelCapability("smu", 210.0, 1.05, ("1",), envelope=_2400, i_limit_min=1e-9,
                                    driver="drivers.keithley2450:Keithley2450"),
    # the generic 2600B driver is the dual-channel 200 V class
    "keithley2600b": _k2600(_2600_DUAL, "Keithley2600B"),
    "keithley2602b": _k2600(_2600_DUAL, "Keithley2602B", v=40.4, i=3.03, i_min=1e-9, envelope=_2600_40V),
    "keithley2612b": _k2600(_2600_DUAL, "Keithley2612B"),
    "keithley2634b": _k2600(_2600_DUAL, "Keithley2634B"),
    "keithley2635b": _k2600(("a",), "Keithley2635B"),
    "keithley2636b": _k2600(_2600_DUAL, "Keithley2636B"),
    # the generic B2900 driver is the two-channel B2902A
    "keysight_b2900": _b2900(("1", "2"), "KeysightB2902A"),
    "keysight_b2901a": _b2900(("1",), "KeysightB2901A"),
    "keysight_b2902a": _b2900(("1", "2"), "KeysightB2902A"),
    "keithley707b": _matrix(6, "Keithley707B"),
    "keithley708b": _matrix(1, "Keithley708B"),
}


def capability(model: str) -> ModelCapability:
    try:
        return MODELS[model]
    except KeyError:
        raise KeyError(f"unknown instrument model {model!r}; known: {', '.join(sorted(MODELS))}") from None
