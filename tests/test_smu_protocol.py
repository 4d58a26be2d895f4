"""Byte-exact command tests of the source-meter drivers (pymeasure expected_protocol).

Every role method each driver offers is pinned here to the exact messages it sends and the
replies it parses, including the one-time channel preparation on first use, the error-queue
check after each setting and what an unparsable or alarming reply turns into.
"""
from __future__ import annotations

import pytest
from pymeasure.test import expected_protocol

from drivers.capabilities import capability
from drivers.errors import (
    BadReply,
    ComplianceTripped,
    InstrumentError,
    InstrumentReportedError,
    WrongLanguageMode,
)
from drivers.keithley2400 import Keithley2400
from drivers.keithley2450 import Keithley2450
from drivers.keithley2600b import Keithley2602B, Keithley2635B, Keithley2636B
from drivers.keysight_b2900 import KeysightB2901A, KeysightB2902A
from drivers.smu_common import Reading

NO_SLEEP: list[float] = []


def _no_sleep(inst):
    inst.sleep = NO_SLEEP.append  # pulses record their width instead of waiting
    return inst


# -- Keithley 2450 (native SCPI) ---------------------------------------------------------
K2450_OK = (":SYST:ERR?", '0,"No error"')
K2450_CONNECT = [("*LANG?", "SCPI")]
K2450_PREPARE = [(":SOUR:FUNC?", "VOLT"), (':SENS:FUNC "CURR"', None), K2450_OK, (":OUTP?", "0")]


def test_2450_connect_checks_language_and_nothing_else():
    with expected_protocol(Keithley2450, K2450_CONNECT) as k:
        assert set(k.channels()) == {"1"}


@pytest.mark.parametrize("mode", ["TSP", "SCPI2400"])
def test_2450_in_another_language_is_refused(mode):
    with pytest.raises(WrongLanguageMode, match=mode):
        with expected_protocol(Keithley2450, [("*LANG?", mode)]):
            pass


def test_2450_settings():
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + K2450_PREPARE + [
            (":SOUR:VOLT:ILIM 0.001", None), K2450_OK,
            (":SOUR:VOLT 0.25", None), K2450_OK,
            (":SOUR:VOLT:RANG 2", None), K2450_OK,
            (":SOUR:VOLT:RANG:AUTO 1", None), K2450_OK,
            (":SENS:CURR:RANG 1e-05", None), K2450_OK,
            (":SENS:CURR:RANG:AUTO 1", None), K2450_OK,
            (":SENS:CURR:NPLC 0.5", None), K2450_OK,
            (":OUTP 1", None), K2450_OK,
            (":OUTP?", "1"),
            (":OUTP 0", None), K2450_OK,
        ],
    ) as k:
        ch = k.channels()["1"]
        ch.set_current_limit(1e-3)
        ch.set_voltage(0.25)
        ch.set_voltage_range(2)
        ch.set_voltage_range(None)
        ch.set_current_range(1e-5)
        ch.set_current_range(None)
        ch.set_nplc(0.5)
        ch.set_output(True)
        assert ch.output_enabled() is True
        ch.set_output(False)


def test_2450_switches_a_current_source_to_voltage_only_while_off():
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + [(":SOUR:FUNC?", "CURR"), (":OUTP?", "0"), (":SOUR:FUNC VOLT", None), K2450_OK,
                         (':SENS:FUNC "CURR"', None), K2450_OK, (":OUTP?", "0"),
                         (":SOUR:VOLT 0", None), K2450_OK],
    ) as k:
        k.channels()["1"].set_voltage(0)
    with expected_protocol(Keithley2450, K2450_CONNECT + [(":SOUR:FUNC?", "CURR"), (":OUTP?", "1")]) as k:
        with pytest.raises(InstrumentError, match="sourcing current with the output on"):
            k.channels()["1"].set_voltage(0)


