"""The simulated source-meters on a real SimulatedBench, spoken to message by message.

One device (film of two contacts, ideal preset: no noise) sits between buses ``p`` and
``n``; whatever a simulated SMU sources on ``p`` must come back as Ohm's law, in the reply
format of the real model, with the real model's error codes.
"""
from __future__ import annotations

import pytest

from sim_backend import SimulatedBench, film
from sim_backend.instruments import MODELS
from sim_backend.instruments.keithley2400 import Keithley2400
from sim_backend.instruments.keithley2450 import Keithley2450
from sim_backend.instruments.keithley2600b import Keithley2600B, Keithley2635B
from sim_backend.instruments.keysight_b2900 import KeysightB2901A, KeysightB2902A


@pytest.fixture
def bench():
    b = SimulatedBench(film(2), "ideal", seed=7, buses=["p", "n"],
                       crosspoints={"1A01": ("p", "C0"), "1B02": ("n", "C1")}, contact_resistance_ohm=0.0)
    b.close(["1A01", "1B02"])
    b.set_compliance("n", 1e-3)
    b.set_output("n", True)  # the far contact held at 0 V
    return b


def ask(inst, message):
    r = inst.respond(message)
    assert r.action in ("reply", "silent"), r
    return r.data.decode().rstrip("\n") if r.action == "reply" else None


def errors(inst):
    out = []
    while inst.error_queue:
        out.append(inst.next_error()[0])
    return out


def g(bench):
    return float(bench.true_conductances()[0])


def test_registry_names_every_model():
    for model, cls in {
        "keithley2450": Keithley2450, "keithley2400": Keithley2400, "keithley2636b": Keithley2600B,
        "keithley2635b": Keithley2635B, "keysight_b2902a": KeysightB2902A, "keysight_b2901a": KeysightB2901A,
        "keithley2600b": Keithley2600B, "keysight_b2900": KeysightB2902A,
    }.items():
        assert MODELS[model] is cls


def test_channels_must_exist_on_the_model(bench):
    with pytest.raises(ValueError, match="channels"):
        Keithley2635B("x", bench, {"b": "p"})
    with pytest.raises(ValueError, match="channels"):
        Keithley2450("x", bench, {"2": "p"})


