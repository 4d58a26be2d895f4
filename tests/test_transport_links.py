"""One tiny simulated instrument reached three ways (TCP socket, pseudo-terminal, in-process
VISA library) through real pyvisa: the same messages, the same log, the same faults."""
from __future__ import annotations

import time

import pytest
import pyvisa
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from sim_backend.instruments.base import GARBAGE, SimInstrument
from sim_backend.server import SimServer
from sim_backend.visa_library import SimVisaLibrary

BENCH_RESOURCE = "TCPIP::192.168.1.30::5025::SOCKET"


class Echo(SimInstrument):
    """A minimal SCPI-ish instrument: SET/GET a value, read the error queue."""

    model = "echo"
    idn = "hopbench,Echo,0,1"

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.value = "0"

    def handle(self, message: str) -> str | None:
        if message == "*IDN?":
            return self.idn
        if message.startswith("SET "):
            self.value = message[4:]
            return None
        if message == "GET?":
            return self.value
        if message == "TWO?":
            return "first\nsecond"
        if message == "SYST:ERR?":
            code, text = self.next_error()
            return f'{code},"{text}"'
        self.push_error(-113, "Undefined header")
        return None


@pytest.fixture(params=["tcp", "pty", "inproc"])
def link(request):
    """(instrument, opened pyvisa resource, command log) for one transport."""
    echo = Echo("echo")
    kind = request.param
    if kind == "inproc":
        rm = pyvisa.ResourceManager(SimVisaLibrary({BENCH_RESOURCE: echo}))
        res = rm.open_resource(BENCH_RESOURCE, read_termination="\n", write_termination="\n", timeout=300)
        try:
            yield echo, res, rm.visalib.command_log
        finally:
            res.close()
            rm.close()
        return
    server = SimServer({"echo": echo}, serial_names=["echo"] if kind == "pty" else ())
    server.start()
    rm = pyvisa.ResourceManager("@py")
    res = None
    try:
        res = rm.open_resource(
            server.resources["echo"], read_termination="\n", write_termination="\n", timeout=300
        )
        yield echo, res, server.command_log
    finally:
        try:
            if res is not None:
                res.close()
        except Exception:
            pass  # the link may have been dropped on purpose
        rm.close()
        server.stop()


def test_query_roundtrip_and_log(link):
    echo, res, log = link
    before = time.time()
    assert res.query("*IDN?") == echo.idn
    res.write("SET 1.25")
    assert res.query("GET?") == "1.25"
    assert [m for _, name, m in log if name == "echo"] == ["*IDN?", "SET 1.25", "GET?"]
    assert all(before <= t <= time.time() for t, _, _ in log)


def test_multi_line_reply_reads_line_by_line(link):
    _, res, _ = link
    res.write("TWO?")
    assert res.read() == "first"
    assert res.read() == "second"


def test_timeout_fault_raises_visa_timeout(link):
    echo, res, log = link
    echo.faults.timeout = True
    with pytest.raises(VisaIOError) as info:
        res.query("*IDN?")
    assert info.value.error_code == StatusCode.error_timeout
    assert log[-1][2] == "*IDN?"  # the message arrived and was swallowed


def test_garbage_fault_answers_unparseable_bytes(link):
    echo, res, _ = link
    echo.faults.garbage = True
    res.write("*IDN?")
    assert res.read_raw() == GARBAGE + b"\n"


def test_delay_fault_is_slow_but_answers(link):
    echo, res, _ = link
    echo.faults.delay_s = 0.15
    t0 = time.monotonic()
    assert res.query("*IDN?") == echo.idn
    assert time.monotonic() - t0 >= 0.14


def test_delay_beyond_timeout_is_a_timeout(link):
    echo, res, _ = link
    echo.faults.delay_s = 0.6
    with pytest.raises(VisaIOError) as info:
        res.query("*IDN?")
    assert info.value.error_code == StatusCode.error_timeout
    echo.faults.clear()


def test_error_fault_lands_in_the_queue(link):
    echo, res, _ = link
    echo.faults.error = (-350, "Queue overflow")
    assert res.query("GET?") == "0"
    assert res.query("SYST:ERR?") == '-350,"Queue overflow"'
    assert res.query("SYST:ERR?") == '0,"No error"'


def test_drop_fault_loses_the_connection(link):
    echo, res, _ = link
    echo.faults.drop = True
    with pytest.raises((VisaIOError, OSError)) as info:
        res.query("*IDN?")
        res.query("*IDN?")  # a TCP reset may only show at the next exchange
    if isinstance(info.value, VisaIOError):
        assert info.value.error_code == StatusCode.error_connection_lost
