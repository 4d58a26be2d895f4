"""The live monitor's JSON and figure endpoints, served by a real uvicorn on 127.0.0.1: of a
finished dry run (fast), and of a run that ``hopbench run ... --monitor`` watches live (slow:
two Python processes start). The browser test (test_monitor_browser.py) follows a live run too."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterator

import pytest
from conftest import film_bench_dict, film_config

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

# an 8-contact film (the shipped film bench cut down) with two 8-pixel patterns: a real training
# dry run in a few seconds
VECTORS = [[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]]
SMALL = {"epochs": 1, "read_every": 1, "patterns": {"vectors": VECTORS}}
# the monitored run: long enough (~2 s of dry run) that the monitor, polling every 0.25 s, sees it grow
EPOCHS = 16
TRAIN = ["--set", f"epochs={EPOCHS}", "--set", "read_every=1", "--set", f"patterns={{vectors={VECTORS}}}"]


def small_bench(folder: Path) -> Path:
    """The 8-contact film bench as a file, for the command line."""
    import tomli_w

    path = folder / "film8.toml"
    path.write_text(tomli_w.dumps(film_bench_dict(8)))
    return path
PNG = b"\x89PNG\r\n\x1a\n"


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.app.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _line_with(stream: IO[str], prefix: str, timeout_s: float = 60.0) -> tuple[str, list[str]]:
    """The first line of ``stream`` that starts with ``prefix`` (and the lines read before it)."""
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        for line in stream:
            seen.append(line)
            if line.startswith(prefix):
                found.append(line[len(prefix):].strip())
                return

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(timeout_s)
    assert found, f"no line starting {prefix!r} within {timeout_s} s; got {seen}"
    return found[0], seen


@pytest.fixture(scope="module")
def live_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A dry run started with --monitor; what its monitor served while it ran, and after."""
    out = tmp_path_factory.mktemp("monitored")
    proc = _cli("run", "train_hopfield", "--dry-run", "--out", str(out), "--quiet", "--monitor",
                "--monitor-port", "0", "--bench", str(small_bench(out.parent)), *TRAIN)
    try:
        assert proc.stderr is not None
        url, _ = _line_with(proc.stderr, "monitor: ")
        snaps: list[dict] = []
        runs: dict = {}
        with httpx.Client(base_url=url, timeout=20) as client:
            while proc.poll() is None:
                try:
                    runs = client.get("/api/runs").json()
                    if runs["default"]:
                        snaps.append(client.get(f"/api/run/{runs['default']}").json())
                except httpx.TransportError:  # the monitor stops a few seconds after the run
                    break
                time.sleep(0.25)
        proc.wait(60)
        yield {"url": url, "out": out, "snaps": snaps, "runs": runs, "returncode": proc.returncode}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_the_monitor_follows_the_archive_as_the_run_writes_it(live_run: dict) -> None:
    assert live_run["returncode"] == 0
    snaps = [s for s in live_run["snaps"] if s["status"] != "unreadable"]  # a file being created reads so
    assert snaps, "the monitor never showed the run"
    statuses = [s["status"] for s in snaps]
    assert "running" in statuses and statuses[-1] == "complete", statuses
    done = [s["progress"].get("ops_done", 0) for s in snaps]
    assert done == sorted(done) and done[0] < done[-1], done  # it grew as the archive did
    final = snaps[-1]
    n_ops = final["counts"]["operations"]
    assert final["progress"]["ops_done"] == n_ops
    # the plan estimate gives the length of the run before it ends
    assert any(s["progress"].get("ops_total") == n_ops for s in snaps if s["status"] == "running") or \
        final["progress"].get("ops_total") == n_ops
    assert final["learned"]["kind"] == "W" and final["learned"]["reads"] == EPOCHS + 1
    assert [r["epoch"] for r in final["accuracy"]["rows"]] == [float(e) for e in range(EPOCHS + 1)]
    assert sum(s == "running" for s in statuses) >= 2, statuses
    assert all(0.0 <= r["bit_accuracy"] <= 1.0 for r in final["accuracy"]["rows"])
    assert final["instrument"]["relays_closed_now"] == []  # the run ended: cleanup opened every relay
    assert final["instrument"]["safe"] and "confirmed by reading back" in final["instrument"]["state"]
    assert "all relays open" in final["instrument"]["state"]
    assert final["log"][-1].endswith("run complete")
    running = [s for s in snaps if s["status"] == "running" and s["instrument"].get("relays_closed")]
    if running:  # while it runs, the archive says which crosspoints the last operation left closed
        assert all(isinstance(x, str) for x in running[-1]["instrument"]["relays_closed"])
    names = [r["name"] for r in live_run["runs"]["runs"]]
    assert names == [Path(final["path"]).name]


