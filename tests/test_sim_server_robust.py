"""The sim server stays up whatever a client sends: real sockets on 127.0.0.1, each attack
followed by a normal query that must be answered correctly.

Attacks: an overlong line, delay() with absurd or non-numbers and on a driven bench, non-ASCII
and control bytes, odd TSP assignments before ``*RST``/``reset()``, file-descriptor
exhaustion at the listener, and many messages and big lines (the server's memory must stay
bounded: measured on a server process of its own).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, film_config

from lab.bench import twin_spec
from sim_backend.bench import SimulatedBench
from sim_backend.instruments import create
from sim_backend.message_log import MessageLog
from sim_backend.server import MAX_MESSAGE_BYTES, SimServer
from sim_backend.topology import film as film_topology
from sim_backend.twin import build_twin

IDN_2636B = "Keithley Instruments Inc., Model 2636B"


class Client:
    """A raw-socket client that reads replies line by line, as pyvisa-py does."""

    def __init__(self, resource: str, timeout: float = 10.0) -> None:
        port = int(resource.split("::")[2])
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.pending = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data if data.endswith(b"\n") else data + b"\n")

    def line(self) -> bytes:
        while b"\n" not in self.pending:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line

    def query(self, message: str) -> str:
        self.send(message.encode("ascii"))
        return self.line().decode("ascii")  # strict: a reply an ASCII client cannot read fails

    def errors(self) -> list[tuple[int, str]]:
        """Empty the TSP error queue: (code, message) of every entry."""
        out = []
        for _ in range(50):
            code, message, *_ = self.query("print(errorqueue.next())").split("\t")
            if float(code) == 0:
                return out
            out.append((int(float(code)), message))
        raise AssertionError("error queue never empties")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def served() -> Iterator[tuple[SimServer, object]]:
    twin = build_twin(twin_spec(film_config(6)))
    server = SimServer(twin.instruments, host="127.0.0.1")
    server.start()
    try:
        yield server, twin
    finally:
        server.stop()


@pytest.fixture
def smu(served: tuple[SimServer, object]) -> Iterator[Client]:
    c = Client(served[0].resources["smu1"])
    assert c.query("*IDN?").startswith(IDN_2636B)
    yield c
    c.close()


def test_an_overlong_line_is_dropped_whole_with_an_input_buffer_overrun(smu: Client, served) -> None:
    server = served[0]
    n0 = len(server.command_log)
    payload = b"x = '" + b"a" * (MAX_MESSAGE_BYTES + 2_000_000) + b"'"
    smu.send(payload)  # one line, 6 MB: more than the instrument's input buffer
    assert smu.query("*IDN?").startswith(IDN_2636B)
    assert smu.errors() == [(-363, "Input buffer overrun")]
    # nothing of the line reached the instrument: no tail was run as a message of its own
    assert [m for _, _, m in server.command_log[n0:]] == ["*IDN?"] + ["print(errorqueue.next())"] * 2


@pytest.mark.parametrize("call, code", [
    ("delay(1e300)", 1102), ("delay(1/0)", 1102), ("delay(0/0)", 1104), ("delay(-1)", 1103),
    ("delay('1')", 1104), ("delay(100001)", 1102),
])
def test_delay_takes_what_a_2600b_takes(smu: Client, call: str, code: int) -> None:
    t0 = time.monotonic()
    smu.send(call.encode())
    assert smu.query("*IDN?").startswith(IDN_2636B)
    assert time.monotonic() - t0 < 2.0
    assert [c for c, _ in smu.errors()] == [code]


def test_a_long_delay_on_a_driven_bench_holds_neither_the_server_nor_the_other_instruments() -> None:
    twin = build_twin(twin_spec(film_config()))  # the 35-contact film: its driven physics is slow
    twin.instruments["smu1"].message_time_s = 1.0  # the per-message time budget (5 s by default), shortened
    with SimServer(twin.instruments, host="127.0.0.1") as server:
        matrix, smu, other = (Client(server.resources[n]) for n in ("matrix", "smu1", "smu2"))
        matrix.send(b'channel.close("1A01,1B02")')
        assert matrix.query("print(channel.getclose('allslots'))") == "1A01;1B02"
        smu.send(b"smua.source.func = 1 smua.source.levelv = 1 smua.source.output = 1 "
                 b"smub.source.output = 1")
        for _ in range(3):  # after a few short waits the integrator takes small steps
            smu.send(b"delay(1)")
        assert smu.query("*IDN?").startswith(IDN_2636B)
        assert smu.errors() == []
        t0 = time.monotonic()
        smu.send(b"delay(100)")  # 100 s of driven physics then took ~40 s of wall time in one piece
        assert other.query("*IDN?").startswith(IDN_2636B)  # another instrument answers meanwhile
        t_other = time.monotonic() - t0
        assert smu.query("*IDN?").startswith(IDN_2636B)
        t_smu = time.monotonic() - t0
        assert t_other < 3.0 and t_smu < 8.0, (t_other, t_smu)
        (code, message), = smu.errors()
        assert code == -286 and "time budget" in message
        for c in (matrix, smu, other):
            c.close()


def test_a_scpi_trigger_loop_is_bounded_by_the_message_time_budget() -> None:
    bench = SimulatedBench(film_topology(4), "ideal", seed=0, buses=["a"], crosspoints={})
    sim = create("keithley2450", "dut", bench)
    sim.message_time_s = 0.5
    with SimServer({"dut": sim}) as server:
        c = Client(server.resources["dut"])
        try:
            # 100 000 readings 10 000 s apart: 30 years of virtual time, one reading at a time
            c.send(b':TRIG:LOAD "SimpleLoop", 100000, 10000')
            t0 = time.monotonic()
            c.send(b":INIT")
            assert c.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
            assert time.monotonic() - t0 < 3.0
            code, message = c.query(":SYST:ERR?").split(",", 1)
            assert int(code) == -200 and "time budget" in message
        finally:
            c.close()


@pytest.mark.parametrize("raw", [
    b"x = 1\xe9", b"\xc3\xa9", b'error("\xe9")', b"error(string.char(233))", b"\xff\xfe\x00\x07",
    b'print(errorqueue.next()) \x80', b"error('a\\tb\\nc')",
])
def test_non_ascii_and_control_bytes_leave_the_error_queue_readable(smu: Client, raw: bytes) -> None:
    smu.send(raw)
    errors = smu.errors()  # strict ASCII decoding of every entry
    assert errors and all(code < 0 or code > 1000 for code, _ in errors)
    assert all(all(" " <= ch <= "~" for ch in message) for _, message in errors)
    assert smu.query("*IDN?").startswith(IDN_2636B)
    assert smu.query("print(1.5)") == "1.50000e+00"


@pytest.mark.parametrize("reset", ["*RST", "reset()", "localnode.reset()"])
def test_reset_restores_the_default_state_after_odd_assignments(smu: Client, reset: str) -> None:
    for odd in ("smua = nil", "smua.source = nil", "format = nil", "format.asciiprecision = 2",
                "format.data = format.REAL64", "format.byteorder = format.NORMAL", "smua.source.levelv = 0.5",
                "smua.source.levelv = 0/0", "smua.source.limiti = 0/0"):
        smu.send(odd.encode())
    assert smu.query("print(smua.source.levelv)").startswith("5.0e-01")  # the NaN was refused
    smu.errors()
    smu.send(reset.encode())
    assert smu.query("print(1.23456789)") == "1.23457e+00"  # asciiprecision 6, ASCII data
    assert smu.query("print(smua.source.levelv, smua.source.output)") == "0.00000e+00\t0.00000e+00"
    assert smu.errors() == []


# -------------------------------------------------------------------- real server processes


# A server process of its own (its memory and descriptors are what is measured): the film
# bench's simulated instruments served as ``hopbench sim-server`` serves them, with only the
# simulator imported (the CLI's import alone takes seconds on a loaded machine).
SERVE = """
import json, resource, signal, sys, threading
if int(sys.argv[2]):
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), int(sys.argv[2])))
from sim_backend.server import SimServer
from sim_backend.twin import build_twin
twin = build_twin(json.loads(sys.argv[1]))
server = SimServer(twin.instruments, host="127.0.0.1").start()
done = threading.Event()
signal.signal(signal.SIGTERM, lambda *a: done.set())
print(json.dumps(server.resources), flush=True)
done.wait(60)
server.stop()
"""


def _sim_server(limit_fds: int = 0) -> tuple[subprocess.Popen, dict[str, str]]:
    spec = twin_spec(film_config(6))
    spec["realtime"] = True  # as hopbench sim-server serves
    proc = subprocess.Popen([sys.executable, "-c", SERVE, json.dumps(spec), str(limit_fds)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"sim server did not start: {proc.stderr.read()}")
    return proc, json.loads(line)


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


def _rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


@pytest.fixture(scope="module")
def cli_server() -> Iterator[tuple[subprocess.Popen, dict[str, str], list[str]]]:
    """One sim server process (64 file descriptors at most) for the tests below; its stderr is
    collected when it stops (the last item of the list)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("fd limits and /proc/<pid>/statm are Linux's")
    proc, res = _sim_server(limit_fds=64)
    log: list[str] = []
    try:
        yield proc, res, log
    finally:
        log.append(_stop(proc))


