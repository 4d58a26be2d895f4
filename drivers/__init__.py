"""Instrument drivers on pymeasure, one module per model; nothing here imports lab or sim_backend.

``open_instrument(model, resource)`` opens a model by its bench-file name through pyvisa:
a real VISA library on a bench, or any pyvisa ``VisaLibraryBase`` instance (the simulated
bench's in-process library) in a dry run. Model names, datasheet limits and the driver of
each model are one table, :data:`drivers.capabilities.MODELS`; :data:`MODELS` here is the
driver class of each of its names.
"""
from __future__ import annotations

from typing import Any

from . import capabilities
from .errors import (  # noqa: F401 - re-exported
    BadReply,
    ComplianceTripped,
    ConnectionLost,
    InstrumentError,
    InstrumentReportedError,
    InstrumentTimeout,
    WrongLanguageMode,
)
from .keithley707b import Keithley707B, Keithley708B
from .keithley2400 import Keithley2400
from .keithley2450 import Keithley2450
from .keithley2600b import Keithley2600B, Keithley2602B, Keithley2612B, Keithley2634B, Keithley2635B, Keithley2636B
from .keysight_b2900 import KeysightB2901A, KeysightB2902A

_DRIVERS: dict[str, type] = {
    f"{cls.__module__}:{cls.__qualname__}": cls
    for cls in (
        Keithley2400, Keithley2450,
        Keithley2600B, Keithley2602B, Keithley2612B, Keithley2634B, Keithley2635B, Keithley2636B,
        KeysightB2901A, KeysightB2902A, Keithley707B, Keithley708B,
    )
}

# model name (as written in a bench file) -> driver class, as the capability table says
MODELS: dict[str, type] = {name: _DRIVERS[cap.driver] for name, cap in capabilities.MODELS.items()}


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