def test_2450_measure_reads_source_and_current_then_the_limit_state():
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + K2450_PREPARE + [
            (':READ? "defbuffer1",SOUR,READ', "1.000000E-01,1.234560E-05"), (":SOUR:VOLT:ILIM:TRIP?", "0"),
            (':READ? "defbuffer1",SOUR,READ', "1.000000E-01,1.234560E-05"), (":SOUR:VOLT:ILIM:TRIP?", "0"),
            (':READ? "defbuffer1",SOUR,READ', "5.000000E-02,1.000000E-03"), (":SOUR:VOLT:ILIM:TRIP?", "1"),
        ],
    ) as k:
        ch = k.channels()["1"]
        assert ch.measure() == Reading(0.1, 1.23456e-5, False)
        assert ch.measure_current() == pytest.approx(1.23456e-5)
        with pytest.raises(ComplianceTripped, match="Keithley 2450: channel 1: source clamped"):
            ch.measure_voltage()


def test_2450_pulse_is_level_sleep_zero_then_error_check():
    NO_SLEEP.clear()
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + K2450_PREPARE[:-1] + [(":OUTP?", "1")] + [
            (":SOUR:VOLT 1.5", None), (":SOUR:VOLT:ILIM:TRIP?", "0"), (":SOUR:VOLT 0", None), K2450_OK,
            (":OUTP?", "1"),
            (":SOUR:VOLT -1.5", None), (":SOUR:VOLT:ILIM:TRIP?", "1"), (":SOUR:VOLT 0", None), K2450_OK,
        ],
    ) as k:
        ch = _no_sleep(k).channels()["1"]
        ch.pulse(1.5, 2e-3)
        assert ch.output_enabled()
        with pytest.raises(ComplianceTripped, match="pulse hit the current limit"):
            ch.pulse(-1.5, 1e-3)
    assert NO_SLEEP == [2e-3, 1e-3]


def test_2450_reported_error_names_code_message_and_command():
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + K2450_PREPARE + [
            (":SOUR:VOLT 20", None), (":SYST:ERR?", '-222,"Data out of range"'), K2450_OK,
        ],
    ) as k:
        with pytest.raises(InstrumentReportedError) as info:
            k.channels()["1"].set_voltage(20)
    assert (info.value.code, info.value.message, info.value.command) == (-222, "Data out of range", ":SOUR:VOLT 20")


@pytest.mark.parametrize("reply", ["garbage", "1.0", "1.0,2.0,3.0", "x,y"])
def test_2450_unparsable_reading_is_a_bad_reply(reply):
    with expected_protocol(Keithley2450, K2450_CONNECT + K2450_PREPARE + [(':READ? "defbuffer1",SOUR,READ', reply)]) as k:
        with pytest.raises(BadReply, match="Keithley 2450"):
            k.channels()["1"].measure()


def test_2450_overflow_is_no_reading():
    with expected_protocol(
        Keithley2450,
        K2450_CONNECT + K2450_PREPARE + [(':READ? "defbuffer1",SOUR,READ', "1.0E-01,9.9E+37")],
    ) as k:
        with pytest.raises(InstrumentError, match="current overflow"):
            k.channels()["1"].measure()


# -- Keithley 2400 (pymeasure's driver underneath) -----------------------------------------
K2400_OK = (":SYST:ERR?", '0,"No error"')
K2400_CONNECT = [(":FORMAT:ELEMENTS VOLTAGE, CURRENT, RESISTANCE, TIME, STATUS", None)]
K2400_PREPARE = [
    (":SOURCE:FUNCTION?", "VOLT"),
    (":SENSE:FUNCTION:CONCURRENT 1;:SENSE:FUNCTION 'VOLT','CURR'", None), K2400_OK,
    ("OUTPUT?", "1"),
]


def test_2400_connect_sets_only_the_reading_format():
    with expected_protocol(Keithley2400, K2400_CONNECT) as k:
        assert set(k.channels()) == {"1"}


