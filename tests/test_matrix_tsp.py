"""The one TSP (Lua) interpreter the simulated TSP instruments share: the language a script uses."""
from __future__ import annotations

import pytest

from sim_backend.instruments.lua_parse import parse
from sim_backend.instruments.tsp import TspInterpreter, TspRuntimeError, TspSyntaxError, format_value


@pytest.mark.parametrize(
    "chunk",
    ["print(", "x = = 1", "x", "f(,)", "x = 'open", "a.b. = 1", "@", "if x then y()", "for i = 1 do end",
     "local = 1", "a, = 1", "local smua.x = 1", "break", "function f() return ... end", "x = {1, 2",
     "return return"],
)
def test_syntax_errors(chunk):
    with pytest.raises(TspSyntaxError) as info:
        TspInterpreter().execute(chunk)
    assert info.value.code == -285
    assert info.value.message.startswith("TSP Syntax error at line 1:")


def test_parse_is_whole_chunk_with_lines():
    tree = parse("x = 1\nif x then\n  y = 2\nend")
    assert [s[0] for s in tree] == ["assign", "if"] and tree[1][1] == 2
    with pytest.raises(TspSyntaxError, match="line 3"):
        TspInterpreter().execute("x = 1\ny = 2\nz = = 3")


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


def run(t, chunk):
    return t.execute(chunk)


def test_print_formats_like_tsp_and_expands_the_last_call(tsp):
    assert run(tsp, "smua.source.levelv = 2.5 print(smua.measure.iv())") == ["1.00000e-03\t2.50000e+00"]
    assert run(tsp, "print(smua.measure.iv(), localnode.model)") == ["1.00000e-03\t2636B"]
    assert run(tsp, "x = smua.measure.iv() print(x, nil, true)") == ["1.00000e-03\tnil\ttrue"]
    assert run(tsp, "print((smua.measure.iv()))") == ["1.00000e-03"]
    assert format_value(0) == "0.00000e+00"


def test_string_escapes_booleans_nil_and_comments(tsp):
    assert run(tsp, "print('a\\'b', \"c\\td\", true, false, nil) -- trailing comment") == ["a'b\tc\td\ttrue\tfalse\tnil"]
    assert run(tsp, "print([[long\nstring]]) --[[ block\ncomment ]] print('\\65\\066')") == ["long\nstring", "AB"]


def test_runtime_errors_stop_the_chunk_but_keep_earlier_effects(tsp):
    with pytest.raises(TspRuntimeError) as info:
        run(tsp, "smua.source.levelv = 1 print(1) fail() smua.source.levelv = 2")
    assert tsp.state["level"] == 1
    assert info.value.printed == ["1.00000e+00"]


def test_a_syntax_error_runs_nothing(tsp):
    with pytest.raises(TspSyntaxError):
        run(tsp, "smua.source.levelv = 3 print(")
    assert tsp.state["level"] == 0.0


@pytest.mark.parametrize(
    "chunk, text",
    [
        ("smua.nothing()", "attempt to call a nil value"),
        ("nosuch.table.f()", "attempt to index a nil value"),
        ("localnode.model = 'x'", "read-only"),
        ("smua.source.bogus = 1", "cannot assign"),
        ("smua = 1", "cannot assign"),
        ("x = -localnode.model", "arithmetic"),
        ("x = 1 < 'a'", "attempt to compare"),
        ("x = {} .. 'a'", "concatenate"),
        ("error('custom')", "custom"),
        ("x = nil + 1", "arithmetic on a nil value"),
    ],
)
def test_runtime_errors_name_the_problem(tsp, chunk, text):
    with pytest.raises(TspRuntimeError, match=text) as info:
        run(tsp, chunk)
    assert info.value.code == -286


def test_globals_and_unknown_fields(tsp):
    assert run(tsp, "y = 4 print(y, undefined, smua.source.unknown)") == ["4.00000e+00\tnil\tnil"]


