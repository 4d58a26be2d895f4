"""Every source-meter driver against its simulated instrument, through real pyvisa.

The same test bodies run in process (the twin's VISA library) and over the links a lab
uses (raw TCP sockets, and a pseudo-terminal for the RS-232 2400, via pyvisa-py). One ideal
device (10 kΩ) joins the driven bus to a bus a second SMU holds at 0 V, so every reading
must be Ohm's law, and every fault the simulator can stage must surface as a typed error.
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import pytest

from drivers import open_instrument
from drivers.errors import (
    BadReply,
    ComplianceTripped,
    ConnectionLost,
    InstrumentError,
    InstrumentReportedError,
    InstrumentTimeout,
    WrongLanguageMode,
)
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

DUTS = {  # model: (bench resource, channel wiring, channel under test)
    "keithley2450": ("USB0::0x05E6::0x2450::04096331::INSTR", {"1": "drive"}, "1"),
    "keithley2400": ("ASRL/dev/ttyUSB0::INSTR", {"1": "drive"}, "1"),
    "keithley2636b": ("TCPIP::192.168.1.21::5025::SOCKET", {"a": "aux", "b": "drive"}, "b"),
    "keysight_b2902a": ("TCPIP::192.168.1.22::5025::SOCKET", {"1": "aux", "2": "drive"}, "2"),
}
GROUND = {"name": "gnd", "model": "keysight_b2901a", "resource": "GPIB0::23::INSTR", "channels": {"1": "ground"}}


def spec(model: str) -> dict:
    resource, channels, _ = DUTS[model]
    return {
        "topology": {"kind": "film", "n": 2}, "preset": "ideal", "seed": 11,
        "contact_resistance_ohm": 0.0,
        "instruments": [
            {"name": "dut", "model": model, "resource": resource, "channels": channels},
            GROUND,
            {"name": "matrix", "model": "keithley707b", "resource": "TCPIP::192.168.1.20::5025::SOCKET",
             "cards": 1, "crosspoints": {"1A01": ["drive", "C0"], "1B02": ["ground", "C1"]}},
        ],
    }


@contextmanager
def opened(twin, transport: str, names=("dut", "gnd"), timeout_ms: int = 1000):
    """Drivers for ``names`` over ``transport``, plus the command log the transport keeps."""
    server = None
    drivers = {}
    try:
        if transport == "tcp":
            server = SimServer.from_twin(twin).start()
            addresses, library, log = server.resources, "@py", server.command_log
        else:
            addresses = {e["name"]: e["resource"] for e in twin.spec["instruments"]}
            library = twin.visa_library()
            log = library.command_log
        for name in names:
            model = next(e["model"] for e in twin.spec["instruments"] if e["name"] == name)
            drivers[name] = open_instrument(model, addresses[name], visa_library=library,
                                            timeout=timeout_ms, name=name)
        yield drivers, log
    finally:
        for drv in drivers.values():
            try:
                drv.close()
            except InstrumentError:
                pass  # a dropped link is already closed
        if server is not None:
            server.stop()


def ground(drivers):
    g = drivers["gnd"].channels()["1"]
    g.set_current_limit(1e-3)
    g.set_voltage(0.0)
    g.set_output(True)


@pytest.mark.parametrize("transport", ["inproc", "tcp"])
@pytest.mark.parametrize("model", sorted(DUTS))
def test_ohms_law_compliance_and_pulses(model, transport):
    twin = build_twin(spec(model))
    bench = twin.bench
    bench.close(["1A01", "1B02"])
    with opened(twin, transport) as (drivers, _):
        dut = drivers["dut"]
        dut.sleep = bench.advance  # the lab injects its clock the same way
        ground(drivers)
        ch = dut.channels()[DUTS[model][2]]
        ch.set_current_limit(1e-3)
        ch.set_voltage(0.05)
        ch.set_nplc(1)
        ch.set_output(True)
        assert ch.output_enabled() is True
        g = float(bench.true_conductances()[0])
        r = ch.measure()
        assert r.voltage == pytest.approx(0.05) and not r.compliance
        assert r.current == pytest.approx(0.05 * g, rel=1e-5)
        assert ch.measure_current() == pytest.approx(0.05 * g, rel=1e-5)
        assert ch.measure_voltage() == pytest.approx(0.05)

        ch.set_voltage(0.0)
        t0 = bench.clock.now
        ch.pulse(0.2, 2e-3)
        assert bench.clock.now - t0 >= 2e-3
        assert bench.bus_state("drive")["level"] == 0.0

        ch.set_current_limit(1e-6)  # 0.2 V across 10 kΩ wants 20 µA
        with pytest.raises(ComplianceTripped, match="dut: channel .*pulse hit the current limit"):
            ch.pulse(0.2, 1e-3)
        ch.set_voltage(0.2)
        r = ch.measure()
        assert r.compliance and r.current == pytest.approx(1e-6, rel=1e-6) and r.voltage < 0.2
        with pytest.raises(ComplianceTripped):
            ch.measure_current()

        ch.set_voltage(0.0)
        ch.set_output(False)
        assert bench.bus_state("drive")["output"] is False
        assert ch.output_enabled() is False


@pytest.mark.parametrize("model", sorted(DUTS))
def test_connecting_leaves_a_live_output_alone(model):
    twin = build_twin(spec(model))
    sim = twin.instruments["dut"]
    cid = DUTS[model][2]
    sim.smu[cid].set_limit(1e-3)
    sim.smu[cid].set_level(0.05)
    sim.smu[cid].set_output(True)  # left on by an earlier session
    with opened(twin, "inproc", names=("dut",)) as (drivers, log):
        ch = drivers["dut"].channels()[cid]
        assert ch.output_enabled() is True
        ch.set_nplc(1)  # first use configures the channel
        assert twin.bench.bus_state("drive") == pytest.approx(
            {"level": 0.05, "compliance": 1e-3, "output": True, "resistance_ohm": 0.0})
        sent = [m for _, _, m in log]
        n = len(sent)
        with pytest.raises(ValueError):
            ch.set_voltage(1e4)  # refused before anything is sent
        with pytest.raises(ValueError):
            ch.pulse(1e4, 1e-3)
        assert len(log) == n
    output_set = re.compile(r"^:?OUTP(UT)?\d?(:STAT(E)?)?\s", re.I)  # not :OUTP:ON:AUTO, not queries
    assert not any(output_set.match(m) for m in sent)
    assert not any(".source.output =" in m or m.startswith("*RST") for m in sent)


def test_2450_in_tsp_mode_is_refused_on_connect():
    twin = build_twin(spec("keithley2450"))
    twin.instruments["dut"].language = "TSP"
    with pytest.raises(WrongLanguageMode, match="dut: command set is 'TSP'"):
        with opened(twin, "inproc", names=("dut",)):
            pass


def test_2400_cannot_read_with_its_output_off():
    twin = build_twin(spec("keithley2400"))
    with opened(twin, "inproc", names=("dut",)) as (drivers, log):
        ch = drivers["dut"].channels()["1"]
        ch.set_current_limit(1e-3)
        n = len(log)
        with pytest.raises(InstrumentError, match=r"\+803"):
            ch.measure()
        assert len(log) == n


# -- faults -----------------------------------------------------------------------------------
def _prepared(drivers, model):
    ch = drivers["dut"].channels()[DUTS[model][2]]
    ch.set_current_limit(1e-3)
    return ch


@pytest.mark.parametrize("model", sorted(DUTS))
def test_faults_in_process(model):
    twin = build_twin(spec(model))
    sim = twin.instruments["dut"]
    with opened(twin, "inproc", names=("dut",), timeout_ms=150) as (drivers, _):
        ch = _prepared(drivers, model)

        sim.faults.garbage = True
        with pytest.raises(BadReply, match="dut"):
            ch.output_enabled()
        sim.faults.clear()

        sim.faults.error = (-350, "Queue overflow")
        with pytest.raises(InstrumentReportedError) as info:
            ch.set_nplc(1)
        assert info.value.code == -350 and info.value.message == "Queue overflow"
        sim.faults.clear()

        sim.faults.delay_s = 0.02  # slow, within the timeout: still fine
        assert ch.output_enabled() is False
        sim.faults.delay_s = 0.3
        with pytest.raises(InstrumentTimeout, match="dut"):
            ch.output_enabled()
        sim.faults.clear()

        sim.faults.timeout = True
        with pytest.raises(InstrumentTimeout, match="dut"):
            ch.output_enabled()
        sim.faults.clear()

        sim.faults.drop = True
        with pytest.raises(ConnectionLost, match="dut"):
            ch.output_enabled()


@pytest.mark.parametrize("model", ["keithley2636b", "keithley2400"])  # a socket and a pty
def test_faults_over_real_links(model):
    twin = build_twin(spec(model))
    sim = twin.instruments["dut"]
    with opened(twin, "tcp", names=("dut",), timeout_ms=150) as (drivers, _):
        ch = _prepared(drivers, model)
        sim.faults.garbage = True
        with pytest.raises(BadReply):
            ch.output_enabled()
        sim.faults.clear()
        sim.faults.timeout = True
        with pytest.raises(InstrumentTimeout):
            ch.output_enabled()
        sim.faults.clear()
        sim.faults.drop = True
        with pytest.raises(ConnectionLost):
            ch.output_enabled()