def test_2400_settings_use_pymeasure_commands():
    with expected_protocol(
        Keithley2400,
        K2400_CONNECT + K2400_PREPARE + [
            (":SENSE:CURRENT:PROTECTION 0.0001", None), K2400_OK,
            (":SOURCE:VOLTAGE -0.5", None), K2400_OK,
            (":SOURCE:VOLTAGE:RANGE 20", None), K2400_OK,
            (":SOURCE:VOLTAGE:RANGE:AUTO 1", None), K2400_OK,
            (":SENSE:CURRENT:RANGE 0.001", None), K2400_OK,
            (":SENSE:CURRENT:RANGE:AUTO 1", None), K2400_OK,
            (":SENSE:CURRENT:NPLCYCLES 2", None), K2400_OK,
            ("OUTPUT 1", None), K2400_OK,
            ("OUTPUT?", "1"),
        ],
    ) as k:
        ch = k.channels()["1"]
        ch.set_current_limit(1e-4)
        ch.set_voltage(-0.5)
        ch.set_voltage_range(20)
        ch.set_voltage_range(None)
        ch.set_current_range(1e-3)
        ch.set_current_range(None)
        ch.set_nplc(2)
        ch.set_output(True)
        assert ch.output_enabled()


def test_2400_measure_takes_compliance_from_the_status_element():
    with expected_protocol(
        Keithley2400,
        K2400_CONNECT + K2400_PREPARE + [
            (":READ?", "+1.000000E-01,+1.000000E-05,+9.910000E+37,+1.200000E+01,+0.000000E+00"),
            (":READ?", "+5.000000E-02,+1.000000E-04,+9.910000E+37,+1.300000E+01,+8.000000E+00"),
        ],
    ) as k:
        ch = k.channels()["1"]
        assert ch.measure() == Reading(0.1, 1e-5, False)
        with pytest.raises(ComplianceTripped):
            ch.measure_current()


def test_2400_refuses_to_read_with_the_output_off_without_asking():
    pairs = K2400_CONNECT + K2400_PREPARE[:-1] + [("OUTPUT?", "0")]
    with expected_protocol(Keithley2400, pairs) as k:
        with pytest.raises(InstrumentError, match=r"output is off.*\+803"):
            k.channels()["1"].measure()


def test_2400_pulse_and_garbled_reply():
    NO_SLEEP.clear()
    with expected_protocol(
        Keithley2400,
        K2400_CONNECT + K2400_PREPARE + [
            (":SOURCE:VOLTAGE 2", None), (":SENSE:CURRENT:PROTECTION:TRIPPED?", "0"),
            (":SOURCE:VOLTAGE 0", None), K2400_OK,
            ("OUTPUT?", "garbage"),
        ],
    ) as k:
        ch = _no_sleep(k).channels()["1"]
        ch.pulse(2.0, 5e-4)
        with pytest.raises(BadReply, match="Keithley 2400.*garbage"):
            ch.output_enabled()
    assert NO_SLEEP == [5e-4]


# -- Keithley 2600B (TSP) --------------------------------------------------------------
TSP_OK = ("print(errorqueue.next())", "0.00000e+00\tQueue Is Empty\t0.00000e+00\t0.00000e+00")


def tsp_prepare(ch: str, output: str = "0.00000e+00") -> list:
    return [(f"print(smu{ch}.source.func)", "1.00000e+00"), (f"print(smu{ch}.source.output)", output)]


def test_2600b_connect_sends_nothing():
    with expected_protocol(Keithley2636B, []) as k:
        assert set(k.channels()) == {"a", "b"}
    with expected_protocol(Keithley2635B, []) as k:
        assert set(k.channels()) == {"a"}


@pytest.mark.parametrize("ch", ["a", "b"])
def test_2600b_settings(ch):
    with expected_protocol(
        Keithley2636B,
        tsp_prepare(ch) + [
            (f"smu{ch}.source.limiti = 0.0001", None), TSP_OK,
            (f"smu{ch}.source.levelv = 1.5", None), TSP_OK,
            (f"smu{ch}.source.rangev = 2", None), TSP_OK,
            (f"smu{ch}.source.autorangev = 1", None), TSP_OK,
            (f"smu{ch}.measure.rangei = 1e-06", None), TSP_OK,
            (f"smu{ch}.measure.autorangei = 1", None), TSP_OK,
            (f"smu{ch}.measure.nplc = 0.1", None), TSP_OK,
            (f"smu{ch}.source.output = 1", None), TSP_OK,
            (f"print(smu{ch}.source.output)", "1.00000e+00"),
        ],
    ) as k:
        c = k.channels()[ch]
        c.set_current_limit(1e-4)
        c.set_voltage(1.5)
        c.set_voltage_range(2)
        c.set_voltage_range(None)
        c.set_current_range(1e-6)
        c.set_current_range(None)
        c.set_nplc(0.1)
        c.set_output(True)
        assert c.output_enabled()


