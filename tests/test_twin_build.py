"""build_twin: a simulated bench and its instruments from a plain-dict spec."""
from __future__ import annotations

import copy
import time

import pytest
import pyvisa

from sim_backend.instruments.keithley707b import Keithley707B
from sim_backend.server import SimServer
from sim_backend.twin import TwinSpecError, build_twin

SPEC = {
    "topology": {"kind": "film", "n": 4},
    "preset": "film-amr",
    "seed": 11,
    "contact_resistance_ohm": 1.0,
    "source_resistance_ohm": 0.0,
    "realtime": False,
    "instruments": [
        {"name": "smu", "model": "keithley2636b", "resource": "TCPIP::192.168.1.21::5025::SOCKET",
         "channels": {"a": "drive", "b": "sense"}},
        {"name": "rs232", "model": "keithley2400", "resource": "ASRL/dev/ttyUSB0::INSTR",
         "channels": {"1": "guard"}},
        {"name": "matrix", "model": "keithley707b", "resource": "TCPIP::192.168.1.20::5025::SOCKET",
         "cards": 2, "settling_time_s": 0.002,
         "crosspoints": {"1A01": ["drive", "C0"], "1B02": ["sense", "C1"], "1C03": ["guard", "C2"]}},
    ],
}


def spec_with(**changes):
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


def test_builds_bench_and_instruments_from_the_spec():
    twin = build_twin(SPEC)
    assert twin.bench.topology.line_names == ("C0", "C1", "C2", "C3")
    assert set(twin.bench.buses) == {"drive", "sense", "guard"}
    assert twin.bench.crosspoints["1B02"] == ("sense", "C1")
    assert set(twin.instruments) == {"smu", "rs232", "matrix"}
    assert twin.by_resource["TCPIP::192.168.1.20::5025::SOCKET"] is twin.instruments["matrix"]
    matrix = twin.instruments["matrix"]
    assert isinstance(matrix, Keithley707B)
    assert (matrix.cards, matrix.settling_time_s, matrix.bench) == (2, 0.002, twin.bench)
    assert twin.matrices == {"matrix": matrix}


def test_same_seed_same_devices():
    a, b = build_twin(SPEC), build_twin(SPEC)
    assert (a.bench.true_conductances() == b.bench.true_conductances()).all()


def test_in_process_library_opens_the_bench_resource_strings():
    twin = build_twin(SPEC)
    rm = pyvisa.ResourceManager(twin.visa_library())
    try:
        res = rm.open_resource("TCPIP::192.168.1.20::5025::SOCKET", read_termination="\n", write_termination="\n")
        assert "707B" in res.query("*IDN?")
        res.write('channel.close("1A01")')
        assert twin.bench.closed() == {"1A01"}
    finally:
        rm.close()


def test_server_from_twin_puts_serial_instruments_on_a_pty():
    twin = build_twin(SPEC)
    with SimServer.from_twin(twin) as server:
        assert server.resources["rs232"].startswith("ASRL/dev/pts/")
        assert server.resources["smu"].startswith("TCPIP::127.0.0.1::")
        assert server.resources["matrix"].startswith("TCPIP::127.0.0.1::")


def test_realtime_twin_follows_wall_time_per_message():
    twin = build_twin(spec_with(realtime=True))
    rm = pyvisa.ResourceManager(twin.visa_library())
    try:
        res = rm.open_resource("TCPIP::192.168.1.20::5025::SOCKET", read_termination="\n", write_termination="\n")
        res.query("*OPC?")
        t0 = twin.bench.clock.now
        time.sleep(0.05)
        res.query("*OPC?")
        assert twin.bench.clock.now - t0 >= 0.05
    finally:
        rm.close()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"topology": {"kind": "mesh", "n": 4}}, "topology.kind"),
        ({"topology": {"kind": "film", "n": "4"}}, "topology.n"),
        ({"topology": {"kind": "film", "n": 1}}, "topology"),
        ({"topology": {"kind": "film", "n": 4, "tied": True}}, "unknown keys"),
        ({"preset": "no-such-preset"}, "preset"),
        ({"colour": "blue"}, "unknown keys"),
        ({"instruments": []}, "instruments"),
    ],
)
def test_bad_top_level_fields_are_named(change, message):
    with pytest.raises(TwinSpecError, match=message):
        build_twin(spec_with(**change))


@pytest.mark.parametrize(
    "index, change, message",
    [
        (0, {"model": "keithley9999"}, "unknown model 'keithley9999'"),
        (0, {"resource": "TCPIP::192.168.1.20::5025::SOCKET"}, "used twice"),
        (1, {"name": "smu"}, "duplicate instrument name"),
        (1, {"channels": {"1": "drive"}}, "already driven by smu.a"),
        (2, {"crosspoints": {"1Z01": ["drive", "C0"]}}, "invalid channel id '1Z01'"),
        (2, {"crosspoints": {"3A01": ["drive", "C0"]}}, "beyond cards=2"),
        (2, {"crosspoints": {"1A01": ["drive", "C9"]}}, "no device line 'C9'"),
        (2, {"crosspoints": {"1A01": "drive"}}, r"\[bus, line\]"),
    ],
)
def test_bad_instrument_fields_are_named(index, change, message):
    spec = copy.deepcopy(SPEC)
    spec["instruments"][index].update(change)
    with pytest.raises(TwinSpecError, match=message):
        build_twin(spec)


def test_missing_field_is_named():
    spec = copy.deepcopy(SPEC)
    del spec["instruments"][0]["resource"]
    with pytest.raises(TwinSpecError, match=r"instruments\[0\] \(smu\) is missing 'resource'"):
        build_twin(spec)
