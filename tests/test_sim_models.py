"""The simulator's model registry and limits: the same names as the drivers' table, datasheet
defaults that agree with it, and limits given by whoever builds the twin taking their place."""
from __future__ import annotations

import pytest

from drivers.capabilities import MODELS as CAPABILITIES
from sim_backend import SimulatedBench, film
from sim_backend.instruments import MODELS, create
from sim_backend.instruments.keithley707b import Keithley707B
from sim_backend.twin import TwinSpecError, build_twin


def test_the_simulator_knows_exactly_the_driver_models():
    assert sorted(MODELS) == sorted(CAPABILITIES)


@pytest.mark.parametrize("model", sorted(CAPABILITIES))
def test_datasheet_defaults_agree_with_the_driver_table(model):
    cap, cls = CAPABILITIES[model], MODELS[model]
    if cap.kind == "matrix":
        assert cls.max_cards == cap.max_cards
        return
    r = cls.ratings
    assert (r.v_max, r.i_max, (r.nplc_min, r.nplc_max)) == (cap.v_max, cap.i_limit_max, cap.nplc_range)
    assert cls.channel_ids == cap.channels


@pytest.fixture
def bench():
    return SimulatedBench(film(2), "ideal", seed=1, buses=["p"], crosspoints={})


def ask(inst, message):
    r = inst.respond(message)
    return r.data.decode().rstrip("\n") if r.action == "reply" else None


@pytest.mark.parametrize("model, set_level, set_limit", [
    ("keithley2450", ":SOUR:VOLT {}", ":SOUR:VOLT:ILIM {}"),
    ("keithley2400", ":SOUR:VOLT {}", ":SENS:CURR:PROT {}"),
    ("keysight_b2902a", ":SOUR1:VOLT {}", ":SENS1:CURR:PROT {}"),
    ("keithley2636b", "smua.source.levelv = {}", "smua.source.limiti = {}"),
])
def test_given_limits_replace_the_defaults(bench, model, set_level, set_limit):
    channel = CAPABILITIES[model].channels[0]
    default = create(model, "d", bench, channels={channel: "p"})
    limited = create(model, "l", bench, channels={channel: "p"}, limits={"v_max": 5.0, "i_max": 0.01})
    for message in (set_level.format(6), set_limit.format(0.02)):
        assert ask(default, message) is None and not default.error_queue
        assert ask(limited, message) is None
        assert limited.next_error()[0] == -222
    assert ask(limited, set_level.format(4.5)) is None and not limited.error_queue


def test_matrix_limits_and_bad_limits(bench):
    assert create("keithley707b", "m", bench, limits={"max_cards": 2}).cards == 2
    with pytest.raises(ValueError, match="1..2"):
        Keithley707B("m", bench, cards=3, limits={"max_cards": 2})
    with pytest.raises(ValueError, match="unknown limits"):
        create("keithley2450", "k", bench, channels={"1": "p"}, limits={"volts": 5})
    with pytest.raises(ValueError, match="unknown simulated model"):
        create("keithley9999", "k", bench)


def test_twin_spec_carries_limits_to_its_instruments():
    entry = {"name": "smu", "model": "keithley2636b", "resource": "TCPIP::10.0.0.1::5025::SOCKET",
             "channels": {"a": "p"}, "limits": {"v_max": 10.0, "i_max": 0.1, "nplc_min": 0.01, "nplc_max": 10.0}}
    spec = {"topology": {"kind": "film", "n": 2}, "preset": "ideal", "instruments": [entry]}
    smu = build_twin(spec).instruments["smu"]
    assert (smu.ratings.v_max, smu.ratings.i_max, smu.ratings.nplc_max) == (10.0, 0.1, 10.0)
    assert smu.ratings.voltage_ranges == MODELS["keithley2636b"].ratings.voltage_ranges
    with pytest.raises(TwinSpecError, match=r"instruments\[0\] \(smu\): keithley2636b: unknown limits"):
        build_twin({**spec, "instruments": [{**entry, "limits": {"amps": 1}}]})
    with pytest.raises(TwinSpecError, match=r"instruments\[0\] \(smu\)\.limits must be a table"):
        build_twin({**spec, "instruments": [{**entry, "limits": 5}]})
