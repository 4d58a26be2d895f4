"""Device presets: every parameter of the simulated device array, validated when loaded.

A preset is a flat TOML file in ``data/presets``; units are in the field names. Loading
rejects unknown keys, negative widths, inverted bounds and probabilities outside [0, 1]
with an error that names the field.
"""
from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


NonNeg = Field(ge=0.0)


class PresetError(ValueError):
    """A preset could not be loaded; the message names the offending field(s)."""


class DevicePreset(BaseModel):
    """Parameters of one kind of magnetic device array (see data/presets/*.toml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = ""
    polarity: Literal["unipolar", "bipolar"]

    # read-out: G = g_max·(1 − a·x), a = 1 − g_min/g_max
    g_max_S: float = Field(gt=0.0)
    g_min_S: float = Field(gt=0.0)
    g_spread: float = NonNeg
    contrast_spread: float = NonNeg

    # drive: current density through a device and the domain-wall velocity it produces
    cross_section_m2: float = Field(gt=0.0)
    j_depin_A_per_m2: float = Field(gt=0.0)
    threshold_spread: float = NonNeg
    creep_onset: float = Field(gt=0.0, lt=1.0)
    creep_exponent: float = Field(gt=0.0, le=1.0)
    creep_barrier_K: float = NonNeg
    wall_velocity_depin_m_per_s: float = NonNeg
    flow_slope: float = NonNeg
    wall_length_m: float = Field(gt=0.0)
    rate_spread: float = NonNeg

    # heating
    ambient_K: float = Field(gt=0.0)
    self_heating_K_at_depin: float = NonNeg
    substrate_K_per_W: float = NonNeg

    # relaxation toward the rest texture (Néel–Arrhenius)
    relax_attempt_Hz: float = NonNeg
    relax_barrier_K: float = NonNeg
    rest_state: float = Field(ge=0.0, le=1.0)
    relax_drive_suppression: float = NonNeg

    # initial state
    initial_state: float = Field(ge=0.0, le=1.0)
    initial_state_spread: float = NonNeg

    # noise and defects
    cycle_noise: float = NonNeg
    read_noise_window: float = NonNeg
    stuck_probability: float = Field(ge=0.0, le=1.0)

    # operating point the preset is calibrated for
    read_voltage_V: float = Field(gt=0.0)
    train_voltage_V: float = Field(gt=0.0)
    train_pulse_width_s: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _bounds(self) -> "DevicePreset":
        if self.g_min_S >= self.g_max_S:
            raise ValueError(
                f"g_min_S ({self.g_min_S}) must be below g_max_S ({self.g_max_S})"
            )
        return self

    @property
    def contrast(self) -> float:
        """Nominal magnetoresistive contrast a = (G_max − G_min)/G_max."""
        return 1.0 - self.g_min_S / self.g_max_S

    @property
    def window_S(self) -> float:
        return self.g_max_S - self.g_min_S

    def with_changes(self, **changes: Any) -> "DevicePreset":
        """A validated copy with some fields replaced."""
        return _validate({**self.model_dump(), **changes}, self.name)


def _describe(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(preset)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"field '{field}': {msg}")
    return f"invalid device preset {origin}: " + "; ".join(parts)


def _validate(data: Mapping[str, Any], origin: str) -> DevicePreset:
    try:
        return DevicePreset.model_validate(dict(data))
    except ValidationError as err:
        raise PresetError(_describe(err, origin)) from None


# Shipped presets: sim_backend/data in the wheel (a link to the repository's data/presets).
PRESETS = Path(str(files("sim_backend") / "data"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def load_preset(
    source: str | Path | Mapping[str, Any] | DevicePreset,
    overrides: Mapping[str, Any] | None = None,
) -> DevicePreset:
    """Load a preset by name ("film-amr"), TOML path, or mapping; apply validated overrides."""
    if isinstance(source, DevicePreset):
        data, origin = source.model_dump(), repr(source.name)
    elif isinstance(source, Mapping):
        data, origin = dict(source), "(mapping)"
    else:
        path = Path(source)
        if path.suffix != ".toml" and not path.exists():
            path = PRESETS / f"{source}.toml"
            if not path.exists():
                raise PresetError(
                    f"unknown device preset {str(source)!r}; shipped presets: {', '.join(preset_names())}"
                )
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise PresetError(f"cannot read device preset {path}: {err}") from None
        data.setdefault("name", path.stem)
        origin = repr(str(path))
    if overrides:
        data.update(overrides)
    return _validate(data, origin)
