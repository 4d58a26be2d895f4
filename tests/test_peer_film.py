"""A peer's guarded measurement of one film path: raw 707B TSP for the relays, PyMeasure's
Keithley2600 for the drive and sense channels, PyMeasure's Keithley2450 for the guard.

Guarded (every other contact on the 0 V guard bus), the sense current is -V·G01: the
path's own conductance. Floating (guards open), the sense current also carries the sneak
paths through the other contacts: the two-terminal conductance of the reduced network.
"""
from __future__ import annotations

import numpy as np
import pytest
import pyvisa
from pymeasure.instruments.keithley import Keithley2450, Keithley2600

from test_peer_common import MATRIX_RESOURCE, TERMINATIONS, TRANSPORTS, reach, read_sigma
from sim_backend.twin import build_twin

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")
READ_V = 0.1
SPEC = {
    "topology": {"kind": "film", "n": 4}, "preset": "film-amr", "seed": 5,
    "contact_resistance_ohm": 0.0, "source_resistance_ohm": 0.0, "realtime": False,
    "instruments": [
        {"name": "smu", "model": "keithley2636b", "resource": "TCPIP::192.168.1.21::5025::SOCKET",
         "channels": {"a": "drive", "b": "sense"}},
        {"name": "guard", "model": "keithley2450", "resource": "TCPIP::192.168.1.22::5025::SOCKET",
         "channels": {"1": "guard"}},
        {"name": "matrix", "model": "keithley707b", "resource": MATRIX_RESOURCE, "cards": 1,
         "crosspoints": {"1A01": ["drive", "C0"], "1B02": ["sense", "C1"], "1C03": ["guard", "C2"],
                         "1C04": ["guard", "C3"]}},
    ],
}


def sneak_conductance(twin) -> float:
    """Two-terminal C0-C1 conductance with C2, C3 floating (Kron reduction of the film)."""
    topo, g = twin.bench.topology, twin.bench.true_conductances()
    lap = np.zeros((4, 4))
    for i in range(4):
        for j in range(i + 1, 4):
            gij = g[topo.device_index(i, j)]
            lap[i, j] = lap[j, i] = -gij
            lap[i, i] += gij
            lap[j, j] += gij
    keep, free = [0, 1], [2, 3]
    red = lap[np.ix_(keep, keep)] - lap[np.ix_(keep, free)] @ np.linalg.solve(lap[np.ix_(free, free)], lap[np.ix_(free, keep)])
    return float(-red[0, 1])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_guarded_path_gives_its_conductance_and_floating_shows_sneak_paths(transport):
    twin = build_twin(SPEC)
    with reach(twin, transport) as (resources, library):
        rm = pyvisa.ResourceManager(library)
        matrix = rm.open_resource(resources["matrix"], timeout=2000, **TERMINATIONS)
        smu = Keithley2600(resources["smu"], visa_library=library, timeout=2000, **TERMINATIONS)
        guard = Keithley2450(resources["guard"], visa_library=library, timeout=2000, **TERMINATIONS)
        try:
            matrix.write("channel.connectrule = channel.BREAK_BEFORE_MAKE")
            for ch in (smu.ChA, smu.ChB):
                ch.apply_voltage(compliance_current=1e-2)
                ch.source_voltage = 0.0
            guard.apply_voltage(compliance_current=1e-2)
            guard.source_voltage = 0.0
            matrix.write('channel.exclusiveclose("1A01,1B02,1C03,1C04")')  # cold: outputs off
            assert matrix.query("print(channel.getclose('allslots'))") == "1A01;1B02;1C03;1C04"
            assert matrix.query("*OPC?") == "1"
            for ch in (smu.ChA, smu.ChB):
                ch.source_output = "ON"
            guard.enable_source()
            assert guard.ask("*OPC?").strip() == "1"  # each instrument runs on its own: wait for the guard
            smu.ChA.source_voltage = READ_V
            guarded = -smu.ChB.current / READ_V
            matrix.write('channel.open("1C03,1C04")')  # the guards let go: C2, C3 float
            assert matrix.query("*OPC?") == "1"
            floating = -smu.ChB.current / READ_V
            smu.ChA.source_voltage = 0.0
            for ch in (smu.ChA, smu.ChB):
                ch.source_output = "OFF"
            guard.disable_source()
            matrix.write('channel.open("allslots")')
            assert matrix.query("print(errorqueue.count)") == "0.00000e+00"
        finally:
            smu.adapter.close()
            guard.adapter.close()
            rm.close()
    g01 = float(twin.bench.true_conductances()[twin.bench.topology.device_index(0, 1)])
    sigma = read_sigma(twin)
    assert guarded == pytest.approx(g01, abs=5 * sigma)
    assert floating == pytest.approx(sneak_conductance(twin), abs=5 * sigma)
    assert floating - g01 > 20 * sigma  # the sneak paths are plain to see
