"""SimServer: loopback by default, one port per instrument, clean stop, reconnect after a drop."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import pyvisa

from sim_backend.server import SimServer
from test_transport_links import Echo


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _ask(resource: str, message: str) -> str:
    rm = pyvisa.ResourceManager("@py")
    try:
        res = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=500)
        try:
            return res.query(message)
        finally:
            res.close()
    finally:
        rm.close()


def test_binds_loopback_only_with_a_port_per_instrument():
    server = SimServer({"a": Echo("a"), "b": Echo("b")})
    with server:
        res = server.resources
        assert set(res) == {"a", "b"}
        ports = set()
        for name, resource in res.items():
            proto, host, port, kind = resource.split("::")
            assert (proto, host, kind) == ("TCPIP", "127.0.0.1", "SOCKET")
            ports.add(int(port))
            ep = server._endpoints[name]
            assert ep.listener.getsockname()[0] == "127.0.0.1"
        assert len(ports) == 2
        assert _ask(res["b"], "*IDN?") == Echo.idn
    assert [n for _, n, _ in server.command_log] == ["b"]


def test_stop_closes_sockets_ptys_and_threads():
    baseline_fds = _open_fds()
    baseline_threads = threading.active_count()
    server = SimServer({"lan": Echo("lan"), "rs232": Echo("rs232")}, serial_names=["rs232"])
    with server:
        lan, pty = server.resources["lan"], server.resources["rs232"]
        assert pty.startswith("ASRL/dev/pts/") and pty.endswith("::INSTR")
        assert _ask(lan, "*IDN?") == Echo.idn
        assert _ask(pty, "*IDN?") == Echo.idn
        port = int(lan.split("::")[2])
    assert threading.active_count() == baseline_threads
    assert _open_fds() == baseline_fds
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_tcp_client_can_reconnect_after_a_drop():
    echo = Echo("echo")
    with SimServer({"echo": echo}) as server:
        resource = server.resources["echo"]
        echo.faults.drop = True
        with pytest.raises((pyvisa.errors.VisaIOError, OSError)):
            _ask(resource, "*IDN?")
        echo.faults.clear()
        assert _ask(resource, "*IDN?") == Echo.idn


def test_serial_names_must_be_served_instruments():
    with pytest.raises(ValueError, match="ghost"):
        SimServer({"echo": Echo("echo")}, serial_names=["ghost"])


def test_imports_and_serves_tcp_where_there_are_no_pseudo_terminals():
    """As on Windows: tty, termios, pty, fcntl do not import; TCP works, a pty is refused clearly."""
    script = textwrap.dedent("""
        import sys
        for name in ("tty", "termios", "pty", "fcntl"):
            sys.modules[name] = None  # 'import tty' now raises ImportError
        import sim_backend.instruments, sim_backend.twin, sim_backend.visa_library
        from sim_backend.server import PtyUnavailable, SimServer
        from test_transport_links import Echo
        import pyvisa
        with SimServer({"lan": Echo("lan")}) as server:
            rm = pyvisa.ResourceManager("@py")
            res = rm.open_resource(server.resources["lan"], read_termination="\\n", write_termination="\\n")
            print(res.query("*IDN?"))
            res.close()
            rm.close()
        try:
            SimServer({"rs232": Echo("rs232")}, serial_names=["rs232"]).start()
        except PtyUnavailable as exc:
            print(exc)
    """)
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here.parent), str(here)])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    idn, refusal = out.stdout.strip().splitlines()
    assert idn == Echo.idn
    assert "serial (pty) simulation needs a POSIX system" in refusal
