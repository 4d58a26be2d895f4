"""Every ``hopbench`` command with real files: in process, except where the test is about the
process itself (Ctrl-C of a server, a SIGKILLed run)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import pyvisa

from conftest import hopbench

ROOT = Path(__file__).resolve().parents[1]
SIM_BENCH = ROOT / "data" / "benches" / "sim-film35.toml"
REAL_BENCH = ROOT / "data" / "benches" / "707b-2x2636b.toml"
COMMANDS = ["demo", "run", "check", "estimate", "sim-server", "report", "ls", "sweep"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command: str) -> None:
    res = hopbench(command, "--help")
    assert res.returncode == 0, res.stderr
    assert "Example: hopbench " + command in " ".join(res.stdout.split())


def test_check_offline_validates_a_real_bench_without_opening_it() -> None:
    # Offline: a real bench's addresses must never be contacted from a test.
    res = hopbench("check", str(REAL_BENCH), "--offline", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["topology"].startswith("film")
    assert all("identity" not in inst for inst in report["instruments"])
    assert {b["role"] for b in report["buses"]} >= {"drive", "sense"}


def test_check_opens_every_simulated_instrument_and_reads_its_identity() -> None:
    res = hopbench("check", str(SIM_BENCH), "--json")
    assert res.returncode == 0, res.stderr
    identities = {i["name"]: i["identity"] for i in json.loads(res.stdout)["instruments"]}
    assert "707B" in identities["matrix"]
    assert all("2636B" in identities[f"smu{k}"] for k in range(1, 5))


def test_a_bad_bench_file_is_one_clear_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(SIM_BENCH.read_text().replace("v_max_V = ", "v_max_V = -", 1))
    res = hopbench("check", str(bad), "--offline")
    assert res.returncode == 2
    assert "v_max_V" in res.stderr
    assert "Traceback" not in res.stderr


def test_estimate_reports_time_relays_charge_and_energy() -> None:
    res = hopbench("estimate", "read_conductances", "--set", "repeats=2", "--json")
    assert res.returncode == 0, res.stderr
    est = json.loads(res.stdout)
    one = json.loads(hopbench("estimate", "read_conductances", "--json").stdout)
    assert est["bench_time_s"] > one["bench_time_s"] > 0
    assert est["relay_operations"] > 0
    # every repeat measures each of the film's 595 devices once more (the drive-current
    # measurements that correct the contact drop are taken once per read)
    assert est["measurements"] - one["measurements"] == 595
    assert {"charge_C", "energy_J"} <= est.keys()


def test_a_bad_protocol_parameter_names_the_parameter() -> None:
    res = hopbench("estimate", "read_conductances", "--set", "repeats=0")
    assert res.returncode == 2
    assert "repeats" in res.stderr and "Traceback" not in res.stderr


def test_run_dry_run_archives_then_ls_and_report_read_it(tmp_path: Path) -> None:
    res = hopbench("run", "read_conductances", "--bench", str(SIM_BENCH), "--dry-run",
                   "--out", str(tmp_path), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["status"] == "complete"
    archive = Path(summary["archive"])
    with h5py.File(archive, "r", swmr=True) as f:
        assert f["entry/status"].asstr()[()] == "complete"

    listed = json.loads(hopbench("ls", str(tmp_path), "--json").stdout)
    assert [(Path(r["path"]).name, r["status"], r["protocol"]) for r in listed] == [
        (archive.name, "complete", "read_conductances")]

    rep = hopbench("report", str(archive), "--out", str(tmp_path / "fig"), "--json")
    assert rep.returncode == 0, rep.stderr
    figures = [Path(p) for p in json.loads(rep.stdout)["figures"]]
    assert figures and all(p.suffix == ".png" and p.stat().st_size > 5000 for p in figures)


def test_report_of_a_missing_file_fails_cleanly(tmp_path: Path) -> None:
    res = hopbench("report", str(tmp_path / "nope.h5"))
    assert res.returncode != 0 and "nope.h5" in res.stderr and "Traceback" not in res.stderr


def test_sim_server_serves_pyvisa_clients_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "lab.app.cli", "sim-server", "--bench", str(SIM_BENCH),
                             "--json", "--for", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        resources = json.loads(proc.stdout.readline())
        assert set(resources) == {"matrix", "smu1", "smu2", "smu3", "smu4"}
        assert all(r.startswith("TCPIP::127.0.0.1::") for r in resources.values())
        rm = pyvisa.ResourceManager("@py")
        try:
            inst = rm.open_resource(resources["smu1"], read_termination="\n", write_termination="\n", timeout=3000)
            assert "2636B" in inst.query("*IDN?")
            inst.close()
        finally:
            rm.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _checkpoints(path: Path) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return int(f["entry/committed"][0]["checkpoints"])
    except Exception:
        return 0


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_same_file(tmp_path: Path) -> None:
    args = ["run", "train_hopfield", "--dry-run", "--out", str(tmp_path), "--quiet", "--json",
            "--set", "epochs=6", "--set", "read_every=1"]
    proc = subprocess.Popen([sys.executable, "-m", "lab.app.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        archive = None
        while time.monotonic() < deadline:
            files = list(tmp_path.glob("*.h5"))
            if files and _checkpoints(files[0]) >= 2:
                archive = files[0]
                break
            time.sleep(0.2)
        assert archive is not None, "the run never reached its second checkpoint"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    with h5py.File(archive, "r", swmr=True) as f:
        assert f["entry/status"].asstr()[()] == "running"
    res = hopbench("run", "train_hopfield", "--resume", str(archive), "--dry-run", "--quiet", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["archive"] == str(archive)
    with h5py.File(archive, "r") as f:
        assert f["entry/status"].asstr()[()] == "complete"
