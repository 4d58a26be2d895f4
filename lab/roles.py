"""Instrument roles: what protocols and the crossbar layer may ask of an instrument.

Drivers fill these structurally (they never import this module), so a driver stays
usable outside hopbench. Protocols never name a model; the bench file decides which
model plays which role.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Protocol, runtime_checkable


@dataclass(frozen=True)
class Reading:
    """One source-meter reading."""

    voltage: float  # V, at the output terminals
    current: float  # A, positive = out of the HI terminal
    compliance: bool  # the source was clamped at its current limit


@runtime_checkable
class SourceMeterChannel(Protocol):
    """One source-meter channel sourcing voltage and measuring current."""

    name: str

    def set_voltage(self, volts: float) -> None: ...
    def set_current_limit(self, amps: float) -> None: ...
    def set_voltage_range(self, volts: float | None) -> None: ...  # None = auto
    def set_current_range(self, amps: float | None) -> None: ...  # None = auto
    def set_nplc(self, nplc: float) -> None: ...
    def set_output(self, on: bool) -> None: ...
    def output_enabled(self) -> bool: ...
    def measure(self) -> Reading: ...
    def measure_current(self) -> float: ...
    def measure_voltage(self) -> float: ...
    def pulse(self, volts: float, width_s: float) -> None: ...


@runtime_checkable
class SwitchMatrix(Protocol):
    """A relay matrix; crosspoints are named as the instrument names them (e.g. '1A01'), or, for
    several mainframes on shared rows (lab.matrices.MatrixGroup), '<mainframe>:<channel>'."""

    settling_time_s: float

    def close(self, channels: Iterable[str]) -> None: ...
    def open(self, channels: Iterable[str]) -> None: ...
    def open_all(self) -> None: ...
    def closed(self) -> set[str]: ...
