"""QCoDeS's Keithley drivers against the simulated bench, over TCP and in process.

Each peer sets up a voltage source with a current limit, measures the current through the
twin's one device (Ohm's law within the read noise), reads every parameter it declares
(``get()`` on each, then ``snapshot(update=True)`` with no parameter left un-updated) and
leaves nothing in the instrument's error queue. What the drivers need set first is set as
their users would: the user-delay slot (``user_number``), the 2450 sweep axes
(``sweep_setup``), the output on (the 2400's reads and the 2450's measurements refuse an
off output).
"""
from __future__ import annotations

import logging

import numpy as np
import pytest

qcodes = pytest.importorskip("qcodes")
from qcodes.instrument_drivers.Keithley import Keithley2400, Keithley2450, Keithley2636B  # noqa: E402

from test_peer_common import TRANSPORTS, device_conductance, reach, read_sigma, wired_twin  # noqa: E402

READ_V = 0.1


def every_parameter(inst, prefix=""):
    """{full name: value} of every parameter that a snapshot would get, recursively."""
    out = {}
    for name, p in inst.parameters.items():
        if getattr(p, "_snapshot_get", True) and getattr(p, "gettable", True):
            out[prefix + name] = p.get()
    for sub_name, sub in inst.submodules.items():
        if hasattr(sub, "parameters"):
            out.update(every_parameter(sub, f"{prefix}{sub_name}."))
    return out


def check_snapshot(inst, caplog):
    with caplog.at_level(logging.WARNING):
        inst.snapshot(update=True)
    assert not [r for r in caplog.records if "Could not update" in r.getMessage()]


def check_current(twin, current):
    assert current == pytest.approx(READ_V * device_conductance(twin), abs=5 * READ_V * read_sigma(twin) + 1e-12)


@pytest.fixture
def opened():
    made = []

    def open_(cls, name, resources, library):
        inst = cls(name, resources["smu"], visalib=library, timeout=2)
        made.append(inst)
        return inst

    yield open_
    for inst in made:
        inst.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qcodes_2450(transport, opened, caplog):
    twin = wired_twin("keithley2450")
    with reach(twin, transport) as (resources, library):
        k = opened(Keithley2450, f"k2450_{transport}", resources, library)
        k.source_function("voltage")
        k.sense_function("current")
        k.source.limit(1e-3)
        k.source.voltage(READ_V)
        k.output_enabled(True)
        check_current(twin, k.sense.current())
        for sub in ("_source_voltage", "_source_current", "_sense_current", "_sense_voltage", "_sense_resistance"):
            k.submodules[sub].user_number(1)
        for sub in ("_source_voltage", "_source_current"):
            k.submodules[sub].sweep_setup(0.0, READ_V, 5)
        values = every_parameter(k)
        assert len(values) >= 60
        assert values["_source_voltage.limit"] == pytest.approx(1e-3) and values["line_frequency"] == "50"
        check_snapshot(k, caplog)
        sweep = k.sense.sweep()  # :SOUR:SWE:VOLT:LIN ..., :INIT, *WAI, :TRAC:DATA?
        assert np.allclose(sweep, np.linspace(0, READ_V, 5) * device_conductance(twin), atol=5 * READ_V * read_sigma(twin))
        k.output_enabled(False)
    assert not twin.instruments["smu"].error_queue


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qcodes_2400(transport, opened, caplog):
    twin = wired_twin("keithley2400")
    with reach(twin, transport) as (resources, library):
        k = opened(Keithley2400, f"k2400_{transport}", resources, library)
        k.mode("VOLT")
        k.compliancei(1e-3)
        k.volt(READ_V)
        k.output(True)
        check_current(twin, k.curr())
        values = every_parameter(k)
        assert len(values) >= 12 and values["compliancei"] == pytest.approx(1e-3)
        assert values["sense"] == '"CURR:DC"'
        check_snapshot(k, caplog)
        k.output(False)
    assert not twin.instruments["smu"].error_queue


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_qcodes_2636b(transport, opened, caplog):
    twin = wired_twin("keithley2636b", {"a": "drive", "b": "spare"})
    with reach(twin, transport) as (resources, library):
        k = opened(Keithley2636B, f"k2636_{transport}", resources, library)
        k.smua.mode("voltage")
        k.smua.limiti(1e-3)
        k.smua.volt(READ_V)
        k.smua.output("on")
        check_current(twin, k.smua.curr())
        assert k.smua.curr.measurement_status == "No error occured."
        values = every_parameter(k)
        assert len(values) >= 40 and values["smua.limiti"] == pytest.approx(1e-3)
        check_snapshot(k, caplog)
        k.smua.timetrace_npts(20)
        k.smua.timetrace_dt(0.05)
        trace = k.smua.timetrace()  # measure.count/interval, nvbuffer1, REAL32 printbuffer
        assert trace.shape == (20,)
        assert np.allclose(trace, READ_V * device_conductance(twin), atol=5 * READ_V * read_sigma(twin))
        k.smua.output("off")
    assert not twin.instruments["smu"].error_queue
