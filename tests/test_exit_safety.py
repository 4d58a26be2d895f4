"""Every exit leaves the bench safe and the command says what cleanup confirmed.

Real processes, real signals, real sockets: the film bench's instruments are served by
``hopbench sim-server`` (a separate process) on 127.0.0.1, and a copy of ``sim-film35.toml``
points a real-bench run at its addresses. The runs are made by one worker process that runs
the ``hopbench`` command again and again (``hopbench run ...`` through the CLI entry point,
in its main thread), so 20 trials cost one interpreter start; the test sends it the signals
and then asks the sim server itself whether outputs are off, levels 0 V and relays open.
"""
from __future__ import annotations

import collections
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import h5py
import pytest
import pyvisa

from lab.bench import twin_spec
from lab.config import SHIPPED_BENCHES, load_bench
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

ROOT = Path(__file__).resolve().parent.parent
SAFE_LINE = re.compile(r"^bench safe, confirmed by read-back: (.+)$")
INSTRUMENTS = ("matrix", "smu1", "smu2", "smu3", "smu4")

# The worker: one `hopbench run` per line read from stdin (JSON list of arguments), between
# markers. Outside a run SIGINT/SIGTERM only raise KeyboardInterrupt (reported as "stray").
WORKER = r"""
import json, signal, sys
from lab.app.cli import app

def stray(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, stray)
print("ready", flush=True)
for line in sys.stdin:
    args = json.loads(line)
    print("##start", flush=True)
    try:
        code = app(args=args, standalone_mode=False, prog_name="hopbench")
    except KeyboardInterrupt:
        code = "stray"
    except SystemExit as exc:
        code = exc.code
    sys.stdout.flush()
    print(f"##end {code}", flush=True)
"""


def bench_copy(resources: dict[str, str], path: Path) -> Path:
    """sim-film35.toml as a real bench at the sim server's addresses."""
    text = (SHIPPED_BENCHES / "sim-film35.toml").read_text().replace("simulated = true", "simulated = false")
    for name, res in resources.items():
        text = re.sub(rf'(name = "{name}"\nmodel = "[^"]+"\nresource = )"[^"]+"', rf'\1"{res}"', text)
    assert text.count("127.0.0.1") == len(resources)
    path.write_text(text)
    return path


class Worker:
    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        self.ready = False  # waited for at the first run: the interpreter starts meanwhile
        self.stderr: collections.deque[str] = collections.deque(maxlen=200)
        # drained all along: a full pipe would stall the worker mid-run
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def start(self, *args: str) -> None:
        if not self.ready:
            assert self.proc.stdout.readline().strip() == "ready", self.log()
            self.ready = True
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "##start"

    def finish(self, timeout: float = 60.0) -> tuple[Any, list[str]]:
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            assert line, f"worker died: {self.log()}"
            if line.startswith("##end "):
                return line.split(" ", 1)[1].strip(), lines
            lines.append(line.rstrip("\n"))
        raise AssertionError("the run did not end")

    def log(self) -> str:
        time.sleep(0.2)
        return "".join(self.stderr)[-3000:]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    locks = tmp_path_factory.mktemp("locks")
    return {**os.environ, "PYTHONPATH": str(ROOT), "HOPBENCH_LOCK_DIR": str(locks), "COLUMNS": "400"}


