"""One bench, one runner: the lock is the instrument's, however the bench file spells it.

Real locks in a real temp folder, a real second process holding them, the film bench's
simulated instruments on 127.0.0.1 reached through a bench file marked as real.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from lab.app.jobs import run_protocol
from lab.bench import Bench, twin_spec
from lab.config import SHIPPED_BENCHES, load_bench
from lab.errors import BenchBusy
from lab.lock import BenchLock, identity_key, instrument_key, lock_dir
from lab.runner import Runner
from protocols.read_conductances import ReadConductances
from sim_backend.server import SimServer
from sim_backend.twin import build_twin

ROOT = Path(__file__).resolve().parent.parent
ONE_PAIR = ReadConductances(pairs=((0, 1),))


@pytest.fixture(autouse=True)
def locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "locks"
    monkeypatch.setenv("HOPBENCH_LOCK_DIR", str(d))
    return d


def real_bench(tmp_path: Path, resources: dict[str, str], name: str = "lab.toml") -> Path:
    text = (SHIPPED_BENCHES / "sim-film35.toml").read_text().replace("simulated = true", "simulated = false")
    for inst, res in resources.items():
        text = re.sub(rf'(name = "{inst}"\nmodel = "[^"]+"\nresource = )"[^"]+"', rf'\1"{res}"', text)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def twin() -> Any:
    return build_twin(twin_spec(load_bench(SHIPPED_BENCHES / "sim-film35.toml")))


@pytest.fixture
def server(twin: Any) -> Iterator[SimServer]:
    with SimServer.from_twin(twin) as s:
        yield s


def respelled(resources: dict[str, str]) -> dict[str, str]:
    """``TCPIP::127.0.0.1::P::SOCKET`` written as ``TCPIP0::localhost::P::SOCKET``."""
    return {k: re.sub(r"^TCPIP::127\.0\.0\.1::", "TCPIP0::localhost::", v) for k, v in resources.items()}


def test_spellings_of_one_address_are_one_key() -> None:
    assert instrument_key("TCPIP0::localhost::5025::SOCKET") == instrument_key("TCPIP::127.0.0.1::5025::SOCKET")
    assert instrument_key("TCPIP::127.0.0.1::5025::SOCKET") != instrument_key("TCPIP::127.0.0.1::5026::SOCKET")
    assert instrument_key("GPIB0::24::INSTR") == instrument_key("GPIB::24::INSTR")
    assert instrument_key("USB0::0x0957::0x8B18::MY1::INSTR") == instrument_key("USB::2391::35608::MY1::INSTR")
    assert instrument_key("TCPIP::localhost::INSTR") == instrument_key("TCPIP0::127.0.0.1::inst0::INSTR")
    assert identity_key("Keithley Instruments Inc., Model 2636B, 4390001, 4.0.4") == \
        identity_key("KEITHLEY INSTRUMENTS INC.,MODEL 2636B,4390001,4.0.5")
    assert identity_key("hopbench,Simulated instrument,0,0.1") is None


HOLDER = """
import sys, time
from lab.lock import BenchLock, instrument_key
lock = BenchLock([instrument_key(r) for r in sys.argv[1:]], bench="holder").acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_two_spellings_of_one_instrument_cannot_both_lock(tmp_path, server, locks) -> None:
    # another process holds the bench as 127.0.0.1; this one asks for it as localhost
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, *server.resources.values()], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        bench = Bench.open(load_bench(real_bench(tmp_path, respelled(server.resources))))
        try:
            sent = len(server.command_log)
            with pytest.raises(BenchBusy, match=rf"in use by pid {holder.pid} on "):
                Runner(bench).run(ONE_PAIR)
            changes = [m for _, _, m in server.command_log[sent:] if "=" in m or "close" in m or "open" in m]
            assert changes == []  # refused before any state-changing command
        finally:
            bench.close()
        # the command takes the locks before it opens anything: not one message reaches the bench
        sent = len(server.command_log)
        with pytest.raises(BenchBusy, match=rf"in use by pid {holder.pid} on "):
            run_protocol(ONE_PAIR, bench=real_bench(tmp_path, respelled(server.resources), "busy.toml"),
                         out_dir=tmp_path / "busy", progress=False)
        assert server.command_log[sent:] == []
    finally:
        holder.kill()
        holder.wait(10)
    # once the holder is gone the same spelling runs
    s = run_protocol(ONE_PAIR, bench=real_bench(tmp_path, respelled(server.resources), "again.toml"),
                     out_dir=tmp_path / "runs", progress=False)
    assert s.status == "complete" and s.safe
    assert s.previous_owners and s.previous_owners[0]["pid"] == holder.pid  # it died holding the bench


def test_one_instrument_reached_at_two_addresses_is_one_lock_by_its_identity(tmp_path, twin, server) -> None:
    # the same instruments served a second time, on other ports: only *IDN? can tell
    with SimServer(twin.instruments) as second:
        a = Bench.open(load_bench(real_bench(tmp_path, server.resources, "a.toml")))
        b = Bench.open(load_bench(real_bench(tmp_path, second.resources, "b.toml")))
        try:
            assert set(a.lock_keys).isdisjoint(b.lock_keys)
            assert a.identity_keys() and a.identity_keys() == b.identity_keys()
            caught: list[BaseException] = []

            class Second:
                def start(self, info):
                    pass

                def operation(self, rec):
                    try:
                        Runner(b).run(ONE_PAIR)
                    except BenchBusy as exc:
                        caught.append(exc)

                def checkpoint(self, index, state):
                    pass

                def finish(self, status, error=None):
                    pass

            assert Runner(a, [Second()]).run(ONE_PAIR).status == "complete"
            assert caught and "instrument idn keithley instruments inc.|" in str(caught[0])
        finally:
            a.close()
            b.close()


def test_the_owner_file_names_the_run_and_is_gone_after_it(tmp_path, server, locks) -> None:
    seen: dict[str, Any] = {}

    class Peek:
        def start(self, info):
            pass

        def operation(self, rec):
            seen.update({p.name: json.loads(p.read_text()) for p in locks.glob("*.owner")})

        def checkpoint(self, index, state):
            pass

        def finish(self, status, error=None):
            pass

    s = run_protocol(ONE_PAIR, bench=real_bench(tmp_path, server.resources), out_dir=tmp_path / "runs",
                     progress=False, observers=[Peek()])
    assert s.status == "complete"
    owners = list(seen.values())
    assert len(owners) == 5 + 2  # five addresses, two identities (the four 2636B twins share a serial)
    assert {o["pid"] for o in owners} == {os.getpid()} and {o["archive"] for o in owners} == {s.archive}
    assert all(o["bench"] == "sim-film35" and o["start_time"] for o in owners)
    assert list(locks.glob("*.owner")) == []


def test_a_dry_run_leaves_no_lock_file(tmp_path, locks) -> None:
    s = run_protocol(ONE_PAIR, dry_run=True, out_dir=tmp_path / "runs", progress=False)
    assert s.status == "complete" and s.safe
    assert not locks.exists() or list(locks.iterdir()) == []
    # and a twin is still one runner at a time
    bench = Bench.open("sim-film35", simulate=True)
    try:
        with BenchLock(bench.lock_keys):
            with pytest.raises(BenchBusy, match="this process"):
                Runner(bench).run(ONE_PAIR)
    finally:
        bench.close()
    assert lock_dir() == locks
