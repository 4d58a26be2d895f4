"""Bench files: shipped ones load, bad ones are rejected with the field named."""
from __future__ import annotations

import copy
import tomllib

import numpy as np
import pytest

import drivers

from lab.bench import twin_spec
from lab.config import load_bench, loads_bench, parse_bench
from lab.errors import ConfigError
from lab.models import MODELS
from sim_backend import crossbar, film
from lab.config import SHIPPED_BENCHES
from sim_backend.twin import build_twin

SHIPPED = ["sim-film35", "sim-crossbar35-sot", "707b-2x2636b", "707b-3x2450"]


def base() -> dict:
    return tomllib.loads((SHIPPED_BENCHES / "sim-film35.toml").read_text())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_benches_load_and_build_a_twin(name: str) -> None:
    cfg = load_bench(name)
    lay = cfg.layout
    assert set(lay.lines) == set(cfg.wiring.lines)
    assert len(set(lay.crosspoint.values())) == len(lay.crosspoint)  # no crosspoint twice
    twin = build_twin(twin_spec(cfg))
    assert set(twin.bench.buses) == set(cfg.buses)
    assert set(twin.bench.crosspoints) == set(lay.crosspoint.values())


def test_layout_matches_the_simulator_topology() -> None:
    for cfg, topo in [(load_bench("sim-film35"), film(35)), (load_bench("707b-3x2450"), crossbar(8, tied=True))]:
        lay = cfg.layout
        assert lay.lines == topo.line_names
        assert np.array_equal(lay.devices, topo.devices)
        assert np.array_equal(lay.device_cells, topo.device_cells)
        assert lay.neuron_lines == topo.neuron_lines


def test_default_bench_has_eight_buses_on_rows_a_to_h() -> None:
    cfg = load_bench("sim-film35")
    assert sorted(cfg.wiring.rows.values()) == list("ABCDEFGH")
    assert len(cfg.layout.by_role("sense")) == 5 and len(cfg.layout.by_role("drive")) == 2
    assert cfg.simulated and cfg.text.startswith("#")


def _set(d: dict, path: str, value) -> None:
    keys = path.split("/")
    for k in keys[:-1]:
        d = d[int(k)] if isinstance(d, list) else d[k]
    last = keys[-1]
    if value is _DEL:
        del d[last]
    elif isinstance(d, list):
        d[int(last)] = value
    else:
        d[last] = value


_DEL = object()

# (what is wrong, edits path -> value, field that the error must name, words in the message)
BAD = [
    ("unknown model", {"instruments/1/model": "keithley9999"}, "instruments[1](smu1).model", "unknown model"),
    ("negative timeout", {"instruments/1/timeout_ms": -5}, "instruments[1](smu1).timeout_ms", "greater than 0"),
    ("matrix without cards", {"instruments/0/cards": _DEL}, "instruments[0](matrix)", "cards"),
    ("too many cards", {"instruments/0/cards": 7}, "instruments[0](matrix)", "1..6"),
    ("SMU channel that does not exist", {"buses/sense0/channel": "c"}, "buses.sense0.channel", "no channel 'c'"),
    ("bus on a missing instrument", {"buses/sense0/instrument": "smu9"}, "buses.sense0.instrument", "smu9"),
    ("bus on the matrix", {"buses/sense0/instrument": "matrix"}, "buses.sense0.instrument", "not a source-meter"),
    ("two buses on one channel", {"buses/sense1/instrument": "smu2", "buses/sense1/channel": "b"},
     "buses.sense1.channel", "already backs"),
    ("compliance above the model", {"buses/guard/compliance_A": 5.0}, "buses.guard.compliance_A", "1.515"),
    ("bad role", {"buses/guard/role": "ground"}, "buses.guard.role", "drive"),
    ("v_max above the SMUs", {"limits/v_max_V": 500.0}, "limits.v_max_V", "202"),
    ("read ceiling above v_max", {"limits/v_read_max_V": 3.0}, "limits", "v_read_max_V"),
    ("read ceiling above threshold", {"limits/v_read_max_V": 0.35}, "limits", "v_threshold_V"),
    ("forbidden line unknown", {"limits/forbidden_lines": ["C99"]}, "limits.forbidden_lines[0]", "C99"),
    ("row letter beyond H", {"wiring/rows/sense4": "J"}, "wiring.rows.sense4", "rows A-H"),
    ("row used twice", {"wiring/rows/sense4": "A"}, "wiring.rows.sense4", "already joins"),
    ("column beyond 12", {"wiring/lines/C3": [1, 13]}, "wiring.lines.C3", "column 13"),
    ("slot not installed", {"wiring/lines/C3": [4, 1]}, "wiring.lines.C3", "slot 4"),
    ("crosspoint used twice", {"wiring/lines/C3": [1, 1]}, "wiring.lines.C3", "used twice"),
    ("line not wired", {"wiring/lines/C34": _DEL}, "wiring.lines", "C34"),
    ("wiring to a line that does not exist", {"wiring/lines/X1": [3, 12]}, "wiring.lines.X1", "no line"),
    ("bus not on any row", {"wiring/rows/sense4": _DEL}, "wiring.rows", "sense4"),
    ("matrix is an SMU", {"wiring/matrix": "smu1"}, "wiring.matrix", "not a switch matrix"),
    ("tied film", {"array/tied": True}, "array", "tied"),
    ("unknown key", {"limits/vmax": 1.0}, "limits.vmax", "Extra inputs"),
    ("nplc out of range", {"timing/nplc": 100.0}, "timing.nplc", "25"),
    ("no guard bus", {"buses/guard/role": "sense"}, "buses", "guard"),
    ("duplicate resource", {"instruments/2/resource": "TCPIP::192.168.10.21::5025::SOCKET"},
     "instruments.resource", "more than one"),
]


