"""Every fault a simulated instrument can be told to commit ends in a clear, typed driver
error, whichever transport carries it: source-meters (TSP 2636B, SCPI 2450) and the matrix,
over TCP sockets and the in-process VISA library."""
from __future__ import annotations

import pytest

from drivers import open_instrument
from drivers.errors import (
    BadReply,
    ComplianceTripped,
    ConnectionLost,
    InstrumentReportedError,
    InstrumentTimeout,
)
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

SPEC = {
    "topology": {"kind": "film", "n": 3},
    "preset": "film-amr",
    "seed": 1,
    "instruments": [
        {"name": "tsp", "model": "keithley2636b", "resource": "TCPIP::192.168.1.21::5025::SOCKET",
         "channels": {"a": "drive", "b": "sense"}},
        {"name": "scpi", "model": "keithley2450", "resource": "TCPIP::192.168.1.23::5025::SOCKET",
         "channels": {"1": "guard"}},
        {"name": "matrix", "model": "keithley707b", "resource": "TCPIP::192.168.1.20::5025::SOCKET",
         "cards": 1, "crosspoints": {"1A01": ["drive", "C0"], "1B02": ["sense", "C1"],
                                     "1C03": ["guard", "C2"]}},
    ],
}
CHANNEL = {"tsp": "a", "scpi": "1"}


@pytest.fixture(params=["tcp", "inproc"])
def setup(request):
    """(twin, open(name) -> driver) with drivers closed and the server stopped afterwards."""
    twin = build_twin(SPEC)
    server = None
    opened = []
    if request.param == "tcp":
        server = SimServer.from_twin(twin).start()
        addresses, library = server.resources, "@py"
    else:
        addresses = {e["name"]: e["resource"] for e in SPEC["instruments"]}
        library = twin.visa_library()
    models = {e["name"]: e["model"] for e in SPEC["instruments"]}

    def open_(name):
        drv = open_instrument(models[name], addresses[name], visa_library=library, timeout=250)
        opened.append(drv)
        return drv

    try:
        yield twin, open_
    finally:
        for drv in opened:
            try:
                drv.adapter.close()
            except Exception:
                pass
        if server is not None:
            server.stop()


def _ready_channel(open_, name):
    ch = open_(name).channels()[CHANNEL[name]]
    ch.set_current_limit(1e-3)
    ch.set_voltage(0.0)
    ch.set_output(True)
    return ch


@pytest.mark.parametrize("name", ["tsp", "scpi"])
@pytest.mark.parametrize(
    "fault, error",
    [
        ({"timeout": True}, InstrumentTimeout),
        ({"drop": True}, ConnectionLost),
        ({"garbage": True}, BadReply),
        ({"delay_s": 1.0}, InstrumentTimeout),
    ],
    ids=["timeout", "drop", "garbage", "slow"],
)
def test_source_meter_link_faults(setup, name, fault, error):
    twin, open_ = setup
    ch = _ready_channel(open_, name)
    for key, value in fault.items():
        setattr(twin.instruments[name].faults, key, value)
    with pytest.raises(error):
        ch.measure()
        ch.measure()  # a TCP reset may only show at the next exchange
    twin.instruments[name].faults.clear()


@pytest.mark.parametrize("name", ["tsp", "scpi"])
def test_source_meter_error_in_queue(setup, name):
    twin, open_ = setup
    ch = _ready_channel(open_, name)
    twin.instruments[name].faults.error = (-350, "Queue overflow")
    with pytest.raises(InstrumentReportedError) as info:
        ch.set_voltage(0.05)
    assert info.value.code == -350


@pytest.mark.parametrize("name", ["tsp", "scpi"])
def test_source_meter_compliance(setup, name):
    twin, open_ = setup
    ch = _ready_channel(open_, name)
    twin.instruments[name].faults.compliance = True
    assert ch.measure().compliance is True
    with pytest.raises(ComplianceTripped):
        ch.measure_current()


@pytest.mark.parametrize(
    "fault, error",
    [
        ({"timeout": True}, InstrumentTimeout),
        ({"drop": True}, ConnectionLost),
        ({"garbage": True}, BadReply),
        ({"delay_s": 1.0}, InstrumentTimeout),
        ({"error": (-350, "Queue overflow")}, InstrumentReportedError),
    ],
    ids=["timeout", "drop", "garbage", "slow", "error"],
)
def test_matrix_faults(setup, fault, error):
    twin, open_ = setup
    matrix = open_("matrix")
    for key, value in fault.items():
        setattr(twin.instruments["matrix"].faults, key, value)
    with pytest.raises(error):
        matrix.close(["1A01"])
        matrix.closed()
    twin.instruments["matrix"].faults.clear()
