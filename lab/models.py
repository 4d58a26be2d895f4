"""What each instrument model can do, so a bench file cannot ask for more.

Values are the rated DC limits of the source ranges (datasheets); a bench's own limits
must fit inside them. Model names are the keys used in bench files, the drivers'
``MODELS`` table and the simulated twin; every driver model has an entry here (tested).

A source-meter's largest current is only available on its low-voltage ranges: ``envelope``
lists the DC (|V| up to, |I| up to) corners of its source ranges, and :meth:`i_max_at`
gives the largest current it can hold at a voltage. A matrix's ``v_max``/``i_max`` are the
signal and carry ratings of its relays (we switch cold, so the switched rating never
applies).

Sources (manufacturers' datasheets and manuals, DC, not pulsed):
- 2400 and 2450: ±21 V at 1.05 A, ±210 V at 105 mA.
- 2600B, 200 V class (2612B, 2634B, 2635B, 2636B): ±20 V at 1.5 A, ±200 V at 100 mA, 1 %
  over-range (202 V, 1.515 A); 10 A only pulsed.
- 2602B (and 2601B), 40 V class: ±6 V at 3 A, ±40 V at 1 A, with over-range.
- B2901A/B2902A: ±6 V at 3.03 A, ±21 V at 1.515 A, ±210 V at 105 mA (10.5 A only pulsed);
  the two channels of a B2902A share 4 A (≤ 6 V) or 2.5 A (≤ 21 V) between them, so the
  conservative per-channel current is 1.515 A.
- 707B/708B with 7174A-class cards: 200 V signal, 1 A carry (conservative; check the card fitted).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelCapability:
    kind: Literal["smu", "matrix"]
    v_max: float = 0.0  # V, largest |V| the source can output (matrix: relay signal rating)
    i_max: float = 0.0  # A, largest current limit it accepts (matrix: relay carry rating)
    channels: tuple[str, ...] = ()  # SMU channel ids as the driver names them
    max_cards: int = 0  # matrix: slots
    rows: str = ""  # matrix: row letters of one card
    columns: int = 0  # matrix: columns of one card
    nplc_range: tuple[float, float] = (0.01, 10.0)
    envelope: tuple[tuple[float, float], ...] = ()  # SMU: DC (|V| up to, |I| up to), ascending V

    def i_max_at(self, volts: float) -> float:
        """Largest DC current at ``|volts|`` (``i_max`` where no envelope is known)."""
        for v_top, i_top in self.envelope:
            if abs(volts) <= v_top:
                return min(i_top, self.i_max)
        return self.i_max if not self.envelope else 0.0


_2600_DUAL = ("a", "b")
_2400 = ((21.0, 1.05), (210.0, 0.105))
_2600_200V = ((20.2, 1.515), (202.0, 0.101))
_2600_40V = ((6.06, 3.03), (40.4, 1.01))
_B2900 = ((6.0, 3.03), (21.0, 1.515), (210.0, 0.105))
_TSP_NPLC = (0.001, 25.0)

MODELS: dict[str, ModelCapability] = {
    "keithley2400": ModelCapability("smu", 210.0, 1.05, ("1",), envelope=_2400),
    "keithley2450": ModelCapability("smu", 210.0, 1.05, ("1",), envelope=_2400),
    # the generic 2600B driver is the dual-channel 200 V class
    "keithley2600b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=_TSP_NPLC, envelope=_2600_200V),
    "keithley2602b": ModelCapability("smu", 40.4, 3.03, _2600_DUAL, nplc_range=_TSP_NPLC, envelope=_2600_40V),
    "keithley2612b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=_TSP_NPLC, envelope=_2600_200V),
    "keithley2634b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=_TSP_NPLC, envelope=_2600_200V),
    "keithley2635b": ModelCapability("smu", 202.0, 1.515, ("a",), nplc_range=_TSP_NPLC, envelope=_2600_200V),
    "keithley2636b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=_TSP_NPLC, envelope=_2600_200V),
    # the generic B2900 driver is the two-channel B2902A
    "keysight_b2900": ModelCapability("smu", 210.0, 1.515, ("1", "2"), envelope=_B2900),
    "keysight_b2901a": ModelCapability("smu", 210.0, 1.515, ("1",), envelope=_B2900),
    "keysight_b2902a": ModelCapability("smu", 210.0, 1.515, ("1", "2"), envelope=_B2900),
    "keithley707b": ModelCapability("matrix", 200.0, 1.0, max_cards=6, rows="ABCDEFGH", columns=12),
    "keithley708b": ModelCapability("matrix", 200.0, 1.0, max_cards=1, rows="ABCDEFGH", columns=12),
}


def capability(model: str) -> ModelCapability:
    try:
        return MODELS[model]
    except KeyError:
        raise KeyError(f"unknown instrument model {model!r}; known: {', '.join(sorted(MODELS))}") from None
