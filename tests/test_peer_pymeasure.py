"""PyMeasure's own Keithley drivers against the simulated bench, over TCP and in process.

Each peer sets up a voltage source with a current limit, measures the current through the
twin's one device (Ohm's law within the read noise) and reads back every control and
measurement getter the driver declares, with nothing left in the instrument's error queue.
``options`` (``*OPT?``) is not read on the 2450 and 2600B: their manuals list no ``*OPT?``
(2450-901-01 appendix B, 2600BS-901-01 common commands), so a real one refuses it too.
"""
from __future__ import annotations

import pytest
from pymeasure.instruments.keithley import Keithley2400, Keithley2450, Keithley2600

from test_peer_common import TERMINATIONS, TRANSPORTS, device_conductance, read_all, reach, read_sigma, wired_twin

READ_V = 0.1
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
NOT_IN_MANUAL = {"options"}  # *OPT?


def check_current(twin, current):
    assert current == pytest.approx(READ_V * device_conductance(twin), abs=5 * READ_V * read_sigma(twin) + 1e-12)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("cls, model, skip", [
    (Keithley2400, "keithley2400", set()),
    (Keithley2450, "keithley2450", NOT_IN_MANUAL),
])
def test_scpi_peer_sources_measures_and_reads_every_property(cls, model, skip, transport):
    twin = wired_twin(model)
    with reach(twin, transport) as (resources, library):
        k = cls(resources["smu"], visa_library=library, timeout=2000, **TERMINATIONS)
        try:
            k.apply_voltage(compliance_current=1e-3)
            k.source_voltage = READ_V
            k.enable_source()
            if model == "keithley2400":
                k.measure_current()  # the deprecated configure call still works
            check_current(twin, k.current)
            values, failures = read_all(k, skip)
            assert failures == {}
            assert values["source_voltage"] == pytest.approx(READ_V)
            assert values["compliance_current"] == pytest.approx(1e-3)
            assert values["source_enabled"] is True
            assert k.check_errors() == []
            k.shutdown()
        finally:
            k.adapter.close()
    assert not twin.instruments["smu"].error_queue
    assert len(values) >= (62 if model == "keithley2400" else 38)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_2600_peer_sources_measures_and_reads_every_property(transport):
    twin = wired_twin("keithley2636b", {"a": "drive", "b": "spare"})
    with reach(twin, transport) as (resources, library):
        k = Keithley2600(resources["smu"], visa_library=library, timeout=2000, **TERMINATIONS)
        try:
            k.ChA.apply_voltage(compliance_current=1e-3)
            k.ChA.measure_current(nplc=1)
            k.ChA.source_voltage = READ_V
            k.ChA.source_output = "ON"
            check_current(twin, k.ChA.current)
            total = 0
            for channel in (k.ChA, k.ChB):
                values, failures = read_all(channel)
                assert failures == {}
                total += len(values)
            values, failures = read_all(k, NOT_IN_MANUAL)
            assert failures == {}
            total += len(values)
            assert k.next_error[0] == 0
            k.ChA.source_output = "OFF"
        finally:
            k.adapter.close()
    assert not twin.instruments["smu"].error_queue
    assert total >= 34
