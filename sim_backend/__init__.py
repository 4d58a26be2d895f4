"""Simulated magnetic device arrays and the bench around them (no hopbench imports)."""
from .array import DeviceArray
from .bench import SimulatedBench
from .circuit import Circuit, CircuitSolution, Source, solve
from .clock import VirtualClock
from .presets import DevicePreset, FilmPreset, PresetError, load_preset, preset_names
from .topology import Topology, crossbar, film
from .thinfilm import FilmArray

__all__ = [
    "Circuit",
    "CircuitSolution",
    "DeviceArray",
    "DevicePreset",
    "FilmArray",
    "FilmPreset",
    "PresetError",
    "SimulatedBench",
    "Source",
    "Topology",
    "VirtualClock",
    "crossbar",
    "film",
    "load_preset",
    "preset_names",
    "solve",
]