def test_the_listener_survives_file_descriptor_exhaustion(cli_server) -> None:
    proc, res, _ = cli_server
    extra: list[socket.socket] = []
    try:
        port = int(res["smu1"].split("::")[2])
        for _ in range(80):  # more than the server has descriptors: the kernel queues the rest
            extra.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        for s in extra[:60]:
            s.close()
        del extra[:60]
        c = Client(res["smu1"])  # accepted once descriptors are free again
        assert c.query("*IDN?").startswith(IDN_2636B)
        c.close()
        c = Client(res["smu2"])  # the other instruments were never affected
        assert c.query("*IDN?").startswith(IDN_2636B)
        c.close()
        assert proc.poll() is None
    finally:
        for s in extra:
            s.close()
    # it did run out of descriptors, and said so (stderr is read without stopping the server)
    os.set_blocking(proc.stderr.fileno(), False)
    assert "cannot accept a connection" in (proc.stderr.read() or "")


def test_server_memory_stays_bounded_over_many_messages_and_big_lines(cli_server) -> None:
    proc, res, _ = cli_server
    c = Client(res["smu1"], timeout=30)
    try:
        big = b"x = '" + b"a" * 3_000_000 + b"'"  # within the input buffer: run (and refused: too long)

        def load() -> float:
            t0 = time.monotonic()
            for _ in range(6):
                c.send(big)
            c.send(b"y = '" + b"b" * 20_000_000 + b"'")  # 20 MB: dropped whole
            c.send(b"smua.source.levelv = 0\n" * 5_000)
            assert c.query("*IDN?").startswith(IDN_2636B)
            return time.monotonic() - t0

        load()  # the first round sets the allocator's high-water mark
        rss1 = _rss_mb(proc.pid)
        seconds = load()
        grown = _rss_mb(proc.pid) - rss1
        # every message kept whole, the second round alone would hold 18 MB of big lines more
        # (38 MB had the long line been kept): bounded, the log keeps 4 kB of each
        assert grown < 8, f"RSS grew {grown:.1f} MB over the second round ({seconds:.1f} s)"
    finally:
        c.close()


def test_the_message_log_is_a_ring_with_absolute_indices() -> None:
    log = MessageLog(max_entries=100, max_chars=10_000)
    for k in range(1000):
        log.append((float(k), "smu", f"m{k}"))
    log.append((0.0, "smu", "z" * 1_000_000))
    assert len(log) == 1001  # every message counted
    held = log[:]
    assert len(held) <= 100 and held[-1][2].startswith("z" * 100) and len(held[-1][2]) < 5000
    assert log[995][2] == "m995" and [m for _, _, m in log[998:1000]] == ["m998", "m999"]
    with pytest.raises(IndexError):
        log[0]
    n = len(log)
    assert log[n:] == []
    log.clear()
    assert log == [] and len(log) == 0