@pytest.mark.slow
def test_the_monitor_of_run_stops_with_the_run(live_run: dict) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(live_run["url"] + "api/runs", timeout=5)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished dry run's archive (written in this process; the monitor reads it after)."""
    from lab.app.jobs import run_protocol

    out = tmp_path_factory.mktemp("finished")
    summary = run_protocol("train_hopfield", bench=film_config(8), overrides=SMALL, out_dir=out, dry_run=True,
                           progress=False)
    assert summary.status == "complete"
    return Path(summary.archive)


@pytest.fixture(scope="module")
def monitor(finished: Path) -> Iterator[str]:
    """The monitor of the finished run's folder, on a real uvicorn in this process; stopped after."""
    from lab.app.monitor import serve

    server = serve(finished, port=0)
    yield server.url
    server.stop()


def test_the_snapshot_of_a_finished_run(monitor: str, finished: Path) -> None:
    with httpx.Client(base_url=monitor, timeout=30) as client:
        runs = client.get("/api/runs").json()
        assert runs["default"] == finished.name and [r["name"] for r in runs["runs"]] == [finished.name]
        snap = client.get(f"/api/run/{finished.name}").json()
    json.dumps(snap, allow_nan=False)  # strict JSON: the browser's JSON.parse refuses NaN
    assert snap["status"] == "complete" and snap["protocol"] == "train_hopfield"
    assert snap["progress"]["ops_done"] == snap["counts"]["operations"]
    assert snap["learned"]["kind"] == "W" and snap["learned"]["reads"] == 2
    rows = snap["accuracy"]["rows"]
    assert [r["epoch"] for r in rows] == [0.0, 1.0] and all(0 <= r["bit_accuracy"] <= 1 for r in rows)
    assert rows[0]["exact"] == 0.0  # epoch 0 scores the cues as given: every cue has flipped bits
    assert snap["instrument"]["safe"] and "all relays open" in snap["instrument"]["state"]
    assert snap["instrument"]["relays_closed_now"] == []
    # the crosspoints the last switching operation left closed, as the runner archived them
    closed = snap["instrument"]["relays_closed"]
    assert closed and all(isinstance(x, str) for x in closed) and snap["instrument"]["relays_after"] >= 0
    drive = snap["instrument"]["drive"]
    assert drive["kind"] == "pulse" and len(drive["levels"]) == 2  # a ±V pattern
    assert snap["log"][-1].endswith("run complete")


def test_a_recall_run_shows_its_own_scores_not_epochs(tmp_path: Path) -> None:
    from lab.app.jobs import run_protocol
    from lab.app.monitor import serve

    summary = run_protocol("recall", bench=film_config(8), out_dir=tmp_path, dry_run=True, progress=False,
                           overrides={"patterns": {"vectors": VECTORS}, "compute": "software",
                                      "cues": {"per_pattern": 2}})
    name = Path(summary.archive).name
    server = serve(tmp_path, port=0)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            snap = client.get(f"/api/run/{name}").json()
            (row,) = snap["accuracy"]["rows"]
            assert row["epoch"] is None and row["record"] == 1 and 0.0 <= row["bit_accuracy"] <= 1.0
            assert "recall_summary" in snap["accuracy"]["source"]
            assert client.get(f"/api/run/{name}/accuracy.png").status_code == 204  # no epochs to plot
            assert snap["learned"]["kind"] == "G"  # one read, nothing before it to take a change from
            assert client.get(f"/api/run/{name}/learned.png").content.startswith(PNG)
    finally:
        server.stop()


