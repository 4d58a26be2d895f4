"""Each simulated model's command set: every kept setting reads back what was set, unknown
or malformed input lands in the model's error queue with the manual's code and changes
nothing, short and long forms, any case, compound messages with and without a trailing ``;``."""
from __future__ import annotations

import pytest

from sim_backend import SimulatedBench, film
from sim_backend.instruments import keithley2400_tree, keithley2450
from sim_backend.instruments.keithley707b import Keithley707B
from sim_backend.instruments.keithley2400 import Keithley2400
from sim_backend.instruments.keithley2450 import Keithley2450
from sim_backend.instruments.keithley2600b import Keithley2600B
from sim_backend.instruments.keysight_b2900 import KeysightB2902A
from sim_backend.instruments.scpi_settings import short


@pytest.fixture
def bench():
    b = SimulatedBench(film(2), "ideal", seed=7, buses=["p", "n"],
                       crosspoints={"1A01": ("p", "C0"), "1B02": ("n", "C1")}, contact_resistance_ohm=0.0)
    b.close(["1A01", "1B02"])
    b.set_compliance("n", 1e-3)
    b.set_output("n", True)
    return b


def ask(inst, message):
    r = inst.respond(message)
    return r.data.decode().rstrip("\n") if r.action == "reply" else None


def drain(inst):
    out = []
    while inst.error_queue:
        out.append(inst.next_error()[0])
    return out


def concrete(pattern: str) -> str:
    """A header of ``pattern`` in short form, optional nodes left out, suffixes as 1."""
    import re

    header = re.sub(r"\[[^\]]*\]", "", pattern).replace("#", "1")
    return ":".join(short(p) if not p.startswith("*") else p for p in header.split(":"))


@pytest.mark.parametrize("cls, table", [(Keithley2400, keithley2400_tree.SETTINGS), (Keithley2450, keithley2450.SETTINGS)])
def test_every_kept_setting_has_its_query(bench, cls, table):
    k = cls("k", bench, {"1": "p"})
    for s in table:
        reply = ask(k, concrete(s.pattern) + "?")
        assert reply is not None and drain(k) == [], s.pattern
        if s.kind == "choice":
            other = s.options[-1]
            ask(k, f"{concrete(s.pattern)} {other}")
            assert ask(k, concrete(s.pattern) + "?") == short(other) and drain(k) == [], s.pattern


@pytest.mark.parametrize("cls, cid", [(Keithley2400, "1"), (Keithley2450, "1"), (KeysightB2902A, "1")])
def test_unknown_and_malformed_scpi_queue_the_manual_codes_and_change_nothing(bench, cls, cid):
    k = cls("k", bench, {cid: "p"})
    ask(k, ":SOUR:VOLT 0.1")
    for message, code in ((":SOUR:VOLT:BOGUS 1", -113), (":FOO?", -113), (":SOUR:VOLT abc", -104),
                          (":SOUR:VOLT 1e6", -222), (":SOUR:VOLT", -109), (":SOUR:VOLT 1,2", -108)):
        assert ask(k, message) is None
        assert drain(k) == [code], message
    assert float(ask(k, ":SOUR:VOLT?")) == pytest.approx(0.1)
    assert int(ask(k, "*ESR?")) & 32  # command errors set bit 5 of the event status register
    assert ask(k, "*ESR?") == "0"  # and reading clears it