@pytest.fixture(scope="module")
def sim_server(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict, Path]]:
    """``hopbench sim-server`` of the film bench, and a bench file pointing at it."""
    proc = subprocess.Popen([sys.executable, "-m", "lab.app.cli", "sim-server", "--bench",
                             str(SHIPPED_BENCHES / "sim-film35.toml"), "--json", "--for", "300"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        resources = json.loads(line)
        yield resources, bench_copy(resources, tmp_path_factory.mktemp("bench") / "film-over-tcp.toml")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def worker(env: dict[str, str]) -> Iterator[Worker]:
    w = Worker(env)
    yield w
    w.close()


def server_state(resources: dict[str, str]) -> dict[str, Any]:
    """What the sim server's instruments say: closed relays, and each channel's (output, level)."""
    rm = pyvisa.ResourceManager("@py")
    state: dict[str, Any] = {}
    try:
        for name in INSTRUMENTS:
            inst = rm.open_resource(resources[name], read_termination="\n", write_termination="\n", timeout=5000)
            try:
                if name == "matrix":
                    reply = inst.query('print(channel.getclose("allslots"))').strip()
                    state[name] = set() if reply == "nil" else set(re.split(r"[;,]", reply))
                else:
                    for ch in "ab":
                        out, level = inst.query(f"print(smu{ch}.source.output, smu{ch}.source.levelv)").split("\t")
                        state[f"{name}.{ch}"] = (float(out), float(level))
            finally:
                inst.close()
    finally:
        rm.close()
    return state


def assert_server_safe(resources: dict[str, str]) -> None:
    state = server_state(resources)
    assert state["matrix"] == set(), state
    for key, value in state.items():
        if key != "matrix":
            assert value == (0.0, 0.0), (key, state)  # (output off, 0 V)


def assert_says_safe(lines: list[str]) -> None:
    """The command's last line is what cleanup confirmed, naming every instrument."""
    last = lines[-1] if lines else ""
    m = SAFE_LINE.match(last)
    assert m, lines[-6:]
    for name in INSTRUMENTS:
        assert f"{name}: " in m.group(1), last
    assert not any("NOT" in line for line in lines), lines


def wait_for_archive(folder: Path, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(folder.glob("*.h5"))
        if found:
            return found[0]
        time.sleep(0.005)
    raise AssertionError(f"no archive appeared in {folder}")


@pytest.mark.slow  # ~30 s: 20 real runs over TCP
def test_double_ctrl_c_at_random_moments_always_ends_safe_and_says_so(worker, sim_server, tmp_path) -> None:
    resources, bench = sim_server
    rng = random.Random(20261201)
    trials, interrupted, safe_and_truthful = 20, 0, 0
    for k in range(trials):
        out = tmp_path / f"t{k}"
        # repeats=4: about 3 s of driving after the archive appears, so that even a test process
        # descheduled for a second on a loaded machine signals mid-run (one read is only ~1.3 s)
        worker.start("run", "read_conductances", "--bench", str(bench), "--out", str(out), "-q",
                     "--set", "repeats=4")
        wait_for_archive(out)  # the run has begun: the bench is being driven from here on
        time.sleep(rng.uniform(0.0, 0.5))
        worker.signal(signal.SIGINT)
        time.sleep(rng.uniform(0.0, 0.0005))  # the second Ctrl-C within half a millisecond
        worker.signal(signal.SIGINT)
        code, lines = worker.finish()
        assert code == "130", (code, lines)
        assert "interrupted by Ctrl-C (SIGINT)" in lines, lines
        assert any(line.startswith("resume: hopbench run read_conductances --resume ") for line in lines), lines
        interrupted += 1
        assert_says_safe(lines)
        assert_server_safe(resources)
        with h5py.File(next(out.glob("*.h5")), "r", swmr=True) as f:
            assert f["entry/status"][()].decode() == "aborted", (k, lines, f["entry/error"][()])
        safe_and_truthful += 1
    print(f"double-SIGINT trials: {trials}, interrupted mid-run: {interrupted}, safe and truthful: {safe_and_truthful}")
    assert safe_and_truthful == trials


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[tuple[Any, dict[str, str], Path]]:
    """The film bench's instruments in this process, every reply 15 ms late: a signal lands mid-query."""
    twin = build_twin(twin_spec(load_bench(SHIPPED_BENCHES / "sim-film35.toml")))
    with SimServer.from_twin(twin) as server:
        for inst in twin.instruments.values():
            inst.faults.delay_s = 0.015
        yield twin, server.resources, bench_copy(server.resources, tmp_path / "slow.toml")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_mid_query_is_resynchronised_and_reported_truthfully(slow_server, worker, tmp_path, sig) -> None:
    twin, resources, bench = slow_server
    for k, delay in enumerate((0.1, 0.37)):
        out = tmp_path / f"{sig.name}{k}"
        worker.start("run", "read_conductances", "--bench", str(bench), "--out", str(out), "-q")
        wait_for_archive(out)
        time.sleep(delay)
        worker.signal(sig)
        code, lines = worker.finish()
        assert code == ("130" if sig == signal.SIGINT else "143"), lines
        assert ("interrupted by Ctrl-C (SIGINT)" if sig == signal.SIGINT else "terminated (SIGTERM)") in lines
        assert_says_safe(lines)  # no false "NOT safe": the stale reply was not read as an answer
        sim = twin.bench
        assert sim.closed() == set()
        for bus in sim.buses:
            st = sim.bus_state(bus)
            assert st["level"] == 0.0 and not st["output"], (bus, st)


def test_sigkilled_run_is_detected_by_the_next_run_which_makes_the_bench_safe_first(sim_server, worker, env,
                                                                                 tmp_path) -> None:
    resources, bench = sim_server
    victim = subprocess.Popen([sys.executable, "-m", "lab.app.cli", "run", "read_conductances", "--bench",
                               str(bench), "--out", str(tmp_path / "killed"), "-q"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        killed_archive = wait_for_archive(tmp_path / "killed")
        time.sleep(0.6)
        victim.kill()  # SIGKILL: nothing can clean up
        victim.wait(10)
    finally:
        victim.kill()
    left = server_state(resources)
    hot = bool(left["matrix"]) or any(v[0] for k, v in left.items() if k != "matrix")
    worker.start("run", "read_conductances", "--set", "pairs=[[0, 1]]", "--bench", str(bench),
                 "--out", str(tmp_path / "next"), "-q")
    code, lines = worker.finish()
    assert code == "None" or code == "0", lines
    said = [line for line in lines if line.startswith("the previous run on this bench")]
    assert said and f"pid {victim.pid} " in said[0] and str(killed_archive) in said[0], lines
    assert_says_safe(lines)
    assert_server_safe(resources)
    archive = next((tmp_path / "next").glob("*.h5"))
    from lab.archive import Run
    with Run(archive) as run:
        start = run.records("bench_state.start").iloc[0]
    owners = start["previous_owners"]
    assert [o["pid"] for o in owners] == [victim.pid] and owners[0]["archive"] == str(killed_archive)
    assert bool(start["safe"]) is True
    print(f"SIGKILL: bench left {'hot' if hot else 'safe'} by the killed run; successor detected it and made it safe")