def test_figures_and_the_page_are_served_from_the_package(monitor: str) -> None:
    with httpx.Client(base_url=monitor, timeout=30) as client:
        name = client.get("/api/runs").json()["default"]
        for which in ("learned", "accuracy"):
            r = client.get(f"/api/run/{name}/{which}.png")
            assert r.status_code == 200 and r.content.startswith(PNG), which
        page = client.get("/")
        assert page.status_code == 200 and "/static/monitor.js" in page.text
        assert "http" not in client.get("/static/monitor.js").text.replace("HTTP ", "")  # nothing from a CDN
        # only archives directly in the folder are served
        assert client.get("/api/run/..%2F..%2Fetc%2Fpasswd").status_code == 404
        assert client.get("/api/run/missing.h5").status_code == 404
        assert client.get(f"/api/run/{name}/other.png").status_code == 404


def test_a_run_on_the_monitor_can_still_be_resumed(monitor: str, finished: Path) -> None:
    """The monitor holds the archive open without an HDF5 lock: a writer can open it (as --resume does)."""
    with httpx.Client(base_url=monitor, timeout=30) as client:
        name = client.get("/api/runs").json()["default"]
        assert client.get(f"/api/run/{name}").json()["status"] == "complete"  # the monitor has it open now
    path = finished.parent / name
    code = "import h5py, sys; h5py.File(sys.argv[1], 'r+').close(); print('opened')"
    res = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "opened", res.stderr[-500:]


def test_a_folder_without_runs_is_served_and_a_missing_one_refused(tmp_path: Path) -> None:
    from lab.app.monitor import serve

    server = serve(tmp_path, port=0)
    try:
        runs = httpx.get(server.url + "api/runs", timeout=10).json()
        assert runs == {"folder": str(tmp_path), "default": None, "runs": []}
        (tmp_path / "junk.h5").write_bytes(b"not hdf5")
        runs = httpx.get(server.url + "api/runs", timeout=10).json()
        assert runs["runs"][0]["status"] == "unreadable"
        snap = httpx.get(server.url + "api/run/junk.h5", timeout=10).json()
        assert snap["status"] == "unreadable" and snap["error"]
    finally:
        server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "api/runs", timeout=5)
    with pytest.raises(FileNotFoundError, match="no such run archive or folder"):
        serve(tmp_path / "nothing-here")


@pytest.mark.slow
def test_hopbench_monitor_serves_until_ctrl_c(finished: Path) -> None:
    proc = _cli("monitor", str(finished.parent), "--port", "0")
    try:
        assert proc.stdout is not None
        url, _ = _line_with(proc.stdout, "monitor: ")
        assert httpx.get(url + "api/runs", timeout=30).json()["default"] == finished.name
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "api/runs", timeout=5)


def test_monitor_without_the_extra_says_what_to_install() -> None:
    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "from lab.app.monitor import serve\n"
            "try:\n    serve('.')\nexcept RuntimeError as e:\n    print(e)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "pip install 'hopbench[monitor]'" in res.stdout, res.stderr[-500:]


@pytest.mark.slow
def test_snapshot_json_is_strict(live_run: dict) -> None:
    """The browser's JSON.parse refuses NaN: every snapshot is strict JSON."""
    for snap in live_run["snaps"]:
        json.dumps(snap, allow_nan=False)


def test_a_run_whose_writer_died_is_shown_interrupted_with_the_bench_state_unknown(tmp_path: Path) -> None:
    from test_archive_synthetic import film_bench, run_info

    from lab.app.monitor.snapshot import RunWatch
    from lab.archive import ArchiveWriter

    writer = ArchiveWriter(tmp_path / "dead.h5")
    writer.start(run_info(film_bench(6)))
    writer.close()  # gone without finishing, as a killed writer is: the file still says "running"
    watch = RunWatch(tmp_path / "dead.h5")
    try:
        snap = watch.snapshot()
    finally:
        watch.close()
    assert snap["status"] == "interrupted"
    assert snap["instrument"]["safe"] is False and snap["instrument"]["state"].startswith("UNKNOWN")
    assert "relays_closed_now" not in snap["instrument"]