def test_2600b_selects_dc_volts_by_its_constant():
    with expected_protocol(
        Keithley2636B,
        [("print(smua.source.func)", "0.00000e+00"), ("print(smua.source.output)", "0.00000e+00"),
         ("smua.source.func = smua.OUTPUT_DCVOLTS", None), TSP_OK, ("print(smua.source.output)", "0.00000e+00"),
         ("smua.source.levelv = 0", None), TSP_OK],
    ) as k:
        k.channels()["a"].set_voltage(0)


def test_2600b_measures_value_and_compliance_in_one_chunk():
    chunk = "local i, v = smub.measure.iv() print(v, i, smub.source.compliance)"
    with expected_protocol(
        Keithley2636B,
        tsp_prepare("b") + [
            (chunk, "1.00000e-01\t1.23400e-06\tfalse"),
            (chunk, "9.50000e-02\t1.00000e-04\ttrue"),
            (chunk, "1.00000e-01\tnil"),
        ],
    ) as k:
        c = k.channels()["b"]
        assert c.measure() == Reading(0.1, 1.234e-6, False)
        with pytest.raises(ComplianceTripped, match="channel b"):
            c.measure_current()
        with pytest.raises(BadReply, match="Keithley 2636B"):
            c.measure()


def test_2600b_pulse_runs_on_the_instrument_in_one_chunk():
    chunk = ("smua.source.levelv = 2 delay(0.001) local c = smua.source.compliance "
             "smua.source.levelv = 0 print(c)")
    with expected_protocol(
        Keithley2636B,
        tsp_prepare("a", output="1.00000e+00") + [(chunk, "false"), (chunk, "true")],
    ) as k:
        c = k.channels()["a"]
        c.pulse(2, 1e-3)
        with pytest.raises(ComplianceTripped):
            c.pulse(2, 1e-3)


def test_2600b_reported_error_and_model_bounds():
    with expected_protocol(
        Keithley2602B,
        tsp_prepare("a") + [
            ("smua.source.levelv = 30", None),
            ("print(errorqueue.next())", "-2.22000e+02\tData out of range\t3.00000e+01\t1.00000e+00"),
            TSP_OK,
        ],
    ) as k:
        c = k.channels()["a"]
        with pytest.raises(InstrumentReportedError) as info:
            c.set_voltage(30)
        assert info.value.code == -222 and "smua.source.levelv = 30" in str(info.value)
        with pytest.raises(ValueError):  # a 2602B channel stops at 40 V: refused before sending
            c.set_voltage(41)
        with pytest.raises(ValueError):
            c.pulse(41, 1e-3)


def _sync_arm_chunk(smu: str, volts: str, width: str, line: int, timer: int) -> str:
    tmr, dio = f"trigger.timer[{timer}]", f"digio.trigger[{line}]"
    return (f"{smu}.trigger.source.listv({{{volts}}}) {smu}.trigger.source.action = {smu}.ENABLE "
            f"{smu}.trigger.measure.action = {smu}.DISABLE {smu}.trigger.count = 1 {smu}.trigger.arm.count = 1 "
            f"{smu}.trigger.arm.stimulus = 0 {smu}.trigger.source.stimulus = {dio}.EVENT_ID "
            f"{tmr}.delay = {width} {tmr}.count = 1 {tmr}.passthrough = false "
            f"{tmr}.stimulus = {smu}.trigger.SOURCE_COMPLETE_EVENT_ID "
            f"{smu}.trigger.endpulse.action = {smu}.SOURCE_IDLE {smu}.trigger.endpulse.stimulus = {tmr}.EVENT_ID "
            f"{smu}.trigger.endsweep.action = {smu}.SOURCE_IDLE {dio}.mode = digio.TRIG_FALLING {dio}.clear() "
            f"{smu}.trigger.initiate()")


