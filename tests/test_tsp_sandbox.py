"""The TSP interpreter runs untrusted text from a socket: it reaches nothing but the
instrument, and every message is bounded in steps, memory, depth and time. Each hostile
message becomes an entry in ``errorqueue`` and the server goes on serving, over TCP and
over the in-process VISA library."""
from __future__ import annotations

import time

import pytest

from test_peer_common import TERMINATIONS, TRANSPORTS, raw, reach, wired_twin

ESCAPES = [
    "io.open('/etc/passwd')",
    "os.execute('touch /tmp/hopbench-pwned')",
    "require('os')",
    "dofile('/etc/passwd')",
    "loadstring('x = 1')()",
    "load('x = 1')()",
    "f = loadfile('/etc/passwd')",
    "debug.getinfo(1)",
    "print(string.dump(print))",
    "x = getmetatable('').__index",
    "x = print.__globals__",
    "x = ('').__class__.__mro__",
    "setfenv(1, {})",
    "collectgarbage()",
]
HOSTILE = [
    ("while true do end", "instruction limit"),
    ("repeat local x = 1 until false", "instruction limit"),
    ("for i = 1, 1e12 do end", "instruction limit"),
    ("s = string.rep('x', 1e9)", "string too long"),
    ("s = 'x' for i = 1, 40 do s = s .. s end", "string too long"),
    ("t = {} for i = 1, 1e7 do t[i] = i end", "limit"),
    ("function f() return f() + 1 end f()", "stack overflow"),
    ("x = " + "(" * 3000 + "1" + ")" * 3000, "too many syntax levels"),
    ("print(string.format('%99999d', 1))", "invalid option"),
]


@pytest.fixture(params=TRANSPORTS)
def tsp(request):
    twin = wired_twin("keithley2636b", {"a": "drive", "b": "spare"})
    with reach(twin, request.param) as (resources, library):
        rm, res = raw(resources, library, "smu")
        res.timeout = 10000
        try:
            yield res, twin.instruments["smu"]
        finally:
            rm.close()


def next_error(res) -> tuple[float, str]:
    code, message, *_ = res.query("print(errorqueue.next())").split("\t")
    return float(code), message


def still_serving(res) -> None:
    assert res.query("print(1 + 1)") == "2.00000e+00"
    assert "2636B" in res.query("*IDN?")
    assert res.query("print(errorqueue.count)") == "0.00000e+00"


@pytest.mark.parametrize("chunk", ESCAPES)
def test_no_file_os_module_or_python_access(tsp, chunk):
    res, inst = tsp
    res.write("smua.source.levelv = 0.5")
    res.write(chunk)
    code, message = next_error(res)
    assert code == -286 and "TSP Runtime error" in message
    assert res.query("print(smua.source.levelv, x, f)") == "5.00000e-01\tnil\tnil"
    still_serving(res)


@pytest.mark.parametrize("chunk, text", HOSTILE)
def test_endless_loops_huge_strings_and_deep_nesting_are_errors(tsp, chunk, text):
    res, inst = tsp
    t0 = time.monotonic()
    res.write(chunk)
    code, message = next_error(res)
    assert time.monotonic() - t0 < 8
    assert code in (-285, -286) and text in message
    still_serving(res)


def test_script_globals_survive_but_are_bounded(tsp):
    res, inst = tsp
    res.write("t = {} for i = 1, 20000 do t[i] = i end")
    assert res.query("print(#t)") == "2.00000e+04"
    for _ in range(5):  # each message may allocate, the script's memory stays bounded
        res.write("big = big or {} for i = 1, 8 do big[#big + 1] = string.rep('y', 999999) end")
    codes = [next_error(res)[0] for _ in range(int(float(res.query("print(errorqueue.count)"))))]
    assert -286 in codes
    # over the limit at the 4th message the script's variables were cleared; the 5th began anew
    assert res.query("print(#big, t)") == "8.00000e+00\tnil"
    still_serving(res)


def test_scripts_load_run_and_stay_sandboxed(tsp):
    res, inst = tsp
    for line in ("loadscript sweep", "total = 0", "for i = 1, 5 do total = total + i end", "print(total)", "endscript"):
        res.write(line)
    assert res.query("sweep()") == "1.50000e+01"
    assert res.query("sweep.run()") == "1.50000e+01"
    for line in ("loadandrunscript", "while true do end", "endscript"):
        res.write(line)
    assert "instruction limit" in next_error(res)[1]
    for line in ("loadscript broken", "if then", "endscript"):
        res.write(line)
    assert next_error(res)[0] == -285 and res.query("print(broken)") == "nil"
    still_serving(res)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_unterminated_flood_is_an_input_overrun_not_a_memory_leak(transport):
    twin = wired_twin("keithley2636b", {"a": "drive", "b": "spare"})
    with reach(twin, transport) as (resources, library):
        rm, res = raw(resources, library, "smu")
        try:
            res.write_raw(b"x" * 5_000_000)
            res.write("")  # the newline ends the flood's tail (a message of its own: a syntax error)
            codes = [next_error(res)[0] for _ in range(int(float(res.query("print(errorqueue.count)"))))]
            assert -363.0 in codes
            still_serving(res)
        finally:
            rm.close()
    assert TERMINATIONS["read_termination"] == "\n"
