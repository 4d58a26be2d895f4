"""What each instrument model can do, so a bench file cannot ask for more.

Values are the rated DC limits of the source ranges (datasheets); a bench's own limits
must fit inside them. Model names are the keys used in bench files, the drivers'
``MODELS`` table and the simulated twin.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class ModelCapability:
    kind: Literal["smu", "matrix"]
    v_max: float = 0.0  # V, largest |V| the source can output
    i_max: float = 0.0  # A, largest current limit it accepts
    channels: tuple[str, ...] = ()  # SMU channel ids as the driver names them
    max_cards: int = 0  # matrix: slots
    rows: str = ""  # matrix: row letters of one card
    columns: int = 0  # matrix: columns of one card
    nplc_range: tuple[float, float] = (0.01, 10.0)


_2600_DUAL = ("a", "b")

MODELS: dict[str, ModelCapability] = {
    "keithley2400": ModelCapability("smu", 210.0, 1.05, ("1",)),
    "keithley2450": ModelCapability("smu", 210.0, 1.05, ("1",)),
    "keithley2602b": ModelCapability("smu", 40.4, 3.03, _2600_DUAL, nplc_range=(0.001, 25.0)),
    "keithley2612b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=(0.001, 25.0)),
    "keithley2634b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=(0.001, 25.0)),
    "keithley2635b": ModelCapability("smu", 202.0, 1.515, ("a",), nplc_range=(0.001, 25.0)),
    "keithley2636b": ModelCapability("smu", 202.0, 1.515, _2600_DUAL, nplc_range=(0.001, 25.0)),
    "keysight_b2901a": ModelCapability("smu", 210.0, 3.03, ("1",)),
    "keysight_b2902a": ModelCapability("smu", 210.0, 3.03, ("1", "2")),
    "keithley707b": ModelCapability("matrix", max_cards=6, rows="ABCDEFGH", columns=12),
    "keithley708b": ModelCapability("matrix", max_cards=1, rows="ABCDEFGH", columns=12),
}


def capability(model: str) -> ModelCapability:
    try:
        return MODELS[model]
    except KeyError:
        raise KeyError(f"unknown instrument model {model!r}; known: {', '.join(sorted(MODELS))}") from None