@pytest.mark.parametrize("what,edits,field,words", BAD, ids=[b[0] for b in BAD])
def test_bad_bench_is_rejected_naming_the_field(what: str, edits: dict, field: str, words: str) -> None:
    data = copy.deepcopy(base())
    for path, value in edits.items():
        _set(data, path, value)
    with pytest.raises(ConfigError) as info:
        parse_bench(data, "bad.toml")
    fields = [f for f, _ in info.value.problems]
    assert field in fields, f"{what}: {info.value}"
    msg = " ".join(m for f, m in info.value.problems if f == field)
    assert words in msg, f"{what}: {info.value}"
    assert "bad.toml" in str(info.value)


@pytest.mark.parametrize("model", sorted(drivers.MODELS))
def test_every_driver_model_has_a_capability_entry_matching_the_driver(model: str) -> None:
    cap = MODELS[model]
    assert cap.v_max > 0 and cap.i_max > 0, model
    entry: dict = {"name": "x", "model": model, "resource": "TCPIP::10.0.0.1::5025::SOCKET"}
    if cap.kind == "smu":
        entry["channels"] = {cap.channels[0]: "bus"}
        # the envelope: voltage up, current down, its first corner the largest current
        vs, is_ = zip(*cap.envelope)
        assert list(vs) == sorted(vs) and list(is_) == sorted(is_, reverse=True) and vs[-1] == cap.v_max
        assert cap.i_max_at(0.0) == cap.i_max and cap.i_max_at(cap.v_max) > 0 and cap.i_max_at(1e4) == 0
    else:
        entry.update(cards=1, crosspoints={})
    twin = build_twin({"topology": {"kind": "film", "n": 2}, "preset": "ideal", "instruments": [entry]})
    drv = drivers.open_instrument(model, entry["resource"], visa_library=twin.visa_library(),
                                  **({"cards": 1} if cap.kind == "matrix" else {}))
    try:
        if cap.kind == "smu":
            channels = drv.channels()
            assert tuple(channels) == cap.channels
            assert all(cap.v_max <= getattr(ch, "v_max", float("inf")) for ch in channels.values())
        else:
            assert callable(drv.open_all) and not hasattr(drv, "channels")
    finally:
        drv.adapter.close()


def test_toml_syntax_error_and_missing_file_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="<toml>"):
        loads_bench("name = ")
    with pytest.raises(ConfigError, match="no such bench file"):
        load_bench(tmp_path / "nope.toml")
