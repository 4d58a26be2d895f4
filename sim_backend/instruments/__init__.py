"""Simulated instruments by model name: ``MODELS[model] -> SimInstrument subclass``.

Model names are those a bench file uses (``keithley2636b``, ``keysight_b2902a``,
``keithley707b``...). Each module registers the classes it defines through their
``model`` attribute; a family name (``keithley2600b``, ``keysight_b2900``) and the model
variants a module does not define as classes of their own map to the family's class.
"""
from __future__ import annotations

import importlib

from .base import Faults, SimInstrument

# module -> variants it serves, most capable first (the family name maps to the first)
_FAMILIES: dict[str, tuple[str, ...]] = {
    "keithley2450": ("keithley2450",),
    "keithley2400": ("keithley2400",),
    "keithley2600b": (
        "keithley2636b", "keithley2602b", "keithley2612b", "keithley2634b", "keithley2635b",
    ),
    "keysight_b2900": ("keysight_b2902a", "keysight_b2901a"),
    "keithley707b": ("keithley707b", "keithley708b"),
}


def _load() -> dict[str, type[SimInstrument]]:
    models: dict[str, type[SimInstrument]] = {}
    for module_name, variants in _FAMILIES.items():
        qualified = f"{__name__}.{module_name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise
            continue  # that model's simulator is not part of this build
        own = [
            obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, SimInstrument)
            and obj.__module__ == qualified and "model" in vars(obj)
        ]
        by_model = {cls.model: cls for cls in own}
        if not by_model:
            continue
        main = by_model.get(module_name) or next(
            (by_model[v] for v in variants if v in by_model), own[0]
        )
        models.update(by_model)
        models.setdefault(module_name, main)
        for variant in variants:
            models.setdefault(variant, main)
    return models


MODELS: dict[str, type[SimInstrument]] = _load()

__all__ = ["MODELS", "Faults", "SimInstrument"]