ON = "1.00000e+00"


def test_2600b_sync_pulse_arms_each_channel_on_its_own_timer_then_fires_the_line():
    fire = "digio.trigger[3].mode = digio.TRIG_FALLING digio.trigger[3].assert() waitcomplete() print(1)"
    with expected_protocol(
        Keithley2636B,
        tsp_prepare("a", output=ON) + [(_sync_arm_chunk("smua", "1.5", "0.001", 3, 1), None), TSP_OK]
        + tsp_prepare("b", output=ON) + [(_sync_arm_chunk("smub", "-1.5", "0.001", 3, 2), None), TSP_OK]
        + [(fire, ON), TSP_OK, ("waitcomplete() print(1)", ON),
           ("smub.trigger.abort()", None), TSP_OK],
    ) as k:
        k.channels()["a"].arm_sync_pulse(1.5, 1e-3, line=3)
        k.channels()["b"].arm_sync_pulse(-1.5, 1e-3, line=3)
        k.fire_trigger_line(3, 1e-3)
        k.wait_complete(1e-3)
        k.channels()["b"].abort_sync_pulse()


def test_2600b_sync_pulse_timer_choice_and_reported_error():
    chunk = _sync_arm_chunk("smua", "200", "2.5e-05", 14, 7)
    with expected_protocol(
        Keithley2636B,
        tsp_prepare("a", output=ON) + [
            (chunk, None),
            ("print(errorqueue.next())", "-2.21000e+02\tSettings conflict\t3.00000e+01\t1.00000e+00"), TSP_OK,
        ],
    ) as k:
        with pytest.raises(InstrumentReportedError, match="digio trigger line 14") as info:
            k.channels()["a"].arm_sync_pulse(200, 25e-6, line=14, timer=7)
        assert info.value.code == -221


def test_2600b_sync_pulse_refusals_send_nothing_past_the_preparation():
    with expected_protocol(Keithley2636B, tsp_prepare("a")) as k:
        c = k.channels()["a"]
        with pytest.raises(InstrumentError, match="output is off"):
            c.arm_sync_pulse(1.0, 1e-3, line=1)
        for bad in ({"volts": 300.0}, {"width_s": 0.0}, {"width_s": 2e5}, {"line": 0}, {"line": 15},
                    {"timer": 9}):
            args = {"volts": 1.0, "width_s": 1e-3, "line": 1, **bad}
            with pytest.raises(ValueError):
                c.arm_sync_pulse(**args)
        with pytest.raises(ValueError):
            k.fire_trigger_line(15, 1e-3)


def test_2600b_fire_needs_the_completion_reply():
    fire = "digio.trigger[1].mode = digio.TRIG_FALLING digio.trigger[1].assert() waitcomplete() print(1)"
    with expected_protocol(Keithley2636B, [(fire, "nil")]) as k, pytest.raises(BadReply, match="Keithley 2636B"):
        k.fire_trigger_line(1, 1e-3)


# -- Keysight B2900 ---------------------------------------------------------------------
B29_OK = (":SYST:ERR?", '+0,"No error"')


def b29_prepare(ch: int, output: str = "0") -> list:
    return [
        (f":SOUR{ch}:FUNC:MODE?", "VOLT"),
        (f':SENS{ch}:FUNC "VOLT","CURR"', None),
        (f":OUTP{ch}:ON:AUTO 0", None), B29_OK,
        (":FORM:ELEM:SENS VOLT,CURR", None), B29_OK,
        (f":OUTP{ch}?", output),
    ]


def test_b2900_connect_sends_nothing():
    with expected_protocol(KeysightB2902A, []) as k:
        assert set(k.channels()) == {"1", "2"}
    with expected_protocol(KeysightB2901A, []) as k:
        assert set(k.channels()) == {"1"}