def test_locals_take_multiple_results_and_end_with_the_chunk(tsp):
    assert run(tsp, "smua.source.levelv = 2 local i, v, w = smua.measure.iv() print(v, i, w)") == [
        "2.00000e+00\t1.00000e-03\tnil"
    ]
    assert run(tsp, "local c = 5 c = c print(c)") == ["5.00000e+00"]
    assert run(tsp, "print(c, i)") == ["nil\tnil"]  # gone with their chunk
    assert run(tsp, "a, b = smua.measure.iv() print(b, a)") == ["2.00000e+00\t1.00000e-03"]
    assert run(tsp, "print(a)") == ["1.00000e-03"]  # a global stays
    assert run(tsp, "a, b = b, a print(a, b)") == ["2.00000e+00\t1.00000e-03"]


def test_printed_lines_survive_a_host_error(tsp):
    tsp.function("refuse", lambda: (_ for _ in ()).throw(ValueError("no")))
    printed: list[str] = []
    with pytest.raises(ValueError):
        tsp.execute("print(1) refuse() print(2)", printed)
    assert printed == ["1.00000e+00"]


def test_control_flow_loops_and_functions(tsp):
    chunk = """
    local function fact(n) if n <= 1 then return 1 else return n * fact(n - 1) end end
    local s = 0
    for i = 1, 10 do s = s + i end
    for i = 10, 1, -3 do s = s + 1 end
    local k = 0 while true do k = k + 1 if k >= 5 then break end end
    local r = 0 repeat r = r + 2 until r > 7
    function acc(...) local t = {...} return select('#', ...), t[2] end
    print(fact(5), s, k, r, acc(7, 8, 9))
    """
    assert run(tsp, chunk) == ["1.20000e+02\t5.90000e+01\t5.00000e+00\t8.00000e+00\t3.00000e+00\t8.00000e+00"]


def test_closures_capture_fresh_cells_per_turn(tsp):
    chunk = """
    fs = {}
    for i = 1, 3 do fs[i] = function() return i end end
    local function counter() local n = 0 return function() n = n + 1 return n end end
    local c = counter() c() c()
    print(fs[1](), fs[3](), c())
    """
    assert run(tsp, chunk) == ["1.00000e+00\t3.00000e+00\t3.00000e+00"]


def test_tables_strings_and_the_standard_library(tsp):
    chunk = """
    local t = {10, 20, x = 'a', ['y z'] = 2}
    table.insert(t, 30) t[#t + 1] = 40
    local keys = 0 for k, v in pairs(t) do keys = keys + 1 end
    local sum = 0 for i, v in ipairs(t) do sum = sum + v end
    print(#t, keys, sum, t.x .. t['y z'], table.concat(t, ','))
    print(string.format('%5.2f|%d|%s|%-3s|%e|%q', 3.14159, 42.7, 'hi', 'a', 1e-6, 'q"'))
    print(('abc'):upper(), string.sub('hello', 2, -2), string.len('xyz'), string.rep('ab', 3), tostring(12) .. 'x')
    print(tonumber('0x10'), tonumber('1e3'), tonumber('z'), type(t), type(nil), math.floor(-2.5), math.max(1, 5, 3))
    print(1 .. '', 2.5 .. '', 10 / 4, 7 % 3, 2 ^ 10, -(-3), not nil, 1 == 1.0, '1' == 1)
    local ok, err = pcall(function() error('inner') end) print(ok, err)
    local u = {3, 1, 2} table.sort(u) print(unpack(u))
    """
    assert run(tsp, chunk) == [
        "4.00000e+00\t6.00000e+00\t1.00000e+02\ta2\t10,20,30,40",
        ' 3.14|42|hi|a  |1.000000e-06|"q\\""',
        "ABC\tell\t3.00000e+00\tababab\t12x",
        "1.60000e+01\t1.00000e+03\tnil\ttable\tnil\t-3.00000e+00\t5.00000e+00",
        "1\t2.5\t2.50000e+00\t1.00000e+00\t1.02400e+03\t3.00000e+00\ttrue\ttrue\tfalse",
        "false\tinner",
        "1.00000e+00\t2.00000e+00\t3.00000e+00",
    ]


def test_and_or_short_circuit_and_precedence(tsp):
    assert run(tsp, "print(nil or 'd', false and fail(), 1 + 2 * 3 ^ 2, 2 ^ 3 ^ 2, 'a' .. 'b' .. 'c', 1 < 2 and 2 <= 2)") == [
        "d\tfalse\t1.90000e+01\t5.12000e+02\tabc\ttrue"
    ]