def test_scpi_forms_case_and_compound_messages(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    assert ask(k, ":source:voltage:level 0.2;:SOUR:VOLT?;") == "+2.000000E-01"
    assert ask(k, "SOURce:VOLTage:ILIMit 1e-3;ILIM?") == "+1.000000E-03"  # relative path of the previous unit
    assert ask(k, "*RST;:stat:pres;:*CLS;") is None and drain(k) == []
    assert ask(k, ":ROUT:TERM REAR;:ROUTe:TERMinals?") == "REAR"
    assert ask(k, "*ESE 32;*ESE?;*SRE?") == "32;0"


def test_2450_buffers_and_trigger_model(bench):
    k = Keithley2450("k", bench, {"1": "p"})
    ask(k, ":SOUR:VOLT 0.1;:SOUR:VOLT:ILIM 1e-3;:OUTP ON;:SENS:COUN 3")
    ask(k, ':TRAC:MAKE "mine", 100')
    ask(k, ':READ? "mine"')
    assert ask(k, ':TRAC:ACT? "mine"') == "3" and ask(k, ":TRAC:ACT?") == "0"
    assert len(ask(k, ':TRAC:DATA? 1, 3, "mine", READ, SOUR, REL').split(",")) == 9
    ask(k, ':TRIG:LOAD "SimpleLoop", 5, 0.01, "mine"')
    t0 = bench.clock.now
    ask(k, ":INIT;*WAI")
    assert bench.clock.now - t0 == pytest.approx(5 * (0.01 + 1 / 50))
    assert ask(k, ':TRAC:ACT? "mine"') == "8" and drain(k) == []
    ask(k, ':TRIG:LOAD "ConfigList", 1')
    assert drain(k) == [-221]


def test_2600b_objects_a_script_uses(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    script = (
        "smua.reset() smua.source.limiti = 1e-3 smua.measure.nplc = 0.1 smua.source.output = smua.OUTPUT_ON "
        "smua.nvbuffer1.clear() smua.nvbuffer1.appendmode = 1 "
        "for v = 1, 3 do smua.source.levelv = v / 10 smua.measure.i(smua.nvbuffer1) end "
        "print(smua.nvbuffer1.n, string.format('%.3f', smua.nvbuffer1.sourcevalues[1] or -1)) "
        "printbuffer(1, 3, smua.nvbuffer1.readings)"
    )
    lines = ask(k, script).split("\n")
    assert lines[0].split("\t")[0] == "3.00000e+00"
    assert len(lines[1].split(", ")) == 3
    assert ask(k, "smua.measure.filter.enable = smua.FILTER_ON print(smua.measure.filter.enable, smua.measure.delay)") == \
        "1.00000e+00\t-1.00000e+00"
    assert ask(k, "display.clear() display.settext('hi') beeper.beep(0.1, 440) digio.writebit(3, 1) print(digio.readport())") == \
        "4.00000e+00"
    assert ask(k, "trigger.timer[1].delay = 0.002 print(trigger.timer[1].delay, localnode.model, localnode.linefreq)") == \
        "2.00000e-03\t2636B\t5.00000e+01"
    assert drain(k) == []


def test_2600b_trigger_model_times_a_pulse_train(bench):
    k = Keithley2600B("k", bench, {"a": "p"})
    ask(k, "smua.source.limiti = 1e-3 smua.source.output = 1 smua.measure.nplc = 0.01")
    chunk = (
        "smua.trigger.source.listv({0.1, 0.2, 0.3}) smua.trigger.source.action = smua.ENABLE "
        "smua.trigger.measure.action = smua.ENABLE smua.trigger.measure.i(smua.nvbuffer1) "
        "trigger.timer[1].delay = 0.01 trigger.timer[2].delay = 0.001 "
        "smua.trigger.source.stimulus = trigger.timer[1].EVENT_ID "
        "smua.trigger.endpulse.action = smua.SOURCE_IDLE smua.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID "
        "smua.trigger.count = 3 smua.trigger.initiate() waitcomplete() print(smua.nvbuffer1.n)"
    )
    t0 = bench.clock.now
    assert ask(k, chunk) == "3.00000e+00"
    assert bench.clock.now - t0 == pytest.approx(0.03)  # three periods of timer 1
    assert bench.bus_state("p")["level"] == 0.0  # back at the idle level
    assert drain(k) == []


@pytest.mark.parametrize("cls, kwargs", [(Keithley2600B, {"channels": {"a": "p"}}), (Keithley707B, {"cards": 1})])
def test_tsp_unknown_and_malformed_input(bench, cls, kwargs):
    k = cls("k", bench, **kwargs)
    for chunk, code in (("nosuch.fn()", -286), ("x = = 1", -285), ("if true then", -285)):
        assert ask(k, chunk) is None
        assert drain(k) == [code], chunk
