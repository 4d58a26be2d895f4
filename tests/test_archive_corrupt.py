"""Damaged archives cannot hang a reader: truncated, overwritten, bit-flipped and SIGKILLed run
files, made from a real dry run and a real killed writer process, each reported by every reader
entry point (open_run, ls, report, resume) within 5 s in one line naming the file.

The probes run in one child process, so a hang cannot take the test session with it: the
parent kills the child at a deadline and names the probe it was stuck in.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
from test_archive_crash import _spawn

from lab.archive import ArchiveWriter, list_runs, open_run
from lab.bench import Bench
from lab.runner import Runner
from protocols.common import glyphs
from protocols.train import TrainHopfield

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 5.0

PROBE = r"""
import json, sys, time, traceback
from pathlib import Path
from typer.testing import CliRunner
from lab.app.cli import app
from lab.archive import ArchiveWriter, open_run

def say(**kw):
    sys.stdout.write(json.dumps(kw) + "\n"); sys.stdout.flush()

def cli(*args):
    r = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"}, catch_exceptions=True)
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr

folder, out = Path(sys.argv[1]), Path(sys.argv[2])
for path in sorted(folder.glob("*.h5")):
    readable = False
    for entry in ("open_run", "report", "resume"):
        if entry == "report" and readable and path.name != "good.h5":
            continue  # drawing a readable run's figures is the report tests' business, and slow
        say(start=entry, file=path.name)
        t0 = time.monotonic()
        try:
            if entry == "open_run":
                with open_run(path) as r:
                    r.summary(); r.conductance; r.operations; r.records(); r.checkpoints; r.info
                    result = {"ok": r.status}
                readable = True
            elif entry == "report":
                code, stdout, stderr = cli("report", str(path), "--out", str(out / path.stem))
                result = {"code": code, "stderr": stderr}
            else:
                w = ArchiveWriter.resume(path)
                w.close()
                result = {"ok": "resumed"}
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        say(done=entry, file=path.name, seconds=time.monotonic() - t0, **result)
say(start="ls", file=str(folder))
t0 = time.monotonic()
code, stdout, stderr = cli("ls", str(folder), "--json")
say(done="ls", file=str(folder), seconds=time.monotonic() - t0, code=code, rows=json.loads(stdout) if code == 0 else stderr)
"""


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of one good run and its damaged copies (one killed writer's too)."""
    folder = tmp_path_factory.mktemp("damaged")
    good = folder / "good.h5"
    with Bench.open(simulate=True) as bench:
        proto = TrainHopfield(patterns=glyphs("L", "T"), epochs=1, v_train=0.6 * bench.info.v_max)
        assert Runner(bench, observers=[ArchiveWriter(good)]).run(proto).status == "complete"
    size = good.stat().st_size

    def copy(name: str) -> Path:
        p = folder / f"{name}.h5"
        shutil.copy(good, p)
        return p

    for frac in (0.0005, 0.02, 0.3, 0.6, 0.9, 0.999):
        os.truncate(copy(f"truncated_{frac}"), int(size * frac))
    with open(copy("zeroed_superblock"), "r+b") as fh:
        fh.write(b"\0" * 96)
    rng = random.Random(14)
    for _ in range(6):
        off = rng.randrange(0, size - 512)
        with open(copy(f"flipped_{off}"), "r+b") as fh:
            fh.seek(off)
            block = fh.read(512)
            fh.seek(off)
            fh.write(bytes(b ^ 0xFF for b in block))
    (folder / "empty.h5").write_bytes(b"")
    # a real writer process killed mid-run, then a copy of its file cut short as well
    killed = folder / "killed.h5"
    proc = _spawn(folder, killed, "forever", flush_every=3)
    for _ in range(8):
        assert proc.stdout.readline(), proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    shutil.copy(killed, folder / "killed_truncated.h5")
    os.truncate(folder / "killed_truncated.h5", killed.stat().st_size // 2)
    (folder / "writer.py").unlink()
    return folder


def _probe(folder: Path, out: Path) -> list[dict]:
    """Every probe's outcome; fails naming the probe a hang was stuck in."""
    script = out / "probe.py"
    script.write_text(PROBE)
    n = len(list(folder.glob("*.h5")))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script), str(folder), str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=30 + 3 * DEADLINE_S * n)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        last = [json.loads(x) for x in stdout.splitlines() if x.strip()][-1:]
        pytest.fail(f"a reader hung: the last probe started was {last}")
    assert proc.returncode == 0, stderr[-2000:]
    return [json.loads(x) for x in stdout.splitlines() if x.strip()]


