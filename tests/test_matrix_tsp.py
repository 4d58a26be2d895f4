"""The TSP (Lua) subset parser and interpreter the simulated TSP instruments share."""
from __future__ import annotations

import pytest

from sim_backend.instruments.tsp import (
    Assign,
    AssignList,
    Call,
    Literal,
    Local,
    Name,
    Negate,
    TspInterpreter,
    TspRuntimeError,
    TspSyntaxError,
    format_value,
    parse,
)


def test_parses_assignments_calls_and_prints_on_one_line():
    stmts = parse(
        "smua.source.levelv = -1.5e-3 smua.source.output = smua.OUTPUT_ON; "
        "print(smua.measure.i(), status.measurement.instrument.smua.condition)"
    )
    assert stmts == [
        Assign("smua.source.levelv", Negate(Literal(1.5e-3))),
        Assign("smua.source.output", Name("smua.OUTPUT_ON")),
        Call("print", (Call("smua.measure.i"), Name("status.measurement.instrument.smua.condition"))),
    ]


def test_string_escapes_booleans_nil_and_comments():
    assert parse("f('a\\'b', \"c\\td\", true, false, nil) -- trailing comment") == [
        Call("f", (Literal("a'b"), Literal("c\td"), Literal(True), Literal(False), Literal(None)))
    ]


@pytest.mark.parametrize(
    "chunk",
    ["print(", "x = = 1", "x", "if x then y() end", "print(1 + 2)", "f(,)", "x = 'open", "a.b. = 1", "@"],
)
def test_syntax_errors(chunk):
    with pytest.raises(TspSyntaxError) as info:
        parse(chunk)
    assert info.value.code == -285


@pytest.fixture
def tsp():
    state = {"level": 0.0}
    t = TspInterpreter()
    t.constant("smua.OUTPUT_ON", 1)
    t.attribute("smua.source.levelv", lambda: state["level"], lambda v: state.__setitem__("level", v))
    t.attribute("localnode.model", lambda: "2636B")
    t.function("smua.measure.iv", lambda: (1e-3, state["level"]))
    t.function("fail", lambda: (_ for _ in ()).throw(TspRuntimeError("boom")))
    t.state = state
    return t


def test_print_formats_like_tsp_and_expands_the_last_call(tsp):
    assert tsp.execute("smua.source.levelv = 2.5 print(smua.measure.iv())") == ["1.00000e-03\t2.50000e+00"]
    assert tsp.execute("print(smua.measure.iv(), localnode.model)") == ["1.00000e-03\t2636B"]
    assert tsp.execute("x = smua.measure.iv() print(x, nil, true)") == ["1.00000e-03\tnil\ttrue"]
    assert format_value(0) == "0.00000e+00"


def test_runtime_errors_stop_the_chunk_but_keep_earlier_effects(tsp):
    with pytest.raises(TspRuntimeError) as info:
        tsp.execute("smua.source.levelv = 1 print(1) fail() smua.source.levelv = 2")
    assert tsp.state["level"] == 1
    assert info.value.printed == ["1.00000e+00"]


def test_a_syntax_error_runs_nothing(tsp):
    with pytest.raises(TspSyntaxError):
        tsp.execute("smua.source.levelv = 3 print(")
    assert tsp.state["level"] == 0.0


@pytest.mark.parametrize(
    "chunk, text",
    [
        ("smua.nothing()", "attempt to call a nil value"),
        ("nosuch.table.f()", "attempt to index a nil value"),
        ("localnode.model = 'x'", "read-only"),
        ("smua.source.bogus = 1", "cannot assign"),
        ("x = -localnode.model", "arithmetic"),
    ],
)
def test_runtime_errors_name_the_problem(tsp, chunk, text):
    with pytest.raises(TspRuntimeError, match=text) as info:
        tsp.execute(chunk)
    assert info.value.code == -286


def test_globals_and_unknown_fields(tsp):
    assert tsp.execute("y = 4 print(y, undefined, smua.source.unknown)") == ["4.00000e+00\tnil\tnil"]


def test_locals_and_multiple_assignment_parse():
    assert parse("local i, v = smua.measure.iv() local c a, b = 1, 2") == [
        Local(("i", "v"), (Call("smua.measure.iv"),)),
        Local(("c",)),
        AssignList(("a", "b"), (Literal(1.0), Literal(2.0))),
    ]
    for chunk in ("local smua.x = 1", "local = 1", "a, = 1"):
        with pytest.raises(TspSyntaxError):
            parse(chunk)


def test_locals_take_multiple_results_and_end_with_the_chunk(tsp):
    assert tsp.execute("smua.source.levelv = 2 local i, v, w = smua.measure.iv() print(v, i, w)") == [
        "2.00000e+00\t1.00000e-03\tnil"
    ]
    assert tsp.execute("local c = 5 c = c print(c)") == ["5.00000e+00"]
    assert tsp.execute("print(c, i)") == ["nil\tnil"]  # gone with their chunk
    assert tsp.execute("a, b = smua.measure.iv() print(b, a)") == ["2.00000e+00\t1.00000e-03"]
    assert tsp.execute("print(a)") == ["1.00000e-03"]  # a global stays


def test_printed_lines_survive_a_host_error(tsp):
    tsp.function("refuse", lambda: (_ for _ in ()).throw(ValueError("no")))
    printed: list[str] = []
    with pytest.raises(ValueError):
        tsp.execute("print(1) refuse() print(2)", printed)
    assert printed == ["1.00000e+00"]
