"""hopbench runs as Bluesky event-model documents: every document validated by event-model,
consumed by real bluesky callbacks during a real dry run, and replayed from the archive."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

event_model = pytest.importorskip("event_model")
pytest.importorskip("bluesky")

from bluesky.callbacks import LiveTable  # noqa: E402
from bluesky.callbacks.core import CallbackBase  # noqa: E402

from lab.app.documents import DocumentObserver, JsonLinesDocuments, replay  # noqa: E402
from lab.app.jobs import run_protocol  # noqa: E402
from lab.archive import ArchiveWriter, open_run  # noqa: E402
from lab.runner import Runner  # noqa: E402
from protocols.base import load_protocol  # noqa: E402
from conftest import film_config, hopbench  # noqa: E402
from lab.bench import Bench  # noqa: E402

# an 8-contact film (the shipped film bench cut down) with two 8-pixel patterns: a real training
# dry run in a few seconds
VECTORS = [[1, -1, 1, -1, 1, -1, 1, -1], [1, 1, -1, -1, 1, 1, -1, -1]]
TRAIN = {"epochs": 1, "read_every": 1, "patterns": {"vectors": VECTORS}}


def _validate(docs: list[tuple[str, dict]]) -> None:
    for name, doc in docs:
        event_model.schema_validators[event_model.DocumentNames(name)].validate(doc)


class Collector(CallbackBase):
    """A bluesky callback: the documents it was dispatched, by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[str, list[dict]] = {"start": [], "descriptor": [], "event": [], "stop": []}

    def start(self, doc: dict) -> None:
        self.seen["start"].append(doc)

    def descriptor(self, doc: dict) -> None:
        self.seen["descriptor"].append(doc)

    def event(self, doc: dict) -> None:
        self.seen["event"].append(doc)

    def stop(self, doc: dict) -> None:
        self.seen["stop"].append(doc)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dry run of train_hopfield whose documents go to bluesky callbacks as it runs."""
    docs: list[tuple[str, dict]] = []
    collector = Collector()
    table_lines: list[str] = []
    table = LiveTable(["v_read", "t_bench", "duration"], stream_name="primary", out=table_lines.append)

    def fan_out(name: str, doc: dict) -> None:
        docs.append((name, doc))
        collector(name, doc)
        table(name, doc)

    observer = DocumentObserver(fan_out)
    out = tmp_path_factory.mktemp("documents")
    summary = run_protocol("train_hopfield", bench=film_config(8), overrides=TRAIN, out_dir=out, dry_run=True,
                           progress=False, observers=[observer])
    yield {"docs": docs, "collector": collector, "table": table_lines, "summary": summary, "observer": observer}


def test_every_document_of_a_live_dry_run_is_valid_event_model(live: dict[str, Any]) -> None:
    assert live["summary"].status == "complete" and live["observer"].errors == []
    docs = live["docs"]
    _validate(docs)
    names = [n for n, _ in docs]
    assert names[0] == "start" and names[-1] == "stop" and names.count("start") == names.count("stop") == 1
    start, stop = docs[0][1], docs[-1][1]
    assert start["plan_name"] == "train_hopfield" and start["protocol_params"]["epochs"] == 1
    assert stop["exit_status"] == "success" and stop["run_start"] == start["uid"]
    # one event per measured operation, stream by stream, as the archive counts them
    with open_run(live["summary"].archive) as run:
        counts = run.counts
        g_last = run.g.values[-1]
    assert stop["num_events"]["primary"] == counts["reads"]
    assert stop["num_events"]["pulses"] == counts["applies"]
    # protocol records, and the runner's confirmed bench state before and after (records of the archive too)
    assert sum(v for k, v in stop["num_events"].items() if k.startswith("record_")) + \
        stop["num_events"]["bench_state_start"] + stop["num_events"]["bench_state_end"] == counts["records"]
    end_state = [d for n, d in docs if n == "event" and "safe" in d["data"]][-1]["data"]
    assert end_state["safe"] is True and end_state["confirmed_matrix"] == "all relays open"
    last_read = [d for n, d in docs if n == "event" and d["data"].get("g") is not None][-1]
    np.testing.assert_array_equal(np.asarray(last_read["data"]["g"]), g_last)
    units = {k: v.get("units") for n, d in docs if n == "descriptor" and d["name"] == "primary"
             for k, v in d["data_keys"].items()}
    assert units["conductance"] == "S" and units["v_read"] == "V" and units["t_bench"] == "s"


def test_bluesky_callbacks_consume_the_run(live: dict[str, Any]) -> None:
    seen = live["collector"].seen
    assert len(seen["start"]) == len(seen["stop"]) == 1
    assert {d["name"] for d in seen["descriptor"]} >= {"primary", "pulses", "record_train_epoch"}
    assert len(seen["event"]) == sum(live["docs"][-1][1]["num_events"].values())
    # LiveTable printed a row per matrix read (header lines aside): v_read 0.1 V
    rows = [line for line in live["table"] if "|" in line and "0.100" in line]
    assert len(rows) == live["docs"][-1][1]["num_events"]["primary"], live["table"]


def test_a_router_of_bluesky_callbacks_gets_the_run(live: dict[str, Any]) -> None:
    """event-model's RunRouter (what databroker and tiled serializers sit behind) dispatches it."""
    got: list[str] = []
    router = event_model.RunRouter([lambda name, doc: ([lambda n, d: got.append(n)], [])])
    for name, doc in live["docs"]:
        router(name, doc)
    assert got == [{"event": "event_page"}.get(n, n) for n, _ in live["docs"]]  # the router pages events


