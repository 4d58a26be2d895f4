"""The SCPI parser the simulated SCPI instruments share (pure functions)."""
from __future__ import annotations

import pytest

from sim_backend.instruments.scpi import (
    Dispatcher,
    ScpiError,
    boolean,
    channel_list,
    choice,
    compile_pattern,
    nr3,
    number,
    split_units,
    string,
)


@pytest.fixture
def table():
    state: dict = {}
    d = Dispatcher()
    d.add("[:SOURce#]:VOLTage[:LEVel][:IMMediate][:AMPLitude]",
          lambda c: state.__setitem__(("v", c.suffix()), number(c.one(), -10, 10)),
          lambda c: nr3(state.get(("v", c.suffix()), 0.0)))
    d.add("[:SOURce#]:VOLTage:ILIMit[:LEVel]", lambda c: state.__setitem__("ilim", number(c.one())),
          lambda c: nr3(state["ilim"]))
    d.add(":OUTPut#[:STATe]", lambda c: state.__setitem__(("o", c.suffix()), boolean(c.one())),
          lambda c: "1" if state.get(("o", c.suffix())) else "0")
    d.add("*IDN", None, lambda c: "ACME,1,2,3")
    d.add(":MEASure", None, lambda c: ",".join(str(n) for n in channel_list(c.one())))
    return d, state


def test_pattern_compiles_short_and_long_forms():
    nodes = compile_pattern("[:SOURce#]:VOLTage[:LEVel]")
    assert [(n.short, n.long, n.optional, n.suffix) for n in nodes] == [
        ("SOUR", "SOURCE", True, True), ("VOLT", "VOLTAGE", False, False), ("LEV", "LEVEL", True, False)
    ]


@pytest.mark.parametrize("message", [
    ":SOUR:VOLT 1.5", ":SOURCE:VOLTAGE:LEVEL:IMMEDIATE:AMPLITUDE 1.5", "sour:volt 1.5", "VOLT 1.5",
    ":VOLT:LEV 15e-1", ":SOUR1:VOLT +1.50",
])
def test_short_long_optional_and_case(table, message):
    d, state = table
    assert d.execute(message) is None
    assert state[("v", 1)] == 1.5


def test_numeric_suffix_selects_the_channel(table):
    d, state = table
    d.execute(":SOUR2:VOLT 2;:OUTP2 ON")
    assert state[("v", 2)] == 2.0 and state[("o", 2)] is True
    assert d.execute(":SOUR2:VOLT?;:SOUR1:VOLT?;:OUTP2?") == "+2.000000E+00;+0.000000E+00;1"


def test_relative_path_after_semicolon(table):
    d, state = table
    assert d.execute(":SOUR:VOLT:ILIM 1e-3;ILIM?") == "+1.000000E-03"


@pytest.mark.parametrize("message, code", [
    (":SOURC:VOLT 1", -113),  # neither short nor long form
    (":SOUR:VOLTA 1", -113),
    (":FOO?", -113),
    ("*IDN", -113),  # a query-only header used as a command
    (":SOUR:VOLT", -109),
    (":SOUR:VOLT 1,2", -108),
    (":SOUR:VOLT abc", -104),
    (":SOUR:VOLT 11", -222),
    (":OUTP MAYBE", -104),
])
def test_errors_carry_scpi_codes(table, message, code):
    d, _ = table
    with pytest.raises(ScpiError) as info:
        d.execute(message)
    assert info.value.code == code


def test_common_and_channel_list_and_quoted_separators(table):
    d, _ = table
    assert d.execute("*idn?") == "ACME,1,2,3"
    assert d.execute(":MEAS? (@1,2)") == "1,2"
    assert d.execute(":MEAS? (@1:3)") == "1,2,3"
    assert split_units(':A "x;y";:B (@1;2)') == [':A "x;y"', ":B (@1;2)"]


def test_parameter_helpers():
    assert number("MAX", 0, 5) == 5 and number("min", 0, 5) == 0 and number("DEF", default=3) == 3
    assert boolean("on") and not boolean("0") and boolean("1.0")
    assert string('"CURR"') == "CURR" and string("'VOLT'") == "VOLT"
    assert choice("volt", ("VOLTage", "CURRent")) == "VOLTAGE"
    assert choice("CURRENT", ("VOLTage", "CURRent")) == "CURRENT"
    with pytest.raises(ScpiError):
        choice("VOLTA", ("VOLTage",))
    with pytest.raises(ScpiError):
        string("CURR")
