"""The 707B driver against the simulated 707B through pyvisa, over TCP and in process:
the same test body, the same typed errors for every fault."""
from __future__ import annotations

import time

import pytest

from drivers.errors import BadReply, ConnectionLost, InstrumentReportedError, InstrumentTimeout
from drivers.keithley707b import ChannelError, Keithley707B
from sim_backend import SimulatedBench, film
from sim_backend.instruments.keithley707b import MAKE_BEFORE_BREAK
from sim_backend.instruments.keithley707b import Keithley707B as SimMatrix
from sim_backend.server import SimServer
from sim_backend.visa_library import SimVisaLibrary

RESOURCE = "TCPIP::192.168.1.20::5025::SOCKET"
WIRING = {"1A01": ("drive", "C0"), "1B02": ("sense", "C1"), "2C03": ("drive", "C2")}


class Link:
    def __init__(self, sim: SimMatrix, resource: str, visa_library, command_log) -> None:
        self.sim, self.resource, self.visa_library, self.command_log = sim, resource, visa_library, command_log
        self.drivers: list[Keithley707B] = []

    def connect(self, **kw) -> Keithley707B:
        drv = Keithley707B(self.resource, visa_library=self.visa_library, cards=2, timeout=300, **kw)
        self.drivers.append(drv)
        return drv

    def sent(self) -> list[str]:
        return [m for _, name, m in self.command_log if name == self.sim.name]


@pytest.fixture(params=["tcp", "inproc"])
def link(request):
    bench = SimulatedBench(film(3), "film-amr", seed=5, buses=["drive", "sense"], crosspoints=WIRING)
    sim = SimMatrix("matrix", bench, cards=2, settling_time_s=0.003)
    if request.param == "inproc":
        lib = SimVisaLibrary({RESOURCE: sim})
        lk = Link(sim, RESOURCE, lib, lib.command_log)
        try:
            yield lk
        finally:
            for d in lk.drivers:
                d.disconnect()
        return
    server = SimServer({"matrix": sim}).start()
    lk = Link(sim, server.resources["matrix"], "@py", server.command_log)
    try:
        yield lk
    finally:
        for d in lk.drivers:
            try:
                d.disconnect()
            except Exception:
                pass
        server.stop()


def test_connecting_sets_break_before_make_and_touches_no_relay(link):
    link.sim.respond('channel.close("1A01")')
    link.sim.connect_rule = MAKE_BEFORE_BREAK
    m = link.connect()
    assert link.sim.connect_rule == 1  # BREAK_BEFORE_MAKE
    assert m.connect_rule == "BREAK_BEFORE_MAKE"
    assert link.sim.bench.closed() == {"1A01"}
    assert not any("close(" in c or "open(" in c for c in link.sent()[1:])


def test_close_open_closed_round_trip_on_the_bench(link):
    m = link.connect()
    bench = link.sim.bench
    t0 = bench.clock.now
    m.close(["1A01", "1B02"])
    assert bench.closed() == {"1A01", "1B02"}
    assert m.closed() == {"1A01", "1B02"}
    assert bench.clock.now - t0 == pytest.approx(0.003)  # one settling time, waited by *OPC?
    m.exclusive_close(["2C03"])
    assert bench.closed() == {"2C03"}
    m.open_all()
    assert m.closed() == set() and bench.closed() == set()


def test_invalid_channel_sends_nothing(link):
    m = link.connect()
    before = len(link.sent())
    with pytest.raises(ChannelError, match="invalid channel id '1Q01'"):
        m.close(["1A01", "1Q01"])
    with pytest.raises(ChannelError, match="slot 3"):
        m.open(["3A01"])
    assert len(link.sent()) == before
    assert link.sim.bench.closed() == set()


def test_forbidden_channel_refused_by_the_instrument(link):
    link.connect().set_forbidden(["1A01"])
    other = link.connect()  # another session: knows nothing of the forbidden list
    with pytest.raises(InstrumentReportedError) as info:
        other.close(["1A01", "1B02"])
    assert info.value.code == -221 and "forbidden" in info.value.message
    assert link.sim.bench.closed() == set()
    assert other.forbidden() == {"1A01"}


def test_fault_error_in_queue(link):
    m = link.connect()
    link.sim.faults.error = (-350, "Queue overflow")
    with pytest.raises(InstrumentReportedError, match="Queue overflow") as info:
        m.close(["1A01"])
    assert info.value.code == -350


def test_fault_timeout(link):
    m = link.connect()
    link.sim.faults.timeout = True
    with pytest.raises(InstrumentTimeout, match="no answer"):
        m.closed()


def test_fault_drop(link):
    m = link.connect()
    link.sim.faults.drop = True
    with pytest.raises(ConnectionLost):
        m.close(["1A01"])
        m.closed()


def test_fault_garbage(link):
    m = link.connect()
    link.sim.faults.garbage = True
    with pytest.raises(BadReply, match="unreadable reply"):
        m.closed()


def test_fault_slow_within_and_beyond_timeout(link):
    m = link.connect()
    link.sim.faults.delay_s = 0.05
    t0 = time.monotonic()
    m.close(["1A01"])  # *OPC? and the error check each wait 50 ms
    assert time.monotonic() - t0 >= 0.1
    link.sim.faults.delay_s = 0.5
    with pytest.raises(InstrumentTimeout):
        m.closed()
    link.sim.faults.clear()
    time.sleep(0.5)
    assert m.closed() == {"1A01"}  # the late reply was discarded, not taken as this answer


def test_wrong_instrument_at_the_address(link):
    link.sim.idn = "KEITHLEY INSTRUMENTS,MODEL 2450,04096331,1.7.3"
    with pytest.raises(BadReply, match="not a Keithley 707B"):
        link.connect()
