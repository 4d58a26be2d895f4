"""Done-when test of the instrument layer: every simulated instrument of a twin is opened
through pyvisa the way a bench file addresses a real one, a voltage is set across one known
simulated device through the switch matrix (every other line guarded on a 0 V bus), and the
measured current obeys Ohm's law within the read noise. One test body, two transports:
TCP sockets plus an RS-232 pseudo-terminal (pyvisa-py), and the in-process VISA library.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

from drivers import open_instrument
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

READ_V = 0.1
SPEC = {
    "topology": {"kind": "film", "n": 4},
    "preset": "film-amr",
    "seed": 2024,
    "contact_resistance_ohm": 1.0,
    "source_resistance_ohm": 0.0,
    "instruments": [
        {"name": "smu", "model": "keithley2636b", "resource": "TCPIP::192.168.1.21::5025::SOCKET",
         "channels": {"a": "drive", "b": "spare"}},
        {"name": "meter", "model": "keysight_b2902a", "resource": "TCPIP::192.168.1.22::5025::SOCKET",
         "channels": {"1": "sense", "2": "spare2"}},
        {"name": "guard", "model": "keithley2450", "resource": "USB0::0x05E6::0x2450::04096331::INSTR",
         "channels": {"1": "guard"}},
        {"name": "guard_rs232", "model": "keithley2400", "resource": "ASRL/dev/ttyUSB0::INSTR",
         "channels": {"1": "guard2"}},
        {"name": "matrix", "model": "keithley707b", "resource": "TCPIP::192.168.1.20::5025::SOCKET",
         "cards": 1,
         "crosspoints": {"1A01": ["drive", "C0"], "1B02": ["sense", "C1"],
                         "1C03": ["guard", "C2"], "1D04": ["guard2", "C3"]}},
    ],
}


@contextmanager
def opened(twin, transport):
    """{name: driver} for every instrument of the twin, closed afterwards."""
    drivers = {}
    server = None
    try:
        if transport == "tcp":
            server = SimServer.from_twin(twin).start()
            addresses, library = server.resources, "@py"
        else:
            addresses = {e["name"]: e["resource"] for e in twin.spec["instruments"]}
            library = twin.visa_library()
        for entry in twin.spec["instruments"]:
            kwargs = {"cards": entry["cards"]} if "cards" in entry else {}
            drivers[entry["name"]] = open_instrument(
                entry["model"], addresses[entry["name"]], visa_library=library, timeout=2000, **kwargs
            )
        yield drivers
    finally:
        for drv in drivers.values():
            drv.adapter.close()
        if server is not None:
            server.stop()


@pytest.mark.parametrize("transport", ["tcp", "inproc"])
def test_ohms_law_through_the_matrix(transport):
    twin = build_twin(SPEC)
    with opened(twin, transport) as inst:
        assert set(inst) == set(twin.instruments)
        drive = inst["smu"].channels()["a"]
        sense = inst["meter"].channels()["1"]
        guards = [inst["guard"].channels()["1"], inst["guard_rs232"].channels()["1"]]
        sources = [drive, sense, *guards]
        for ch in sources:  # compliance before any output goes on, all at 0 V
            ch.set_current_limit(1e-3)
            ch.set_voltage(0.0)
        inst["matrix"].close(["1A01", "1B02", "1C03", "1D04"])  # cold: every output still off
        assert twin.bench.hot_switches == 0
        for ch in sources:
            ch.set_output(True)
        drive.set_voltage(READ_V)

        at_sense = sense.measure()
        at_drive = drive.measure()

        drive.set_voltage(0.0)
        for ch in sources:
            ch.set_output(False)
        inst["matrix"].open_all()
        assert twin.bench.closed() == set()

    topo = twin.bench.topology
    g_true = twin.bench.true_conductances()
    g01 = g_true[topo.device_index(0, 1)]
    sigma = twin.bench.preset.read_noise_window * twin.bench.array.window_S
    # guarded: only device C0-C1 feeds the sense line, so its current is -V·G01
    assert not at_sense.compliance and not at_drive.compliance
    g_measured = -at_sense.current / (at_drive.voltage - at_sense.voltage)
    assert abs(g_measured - g01) < 5 * sigma  # sigma: 3 % of the 2 % AMR window
    # the drive also feeds the guarded paths C0-C2 and C0-C3: the sneak current the guard
    # sinks instead of the sense channel
    g_all = sum(g_true[topo.device_index(0, j)] for j in (1, 2, 3))
    assert at_drive.current == pytest.approx(READ_V * g_all, rel=0.01)
    assert np.isclose(at_drive.voltage, READ_V, atol=1e-3)