def test_a_replayed_archive_gives_the_same_documents(live: dict[str, Any]) -> None:
    replayed: list[tuple[str, dict]] = []
    n = replay(live["summary"].archive, lambda name, doc: replayed.append((name, doc)))
    _validate(replayed)
    assert n == sum(replayed[-1][1]["num_events"].values())

    def content(docs: list[tuple[str, dict]]) -> list[tuple[str, str, dict, float]]:
        stream = {d["uid"]: d["name"] for name, d in docs if name == "descriptor"}
        return [(name, stream.get(d.get("descriptor", ""), ""), d.get("data", {}), d["time"]) for name, d in docs
                if name in ("descriptor", "event")]

    a, b = content(live["docs"]), content(replayed)
    assert [x[:2] for x in a] == [x[:2] for x in b]
    for (_, stream, da, ta), (_, _, db, tb) in zip(a, b):
        # the confirmed bench state is timed by each observer as it gets it (ms apart); the rest exactly
        assert ta == tb or (stream == "" or stream.startswith("bench_state_")) and abs(ta - tb) < 1.0
        assert da.keys() == db.keys(), stream
        for key in da:
            if isinstance(da[key], str):
                assert da[key] == db[key], (stream, key)
            else:
                np.testing.assert_array_equal(np.asarray(da[key], float), np.asarray(db[key], float))
    start_live, start_replay = live["docs"][0][1], replayed[0][1]
    same = {k for k in start_live if k not in ("uid", "time")}
    assert {k: start_live[k] for k in same} == {k: start_replay[k] for k in same}
    assert replayed[-1][1]["exit_status"] == "success"


def test_hopbench_documents_writes_json_lines(live: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "run.jsonl"
    res = hopbench("documents", live["summary"].archive, "--out", str(target))
    assert res.returncode == 0, res.stderr
    docs = [tuple(json.loads(line)) for line in target.read_text().splitlines()]
    _validate(docs)  # type: ignore[arg-type]
    assert [n for n, _ in docs] == [n for n, _ in live["docs"]]


def test_an_aborted_run_stops_with_abort_and_a_failing_callback_never_stops_a_run(tmp_path: Path) -> None:
    docs: list[tuple[str, dict]] = []

    def broken(name: str, doc: dict) -> None:
        if name == "event":
            raise RuntimeError("a user's callback bug")

    class AbortAfterFirstRead:
        def start(self, info: Any) -> None: ...
        def checkpoint(self, index: int, state: Any) -> None: ...
        def finish(self, status: str, error: str | None = None) -> None: ...

        def operation(self, record: Any) -> None:
            if record.op.kind == "read_matrix":
                runner.abort()

    good = JsonLinesDocuments(tmp_path / "docs.jsonl")
    bad = DocumentObserver(broken)
    with Bench.open(film_config(8), simulate=True) as bench:
        runner = Runner(bench, [ArchiveWriter(tmp_path / "run.h5"), good, bad, AbortAfterFirstRead()])
        result = runner.run(load_protocol("train_hopfield", TRAIN))
    good.close()
    assert result.status == "aborted"
    docs = [tuple(json.loads(line)) for line in (tmp_path / "docs.jsonl").read_text().splitlines()]
    _validate(docs)  # type: ignore[arg-type]
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "abort" and "abort" in docs[-1][1]["reason"]
    assert bad.errors and "a user's callback bug" in bad.errors[0]
    with open_run(tmp_path / "run.h5") as run:
        assert run.status == "aborted" and run.counts["reads"] == 1  # the run went on to its clean end


def test_hopbench_run_writes_the_documents_as_it_runs(tmp_path: Path) -> None:
    import tomli_w

    from conftest import film_bench_dict

    bench = tmp_path / "film8.toml"
    bench.write_text(tomli_w.dumps(film_bench_dict(8)))
    target = tmp_path / "live.jsonl"
    res = hopbench("run", "read_conductances", "--dry-run", "--quiet", "--bench", str(bench), "--out",
                   str(tmp_path / "runs"), "--documents", str(target))
    assert res.returncode == 0, res.stderr
    docs = [tuple(json.loads(line)) for line in target.read_text().splitlines()]
    _validate(docs)  # type: ignore[arg-type]
    assert docs[0][0] == "start" and docs[0][1]["plan_name"] == "read_conductances"
    assert docs[-1][0] == "stop" and docs[-1][1]["num_events"]["primary"] == 1


def test_a_run_whose_writer_died_replays_with_a_fail_stop(tmp_path: Path) -> None:
    from test_archive_synthetic import film_bench, run_info

    writer = ArchiveWriter(tmp_path / "dead.h5")
    writer.start(run_info(film_bench(6)))
    writer.close()  # gone without finishing, as a killed writer is
    docs: list[tuple[str, dict]] = []
    replay(tmp_path / "dead.h5", lambda name, doc: docs.append((name, doc)))
    _validate(docs)
    assert [n for n, _ in docs] == ["start", "stop"]
    assert docs[-1][1]["exit_status"] == "fail" and "interrupted" in docs[-1][1]["reason"]