@pytest.mark.parametrize("ch", [1, 2])
def test_b2900_settings_carry_the_channel_suffix(ch):
    with expected_protocol(
        KeysightB2902A,
        b29_prepare(ch) + [
            (f":SENS{ch}:CURR:PROT 0.002", None), B29_OK,
            (f":SOUR{ch}:VOLT 0.1", None), B29_OK,
            (f":SOUR{ch}:VOLT:RANG 20", None), B29_OK,
            (f":SOUR{ch}:VOLT:RANG:AUTO 1", None), B29_OK,
            (f":SENS{ch}:CURR:RANG 1e-07", None), B29_OK,
            (f":SENS{ch}:CURR:RANG:AUTO 1", None), B29_OK,
            (f":SENS{ch}:CURR:NPLC 1", None), B29_OK,
            (f":OUTP{ch} 1", None), B29_OK,
            (f":OUTP{ch}?", "1"),
        ],
    ) as k:
        c = k.channels()[str(ch)]
        c.set_current_limit(2e-3)
        c.set_voltage(0.1)
        c.set_voltage_range(20)
        c.set_voltage_range(None)
        c.set_current_range(1e-7)
        c.set_current_range(None)
        c.set_nplc(1)
        c.set_output(True)
        assert c.output_enabled()


def test_b2900_measure_and_pulse():
    NO_SLEEP.clear()
    with expected_protocol(
        KeysightB2902A,
        b29_prepare(2, output="1") + [
            (":MEAS? (@2)", "+1.000000E-01,+1.000000E-05"), (":SENS2:CURR:PROT:TRIP?", "0"),
            (":SOUR2:VOLT 3", None), (":SENS2:CURR:PROT:TRIP?", "0"), (":SOUR2:VOLT 0", None), B29_OK,
        ],
    ) as k:
        c = _no_sleep(k).channels()["2"]
        assert c.measure() == Reading(0.1, 1e-5, False)
        c.pulse(3, 1e-4)
    assert NO_SLEEP == [1e-4]


# -- rules every model follows -----------------------------------------------------------------
@pytest.mark.parametrize("cls, connect, prepare, ch", [
    (Keithley2450, K2450_CONNECT, K2450_PREPARE, "1"),
    (Keithley2400, K2400_CONNECT, K2400_PREPARE[:-1] + [("OUTPUT?", "0")], "1"),
    (Keithley2636B, [], tsp_prepare("a"), "a"),
    (KeysightB2902A, [], b29_prepare(1), "1"),
])
def test_output_on_needs_a_limit_first_and_bad_values_send_nothing(cls, connect, prepare, ch):
    with expected_protocol(cls, connect + prepare) as k:
        c = k.channels()[ch]
        with pytest.raises(InstrumentError, match="set a current limit before turning the output on"):
            c.set_output(True)
        with pytest.raises(ValueError):
            c.set_voltage(1e4)
        with pytest.raises(ValueError):
            c.set_current_limit(50.0)
        with pytest.raises(ValueError):
            c.set_nplc(1e3)
        with pytest.raises(InstrumentError, match="output is off"):
            c.pulse(0.1, 1e-3)
        with pytest.raises(ValueError):
            c.pulse(0.1, 0.0)


@pytest.mark.parametrize("cls, model, connect", [
    (Keithley2450, "keithley2450", K2450_CONNECT),
    (Keithley2400, "keithley2400", K2400_CONNECT),
    (Keithley2636B, "keithley2636b", []),
    (Keithley2602B, "keithley2602b", []),
    (Keithley2635B, "keithley2635b", []),
    (KeysightB2902A, "keysight_b2902a", []),
    (KeysightB2901A, "keysight_b2901a", []),
])
def test_bounds_and_channels_come_from_the_capability_table(cls, model, connect):
    cap = capability(model)
    with expected_protocol(cls, connect) as k:  # every refusal below sends nothing
        assert tuple(k.channels()) == cap.channels
        for c in k.channels().values():
            assert c.v_max == cap.v_max
            for setting, top in (("source_voltage", cap.v_max), ("current_limit", cap.i_limit_max),
                                 ("current_range", cap.i_limit_max), ("nplc", cap.nplc_range[1])):
                with pytest.raises(ValueError):
                    setattr(c, setting, top * 1.001)
            with pytest.raises(ValueError):
                c.nplc = cap.nplc_range[0] * 0.999