def test_every_reader_reports_a_damaged_archive_within_5_s_in_one_line(damaged: Path, tmp_path: Path) -> None:
    work = tmp_path / "runs"
    shutil.copytree(damaged, work)  # resume may change a file: probe copies
    done = [r for r in _probe(work, tmp_path) if "done" in r]
    # a damaged file is reported within the deadline (a readable run's figures may take longer)
    slow = [(r["done"], r["file"], round(r["seconds"], 2)) for r in done
            if r["seconds"] > DEADLINE_S and not (r["done"] == "report" and r.get("code") == 0)]
    assert not slow, slow
    errors = 0
    for r in done:
        if r["done"] == "ls":
            continue
        if "error" in r:  # one line, naming the file
            errors += 1
            assert "\n" not in r["error"].strip() and r["file"] in r["error"], r
        if r["done"] == "report" and r["code"] != 0:
            errors += 1
            lines = r["stderr"].strip().splitlines()
            assert len(lines) == 1 and r["file"] in lines[0] and "Traceback" not in r["stderr"], r
    by_name = {(r["done"], r["file"]): r for r in done}
    # the good run reads, reports and refuses a resume (it is complete); the killed one resumes
    assert by_name[("open_run", "good.h5")]["ok"] == "complete"
    assert by_name[("report", "good.h5")]["code"] == 0
    assert by_name[("open_run", "killed.h5")]["ok"] == "interrupted"
    assert by_name[("resume", "killed.h5")]["ok"] == "resumed"
    for name in [p.name for p in damaged.glob("truncated_*.h5")] + ["zeroed_superblock.h5", "empty.h5",
                                                                       "killed_truncated.h5"]:
        err = by_name[("open_run", name)]["error"]
        assert "ArchiveFormatError" in err and ("truncated" in err or "not an HDF5 file" in err), err
    assert errors >= 3 * 9
    # ls lists every file, the damaged ones as unreadable with their reason, and goes on
    ls = by_name[("ls", str(work))]
    assert ls["code"] == 0 and ls["seconds"] < DEADLINE_S * 3
    rows = {Path(r["path"]).name: r for r in ls["rows"]}
    assert set(rows) == {p.name for p in work.glob("*.h5")}
    assert rows["good.h5"]["status"] == "complete"
    assert rows["truncated_0.3.h5"]["status"] == "unreadable" and "truncated" in rows["truncated_0.3.h5"]["error"]


def test_a_killed_run_reads_as_interrupted_and_repair_lets_plain_hdf5_open_it(damaged: Path, tmp_path: Path) -> None:
    from lab.archive.repair import repair

    path = tmp_path / "killed.h5"
    shutil.copy(damaged / "killed.h5", path)
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r").close()
    with open_run(path) as r:
        assert r.recorded_status == "running" and r.status == "interrupted"
        assert "hopbench repair" in r.needs_repair
        reads = r.counts["reads"]
    listed = list_runs(tmp_path).iloc[0]
    assert listed["status"] == "interrupted" and "hopbench repair" in listed["note"]
    assert repair(path)["repaired"] is True
    with h5py.File(path, "r") as f:  # what HDFView and MATLAB do
        assert int(f["entry/committed"][0]["reads"]) == reads
    with open_run(path) as r:
        assert r.status == "interrupted" and r.needs_repair is None and r.counts["reads"] == reads
    assert repair(path)["repaired"] is False  # nothing left to do
    with pytest.raises(Exception, match="truncated"):
        repair(damaged / "killed_truncated.h5")


def _ask(proc: subprocess.Popen, command: str) -> dict:
    """Send the writer a command; its reply (the commits made on the way are skipped)."""
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    while True:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        reply = json.loads(line)
        if "done" in reply or "finished" in reply:
            return reply


def test_a_live_writer_reads_as_running_and_repair_refuses_it(tmp_path: Path) -> None:
    from lab.archive import ArchiveError
    from lab.archive.repair import repair

    path = tmp_path / "live.h5"
    proc = _spawn(tmp_path, path, "interactive")
    try:
        assert json.loads(proc.stdout.readline()) == {"ready": 1}
        assert _ask(proc, "go 3")["reads"] == 3
        with open_run(path) as r:
            assert r.status == "running" and r.writer_alive() is True and r.needs_repair is None
        with pytest.raises(ArchiveError, match="another process is writing"):
            repair(path)
        _ask(proc, "finish")
    finally:
        proc.kill()
        proc.wait(timeout=10)
    with open_run(path) as r:
        assert r.status == "complete" and r.counts["reads"] == 3
