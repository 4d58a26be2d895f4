"""What the peer-driver tests share: a one-device simulated bench, both transports, property walks.

A peer driver (PyMeasure's or QCoDeS's, not ours) drives bus ``drive`` of a twin whose
matrix joins ``drive`` to contact C0 and a grounded bus ``gnd`` to C1 of a two-contact film:
one device, whose true conductance the twin knows. The test opens the peer over TCP (a
:class:`SimServer` on 127.0.0.1, started and stopped here) or over the in-process VISA
library, by the same resource string.
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pyvisa

from sim_backend.server import SimServer
from sim_backend.twin import build_twin

TRANSPORTS = ["tcp", "inproc"]
TERMINATIONS = {"read_termination": "\n", "write_termination": "\n"}
SMU_RESOURCE = "TCPIP::192.168.1.30::5025::SOCKET"
MATRIX_RESOURCE = "TCPIP::192.168.1.20::5025::SOCKET"


def one_device_spec(model: str, channels: dict[str, str], n: int = 2) -> dict[str, Any]:
    """A film of ``n`` contacts; the SMU's channels drive the buses named in ``channels``."""
    crosspoints = {"1A01": ["drive", "C0"], "1B02": ["gnd", "C1"]}
    for k in range(2, n):
        crosspoints[f"1{'ABCDEFGH'[k]}{k + 1:02d}"] = [f"guard{k}", f"C{k}"]
    return {
        "topology": {"kind": "film", "n": n},
        "preset": "film-amr",
        "seed": 99,
        "contact_resistance_ohm": 0.0,
        "source_resistance_ohm": 0.0,
        "realtime": False,
        "instruments": [
            {"name": "smu", "model": model, "resource": SMU_RESOURCE, "channels": channels},
            {"name": "matrix", "model": "keithley707b", "resource": MATRIX_RESOURCE, "cards": 1,
             "crosspoints": crosspoints},
        ],
    }


def wired_twin(model: str, channels: dict[str, str] | None = None) -> Any:
    """The one-device twin with its relays closed and C1 held at 0 V (a grounded bus)."""
    twin = build_twin(one_device_spec(model, channels or {"1": "drive"}))
    twin.instruments["matrix"].respond('channel.close("1A01,1B02")')
    twin.bench.set_compliance("gnd", 0.1)
    twin.bench.set_output("gnd", True)
    return twin


def device_conductance(twin: Any) -> float:
    return float(twin.bench.true_conductances()[0])


def read_sigma(twin: Any) -> float:
    return float(twin.bench.preset.read_noise_window * twin.bench.array.window_S)


@contextmanager
def reach(twin: Any, transport: str) -> Iterator[tuple[dict[str, str], Any]]:
    """({instrument name: resource}, visa library) for pyvisa, whichever transport."""
    if transport == "tcp":
        server = SimServer(twin.instruments, host="127.0.0.1").start()
        try:
            yield server.resources, "@py"
        finally:
            server.stop()
    else:
        yield {e["name"]: e["resource"] for e in twin.spec["instruments"]}, twin.visa_library()


def pymeasure_getters(obj: Any) -> dict[str, str]:
    """{property name: get command} of every PyMeasure control/measurement on ``obj``'s class."""
    out = {}
    for cls in reversed(type(obj).__mro__):
        for name, attr in vars(cls).items():
            fget = getattr(attr, "fget", None)
            if fget is None or name.startswith("_"):
                continue
            try:
                params = inspect.signature(fget).parameters
            except (TypeError, ValueError):
                continue
            command = params.get("get_command")
            if command is not None and command.default is not None:
                out[name] = command.default
    return out


def read_all(obj: Any, skip: set[str] = frozenset()) -> tuple[dict[str, Any], dict[str, str]]:
    """Read every PyMeasure getter: ({name: value}, {name: error})."""
    values, failures = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymeasure's deprecated aliases warn when read
        for name in sorted(pymeasure_getters(obj)):
            if name in skip:
                continue
            try:
                values[name] = getattr(obj, name)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, not just the first
                failures[name] = f"{type(exc).__name__}: {exc}"
    return values, failures


def raw(resources: dict[str, str], library: Any, name: str) -> tuple[Any, Any]:
    """(resource manager, message resource) for raw SCPI/TSP."""
    rm = pyvisa.ResourceManager(library)
    res = rm.open_resource(resources[name], read_termination="\n", write_termination="\n", timeout=3000)
    return rm, res


def test_pymeasure_getter_walk_finds_controls_and_measurements():
    from pymeasure.instruments.keithley import Keithley2400

    getters = pymeasure_getters(Keithley2400.__new__(Keithley2400))
    assert getters["source_voltage"] == ":SOURCE:VOLTAGE?" and getters["current"] == ":MEASURE:CURRENT?"
    assert "source_enabled" in getters and len(getters) > 50


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_one_device_bench_answers_on_both_transports(transport):
    twin = wired_twin("keithley2450")
    with reach(twin, transport) as (resources, library):
        rm, res = raw(resources, library, "matrix")
        try:
            assert res.query("print(channel.getclose('allslots'))") == "1A01;1B02"
        finally:
            rm.close()
