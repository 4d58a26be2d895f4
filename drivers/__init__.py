"""Instrument drivers on pymeasure, one module per model; nothing here imports lab or sim_backend.

``open_instrument(model, resource)`` opens a model by its bench-file name through pyvisa:
a real VISA library on a bench, or any pyvisa ``VisaLibraryBase`` instance (the simulated
bench's in-process library) in a dry run.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import (  # noqa: F401 - re-exported
    BadReply,
    ComplianceTripped,
    ConnectionLost,
    InstrumentError,
    InstrumentReportedError,
    InstrumentTimeout,
    WrongLanguageMode,
)

# model name (as written in a bench file) -> "module:Class"
_MODEL_PATHS: dict[str, str] = {
    "keithley2400": "drivers.keithley2400:Keithley2400",
    "keithley2450": "drivers.keithley2450:Keithley2450",
    "keithley2600b": "drivers.keithley2600b:Keithley2600B",
    "keithley2602b": "drivers.keithley2600b:Keithley2602B",
    "keithley2612b": "drivers.keithley2600b:Keithley2612B",
    "keithley2634b": "drivers.keithley2600b:Keithley2634B",
    "keithley2635b": "drivers.keithley2600b:Keithley2635B",
    "keithley2636b": "drivers.keithley2600b:Keithley2636B",
    "keysight_b2900": "drivers.keysight_b2900:KeysightB2902A",
    "keysight_b2901a": "drivers.keysight_b2900:KeysightB2901A",
    "keysight_b2902a": "drivers.keysight_b2900:KeysightB2902A",
    "keithley707b": "drivers.keithley707b:Keithley707B",
    "keithley708b": "drivers.keithley707b:Keithley708B",
}


def _load(path: str) -> type | None:
    module, _, cls = path.partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:  # that driver is not in this tree (yet)
            return None
        raise
    return getattr(mod, cls, None)


def _models() -> dict[str, type]:
    out = {}
    for name, path in _MODEL_PATHS.items():
        cls = _load(path)
        if cls is not None:
            out[name] = cls
    return out


MODELS: dict[str, type] = _models()


def open_instrument(model: str, resource: str, visa_library: Any = None, **kwargs: Any) -> Any:
    """Open ``model`` at ``resource`` (a VISA resource string).

    ``visa_library``: None (pyvisa's default), ``"@py"`` (pyvisa-py), or a pyvisa
    ``VisaLibraryBase`` instance. Other keyword arguments go to the driver (``name``) and to
    pyvisa (``timeout`` in ms, ``read_termination``, ``baud_rate`` ...). Opening never
    changes an output.
    """
    try:
        cls = MODELS[model]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ValueError(f"unknown instrument model {model!r}; known models: {known}") from None
    if visa_library is not None:
        kwargs["visa_library"] = visa_library
    return cls(resource, **kwargs)
