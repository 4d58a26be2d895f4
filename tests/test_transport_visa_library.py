"""SimVisaLibrary: a pyvisa library opening simulated instruments by bench resource strings."""
from __future__ import annotations

import pytest
import pyvisa
from pymeasure.adapters import VISAAdapter
from pyvisa.constants import StatusCode
from pyvisa.errors import VisaIOError

from sim_backend.visa_library import SimVisaLibrary
from test_transport_links import Echo


@pytest.fixture
def rm():
    lib = SimVisaLibrary({
        "TCPIP::192.168.1.30::5025::SOCKET": Echo("lan"),
        "GPIB0::24::INSTR": Echo("gpib"),
        "ASRL/dev/ttyUSB0::INSTR": Echo("serial"),
        "USB0::0x05E6::0x2450::04096331::INSTR": Echo("usb"),
    })
    manager = pyvisa.ResourceManager(lib)
    try:
        yield manager
    finally:
        manager.close()


def test_lists_and_opens_by_bench_resource_strings(rm):
    listed = rm.list_resources("?*")
    assert "TCPIP0::192.168.1.30::5025::SOCKET" in listed
    assert "GPIB0::24::INSTR" in listed
    assert rm.list_resources("GPIB?*") == ("GPIB0::24::INSTR",)
    for resource, name in [
        ("TCPIP::192.168.1.30::5025::SOCKET", "lan"),
        ("TCPIP0::192.168.1.30::5025::SOCKET", "lan"),  # the same resource, board spelled out
        ("GPIB::24::INSTR", "gpib"),
        ("ASRL/dev/ttyUSB0::INSTR", "serial"),
        ("USB0::0x05E6::0x2450::04096331::INSTR", "usb"),
    ]:
        res = rm.open_resource(resource, read_termination="\n", write_termination="\n")
        res.write(f"SET {name}")
        assert res.query("GET?") == name
        res.close()
    assert [n for _, n, m in rm.visalib.command_log if m == "GET?"] == [
        "lan", "lan", "gpib", "serial", "usb"
    ]


def test_unknown_resource_is_not_found(rm):
    with pytest.raises(VisaIOError) as info:
        rm.open_resource("TCPIP::10.0.0.1::5025::SOCKET")
    assert info.value.error_code == StatusCode.error_resource_not_found


def test_gpib_end_indicator_ends_a_read_without_termination(rm):
    res = rm.open_resource("GPIB0::24::INSTR")  # no read_termination: END marks the message end
    res.write("*IDN?")
    assert res.read_raw() == b"hopbench,Echo,0,1\n"


def test_socket_without_termination_waits_for_timeout(rm):
    res = rm.open_resource("TCPIP::192.168.1.30::5025::SOCKET", write_termination="\n", timeout=50)
    res.read_termination = None  # a raw socket has no END: only a termchar ends a read
    res.write("*IDN?")
    with pytest.raises(VisaIOError) as info:
        res.read()
    assert info.value.error_code == StatusCode.error_timeout


def test_read_bytes_and_max_count(rm):
    res = rm.open_resource("TCPIP::192.168.1.30::5025::SOCKET", read_termination="\n", write_termination="\n")
    res.write("*IDN?")
    assert res.read_bytes(8) == b"hopbench"
    assert res.read() == ",Echo,0,1"


def test_each_library_serves_its_own_instruments():
    a, b = Echo("a"), Echo("b")
    lib_a = SimVisaLibrary({"GPIB0::1::INSTR": a})
    lib_b = SimVisaLibrary({"GPIB0::1::INSTR": b})
    assert lib_a is not lib_b
    rm_a, rm_b = pyvisa.ResourceManager(lib_a), pyvisa.ResourceManager(lib_b)
    try:
        rm_a.open_resource("GPIB0::1::INSTR", write_termination="\n").write("SET x")
        assert (a.value, b.value) == ("x", "0")
        assert lib_b.command_log == []
    finally:
        rm_a.close()
        rm_b.close()


def test_pymeasure_visa_adapter_uses_the_library(rm):
    adapter = VISAAdapter(
        "GPIB0::24::INSTR", visa_library=rm.visalib, read_termination="\n", write_termination="\n"
    )
    adapter.write("SET 3")
    adapter.write("GET?")
    assert adapter.read() == "3"
    adapter.close()


def test_closed_session_is_invalid(rm):
    res = rm.open_resource("GPIB0::24::INSTR")
    session = res.session
    res.close()
    with pytest.raises(VisaIOError) as info:
        rm.visalib.write(session, b"*IDN?\n")
    assert info.value.error_code == StatusCode.error_invalid_object