# -- 2450 -------------------------------------------------------------------------------------
def test_2450_reads_ohms_law_and_integrates_on_the_virtual_clock(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    assert ask(k, "*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
    assert ask(k, "*LANG?") == "SCPI"
    ask(k, ":SOUR:FUNC VOLT;:SOUR:VOLT:ILIM 1e-3;:SOUR:VOLT 0.05;:SENS:CURR:NPLC 2;:OUTP ON")
    assert ask(k, ":OUTP?") == "1" and ask(k, ":SOUR:VOLT?") == "+5.000000E-02"
    t0 = bench.clock.now
    v, i = map(float, ask(k, ':READ? "defbuffer1",SOUR,READ').split(","))
    assert bench.clock.now - t0 == pytest.approx(2 / 50)
    assert v == pytest.approx(0.05) and i == pytest.approx(0.05 * g(bench), rel=1e-5)
    assert ask(k, ":SOUR:VOLT:ILIM:TRIP?") == "0"
    assert errors(k) == []


def test_2450_clamps_at_its_limit_and_says_so(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    ask(k, ":SOUR:VOLT:ILIM 1e-6;:SOUR:VOLT 1;:OUTP 1")
    v, i = map(float, ask(k, ':READ? "defbuffer1",SOUR,READ').split(","))
    assert i == pytest.approx(1e-6, rel=1e-6) and v < 1.0
    assert ask(k, ":SOUR:VOLT:ILIM:TRIP?") == "1"


def test_2450_errors_and_reset(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    assert ask(k, ":SOUR:VOLT:FOO 1") is None
    assert ask(k, ":SOUR:VOLT 500") is None
    ask(k, ":SOUR:VOLT:RANG 2")
    assert ask(k, ":SOUR:VOLT 5") is None  # beyond the fixed 2 V range
    assert errors(k) == [-113, -222, -222]
    ask(k, ":SOUR:VOLT:ILIM 1e-3;:OUTP 1")
    assert bench.bus_state("p")["output"] is True
    ask(k, "*RST")
    assert bench.bus_state("p")["output"] is False and ask(k, ":SOUR:VOLT:RANG:AUTO?") == "1"
    assert ask(k, ":SYST:ERR?") == '0,"No error"'


def test_2450_in_tsp_mode_answers_lang_only(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    k.language = "TSP"
    assert ask(k, "*LANG?") == "TSP"
    assert ask(k, ":OUTP?") is None
    assert errors(k) == [-285]


# -- 2400 -------------------------------------------------------------------------------------
def test_2400_read_needs_the_output_and_returns_five_elements(bench):
    k = Keithley2400("k", bench, {"1": "p"})
    ask(k, ":SOURCE:FUNCTION VOLT;:SENSE:CURRENT:PROTECTION 1e-3;:SOURCE:VOLTAGE 0.05")
    assert ask(k, ":READ?") is None and errors(k) == [803]
    ask(k, "OUTPUT 1")
    fields = ask(k, ":READ?").split(",")
    assert len(fields) == 5 and all(f[0] in "+-" and "E" in f for f in fields)
    v, i, r, t, status = map(float, fields)
    assert v == pytest.approx(0.05) and i == pytest.approx(0.05 * g(bench), rel=1e-5)
    assert r == 9.91e37 and t == pytest.approx(bench.clock.now) and int(status) & 8 == 0
    ask(k, ":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS;:SENSE:RESISTANCE:MODE MAN;:SENSE:FUNCTION:ALL")
    assert float(ask(k, ":READ?").split(",")[2]) == pytest.approx(1 / g(bench), rel=1e-5)
    ask(k, ":FORM:ELEM CURR")
    assert len(ask(k, ":READ?").split(",")) == 1


def test_2400_compliance_bits_and_measure_turns_output_on(bench):
    k = Keithley2400("k", bench, {"1": "p"})
    ask(k, ":SENS:CURR:PROT 1e-6;:SOUR:VOLT 1")
    fields = ask(k, ":MEAS:CURR?").split(",")  # :MEAS? = :CONF + :READ?: the output goes on
    assert bench.bus_state("p")["output"] is True and ask(k, "OUTPUT?") == "1"
    assert int(float(fields[4])) & 8 and ask(k, ":SENS:CURR:PROT:TRIP?") == "1"
    ask(k, ":SENS:CURR:RANG 1e-6")
    assert int(float(ask(k, ":READ?").split(",")[4])) & (1 << 16) == 0  # limit = range: real compliance


# -- 2600B ------------------------------------------------------------------------------------
def test_2600b_tsp_reads_and_prints_like_the_real_one(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    assert ask(k, "print(smua.source.func)") == "1.00000e+00"
    ask(k, "smua.source.func = smua.OUTPUT_DCVOLTS smua.source.limiti = 1e-3 smua.source.levelv = 0.05")
    ask(k, "smua.measure.nplc = 0.5 smua.source.output = smua.OUTPUT_ON")
    t0 = bench.clock.now
    v, i, comp = ask(k, "local i, v = smua.measure.iv() print(v, i, smua.source.compliance)").split("\t")
    assert bench.clock.now - t0 == pytest.approx(0.5 / 50)
    assert v == "5.00000e-02" and float(i) == pytest.approx(0.05 * g(bench), rel=1e-5) and comp == "false"
    assert ask(k, "print(smub.source.output, smua.source.output)") == "0.00000e+00\t1.00000e+00"
    assert ask(k, "print(errorqueue.next())") == "0.00000e+00\tQueue Is Empty\t0.00000e+00\t0.00000e+00"


def test_2600b_pulse_chunk_advances_the_clock_by_its_delay(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    ask(k, "smua.source.limiti = 1e-6 smua.source.output = 1")
    t0 = bench.clock.now
    assert ask(k, "smua.source.levelv = 1 delay(0.002) local c = smua.source.compliance "
                  "smua.source.levelv = 0 print(c)") == "true"
    assert bench.clock.now - t0 == pytest.approx(0.002)
    assert bench.bus_state("p")["level"] == 0.0
    assert ask(k, "print(smua.source.compliance)") == "false"


@pytest.mark.parametrize("chunk, code", [
    ("smua.source.levelv = = 1", -285),
    ("smua.source.levelv = 1 print(", -285),
    ("smua.foo.bar = 1", -286),
    ("smuc.source.output = 1", -286),
    ("print(smua.measure.x())", -286),
    ("smua.source.levelv = 500", -222),
    ("smua.source.compliance = true", -286),
])
def test_2600b_errors(bench, chunk, code):
    k = Keithley2600B("k", bench, {"a": "p"})
    assert ask(k, chunk) is None
    assert int(float(ask(k, "print(errorqueue.count)"))) == 1
    assert ask(k, "print(errorqueue.next())").split("\t")[0] == f"{code:.5e}"


def test_2600b_syntax_error_runs_nothing(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    ask(k, "smua.source.levelv = 1 smua.source.levelv = = 2")
    assert ask(k, "print(smua.source.levelv)") == "0.00000e+00"


def test_2635b_has_one_channel(bench):
    k = Keithley2635B("k", bench, {"a": "p"})
    assert ask(k, "print(smub)") == "nil"
    assert ask(k, "smub.source.output = 1") is None and errors(k) == [-286]


# -- B2900 ------------------------------------------------------------------------------------
def test_b2900_channels_by_suffix_and_list(bench):
    k = KeysightB2902A("k", bench, {"1": "p"})  # channel 2 is wired to nothing
    ask(k, ":SOUR1:FUNC:MODE VOLT;:SENS1:CURR:PROT 1e-3;:SOUR1:VOLT 0.05;:OUTP1:ON:AUTO 0")
    ask(k, ":FORM:ELEM:SENS VOLT,CURR;:SOUR2:VOLT 0.3;:SENS2:CURR:PROT 1e-3")
    assert ask(k, ":MEAS? (@1)") == "+0.000000E+00,+0.000000E+00"  # auto-on off: output stays off
    assert ask(k, ":OUTP1?") == "0"
    ask(k, ":OUTP1 ON")
    v, i = map(float, ask(k, ":MEAS? (@1)").split(","))
    assert v == pytest.approx(0.05) and i == pytest.approx(0.05 * g(bench), rel=1e-5)
    fields = ask(k, ":MEAS? (@1,2)").split(",")
    assert len(fields) == 4 and float(fields[2]) == pytest.approx(0.3) and float(fields[3]) == 0.0
    assert ask(k, ":OUTP2?") == "1"  # reset default :OUTP2:ON:AUTO ON turned it on
    assert ask(k, ":SENS1:CURR:PROT:TRIP?") == "0"
    assert ask(k, ":SOUR3:VOLT 1") is None and ask(k, ":MEAS? (@3)") is None
    assert errors(k) == [-114, -224]
    assert ask(k, ":SYST:ERR?") == '+0,"No error"'


def test_b2901a_has_one_channel(bench):
    k = KeysightB2901A("k", bench, {"1": "p"})
    assert ask(k, ":OUTP2?") is None and errors(k) == [-114]


# -- faults -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, chan, setup, trip", [
    (Keithley2450, "1", ":SOUR:VOLT:ILIM 1e-3;:OUTP 1", ":SOUR:VOLT:ILIM:TRIP?"),
    (Keithley2400, "1", ":SENS:CURR:PROT 1e-3;:OUTP 1", ":SENS:CURR:PROT:TRIP?"),
    (KeysightB2902A, "1", ":SENS1:CURR:PROT 1e-3;:OUTP1 1", ":SENS1:CURR:PROT:TRIP?"),
])
def test_compliance_fault_is_reported_the_model_s_way(bench, cls, chan, setup, trip):
    k = cls("k", bench, {chan: "p"})
    ask(k, setup)
    assert ask(k, trip) == "0"
    k.faults.compliance = True
    assert ask(k, trip) == "1"
    k.faults.clear()
    assert ask(k, trip) == "0"


def test_compliance_fault_on_tsp(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    k.faults.compliance = True
    assert ask(k, "local i, v = smua.measure.iv() print(v, i, smua.source.compliance)").endswith("true")
