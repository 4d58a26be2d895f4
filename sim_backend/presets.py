"""Device presets: every parameter of the simulated device array, validated when loaded.

A preset is a flat TOML file in ``data/presets``; units are in the field names. Loading
rejects unknown keys, negative widths, inverted bounds and probabilities outside [0, 1]
with an error that names the field.

Two models: :class:`DevicePreset` (pair devices: crossbars, and the fast pair abstraction
of a film) and :class:`FilmPreset` (the continuous film, ``model = "film"`` in its file).
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


class FilmPreset(BaseModel):
    """The continuous magnetic film (:mod:`sim_backend.film`): parameters with units and the
    literature range each default was taken from (see also data/presets/film-continuous.toml).

    Material (Ni80Fe20 thin film):
      resistivity_perp_ohm_m  ρ⊥ at T0, 2.0e-7–3.0e-7 Ω·m (20–30 µΩ·cm in thin films)
      amr_ratio               (ρ∥ − ρ⊥)/ρ⊥ at T0, 0.02–0.03 (up to ~0.05 in bulk/thick films)
      tcr_per_K               temperature coefficient of ρ, ≈ 3e-3 /K
      curie_K                 Curie point, 850–870 K: AMR and the texture's barrier vanish there
      thickness_m             film thickness, 5–50 nm
    Thermal:
      heat_capacity_J_per_m3_K       c·ρ_m of Py ≈ 3.7e6 J/m³/K
      thermal_conductivity_W_per_m_K in-plane κ of a Py film, 20–40 W/m/K
      substrate_K_per_W       film-to-substrate thermal resistance of the whole film: a heated
                              disc of radius a on a half-space has ≈ 1/(2κa); a = 25 µm on
                              Si (κ ≈ 150 W/m/K) gives ~130 K/W, with a 100 nm SiO2 layer a
                              few 100 K/W; mm-size on Si ~10 K/W, on glass ~10³ K/W
      substrate_spreading_W_per_K  lateral heat spreading in the substrate under the film,
                              lumped as a sheet of conductance κ_sub·d (Si: 150 W/m/K × a
                              spreading depth of a few µm ≈ 1e-3 W/K): a µm hot spot at a
                              contact edge is cooled through the substrate around it, as the
                              3-D spreading resistance 1/(2κa) of a small source says
    Texture (cell order tensor Q = ⟨m mᵀ⟩ of the cell's domains; rest: multidomain, Q = I/2):
      j_depin_A_per_m2        depinning current density, 1e11–1e12 A/m² (Py, STT)
      creep_exponent          μ of the current-driven creep law: 1/3 (Yamanouchi et al.,
                              Science 317, 1726 (2007); DuttaGupta et al., Nat. Phys. 12, 333
                              (2016): adiabatic STT creep is a different universality class
                              from field-driven creep, μ = 1/4)
      creep_barrier_K         pinning energy T_d of the creep law, K (fit parameter)
      order_rate_at_depin_Hz  rate at which a cell's order tensor turns toward the current
                              direction at j = j_d: an EFFECTIVE rate (v_d/ℓ with ℓ a texture
                              length), chosen for the operating point, not derived from STT
                              wall speeds (m/s in Py would be far faster over µm cells)
      relax_attempt_Hz, relax_barrier_K  Néel–Arrhenius relaxation toward rest; the barrier
                              scales with Ms(T)² and vanishes at T_C
    Disorder: correlated Gaussian fields (correlation length a few µm, grain clusters /
      thickness variation), a few % in ρ and in j_d; stuck regions; read noise per read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    description: str = ""
    model: Literal["film"]

    # mesh and geometry
    cells_per_side: int = Field(48, ge=4, le=1024)
    side_m: float = Field(gt=0.0)
    thickness_m: float = Field(gt=0.0)
    contact_width_fraction: float = Field(gt=0.0, lt=1.0)  # electrode width / contact pitch
    contact_offset_fraction: float = Field(0.0, ge=0.0, lt=1.0)  # shift of the contacts along the perimeter, in pitches

    # material
    resistivity_perp_ohm_m: float = Field(gt=0.0)
    amr_ratio: float = Field(ge=0.0, lt=0.2)
    tcr_per_K: float = NonNeg
    curie_K: float = Field(gt=0.0)
    ambient_K: float = Field(gt=0.0)

    # heat
    heat_capacity_J_per_m3_K: float = Field(gt=0.0)
    thermal_conductivity_W_per_m_K: float = NonNeg
    substrate_K_per_W: float = Field(gt=0.0)
    substrate_spreading_W_per_K: float = NonNeg

    # texture dynamics
    j_depin_A_per_m2: float = Field(gt=0.0)
    creep_onset: float = Field(gt=0.0, lt=1.0)
    creep_exponent: float = Field(gt=0.0, le=1.0)
    creep_barrier_K: float = NonNeg
    order_rate_at_depin_Hz: float = NonNeg
    flow_slope: float = NonNeg
    relax_attempt_Hz: float = NonNeg
    relax_barrier_K: float = NonNeg
    rest_order: float = Field(0.0, ge=0.0, le=1.0)  # |q| of the rest texture (0: isotropic multidomain)
    initial_order: float = Field(0.0, ge=0.0, le=1.0)

    # disorder and noise
    disorder_correlation_m: float = NonNeg
    resistivity_disorder: float = Field(ge=0.0, lt=0.5)
    pinning_disorder: float = Field(ge=0.0, lt=0.5)
    stuck_fraction: float = Field(ge=0.0, le=1.0)
    cycle_noise: float = NonNeg
    read_noise_rel: float = NonNeg

    # operating point the preset is calibrated for
    read_voltage_V: float = Field(gt=0.0)
    train_voltage_V: float = Field(gt=0.0)
    train_pulse_width_s: float = Field(gt=0.0)

    @model_validator(mode="after")
    def _temperatures(self) -> "FilmPreset":
        if self.curie_K <= self.ambient_K:
            raise ValueError(f"curie_K ({self.curie_K}) must be above ambient_K ({self.ambient_K})")
        return self

    @property
    def cell_m(self) -> float:
        return self.side_m / self.cells_per_side

    def with_changes(self, **changes: Any) -> "FilmPreset":
        """A validated copy with some fields replaced."""
        return _validate({**self.model_dump(), **changes}, self.name)  # type: ignore[return-value]


AnyPreset = DevicePreset | FilmPreset


def _describe(err: ValidationError, origin: str) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(preset)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        parts.append(f"field '{field}': {msg}")
    return f"invalid device preset {origin}: " + "; ".join(parts)


def _validate(data: Mapping[str, Any], origin: str) -> AnyPreset:
    cls = FilmPreset if data.get("model") == "film" else DevicePreset
    try:
        return cls.model_validate(dict(data))
    except ValidationError as err:
        raise PresetError(_describe(err, origin)) from None


# Shipped presets: sim_backend/data in the wheel (a link to the repository's data/presets).
PRESETS = Path(str(files("sim_backend") / "data"))


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.toml"))


def load_preset(
    source: str | Path | Mapping[str, Any] | AnyPreset,
    overrides: Mapping[str, Any] | None = None,
) -> AnyPreset:
    """Load a preset by name ("film-continuous"), TOML path, or mapping; apply validated
    overrides. Returns a :class:`FilmPreset` for ``model = "film"``, else a :class:`DevicePreset`."""
    if isinstance(source, (DevicePreset, FilmPreset)):
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
