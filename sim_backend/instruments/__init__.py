"""Simulated instruments by model name: ``MODELS[model] -> SimInstrument subclass``.

Model names are those a bench file uses (``keithley2636b``, ``keysight_b2902a``,
``keithley707b``...), the same names as the drivers' capability table; each class names
its own ``model``, and a family name (``keithley2600b``, ``keysight_b2900``) maps to the
family's most capable model.

What a model can do defaults to its datasheet values (each class's ``ratings``, a matrix's
``max_cards``); whoever builds an instrument may pass ``limits`` instead, a plain mapping
(source-meters: ``v_max``, ``i_max``, ``nplc_min``, ``nplc_max`` or any other
:class:`~sim_backend.instruments.smu_common.SmuRatings` field; matrices: ``max_cards``).
:func:`create` builds one by model name.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import Faults, SimInstrument
from .keithley707b import Keithley707B, Keithley708B
from .keithley2400 import Keithley2400
from .keithley2450 import Keithley2450
from .keithley2600b import Keithley2600B, Keithley2602B, Keithley2612B, Keithley2634B, Keithley2635B
from .keysight_b2900 import KeysightB2901A, KeysightB2902A

_CLASSES: tuple[type[SimInstrument], ...] = (
    Keithley2400, Keithley2450,
    Keithley2600B, Keithley2602B, Keithley2612B, Keithley2634B, Keithley2635B,
    KeysightB2902A, KeysightB2901A,
    Keithley707B, Keithley708B,
)
_FAMILIES: dict[str, type[SimInstrument]] = {"keithley2600b": Keithley2600B, "keysight_b2900": KeysightB2902A}

MODELS: dict[str, type[SimInstrument]] = {**{cls.model: cls for cls in _CLASSES}, **_FAMILIES}


def create(model: str, name: str, bench: Any, *, limits: Mapping[str, Any] | None = None,
           **kwargs: Any) -> SimInstrument:
    """A simulated ``model`` named ``name`` on ``bench``; ``limits`` replace its datasheet defaults.

    Other keyword arguments go to the class (``channels`` for source-meters; ``cards``,
    ``settling_time_s`` for matrices).
    """
    try:
        cls = MODELS[model]
    except KeyError:
        raise ValueError(f"unknown simulated model {model!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls(name, bench, limits=limits, **kwargs)


__all__ = ["MODELS", "Faults", "SimInstrument", "create"]
