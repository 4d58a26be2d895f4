"""Archive round trip: a run written through the RunObserver API, read back with h5py alone
and with the reader."""
from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from lab.archive import LAYOUT_VERSION, ArchiveError, ArchiveFormatError, ArchiveWriter, list_runs, open_run
from lab.operations import Apply, ApplyResult, BenchInfo, MatrixResult, Note, Pulse, ReadMatrix, Record
from test_archive_synthetic import SyntheticRun, film_bench, run_info, write_synthetic

# ------------------------------------------------------------------ tests


def _json_at(f: h5py.File, off: int, length: int):
    return json.loads(f["entry/log/json"][off: off + length].tobytes().decode())


def test_round_trip_with_h5py_alone(tmp_path):
    path = tmp_path / "run.h5"
    w, run = write_synthetic(path, epochs=3)
    n, d = 35, 595
    with h5py.File(path, "r") as f:
        assert f.attrs["hopbench_layout_version"] == LAYOUT_VERSION
        assert f.attrs["default"] == "entry" and f["entry"].attrs["default"] == "data"
        assert f["entry/status"][()] == b"complete"
        assert f["entry/end_time"][()].decode().startswith("20")
        c = f["entry/committed"][0]
        reads = [r for r in run.sent if isinstance(r.op, ReadMatrix)]
        assert c["operations"] == len(run.sent)
        assert c["reads"] == len(reads) == 4
        assert c["records"] == 9 and c["checkpoints"] == 3 and c["pairs"] == 3
        # every dataset and group is self-describing
        def check(name, obj):
            if isinstance(obj, h5py.Dataset):
                assert "units" in obj.attrs and "long_name" in obj.attrs, name
            else:
                assert "NX_class" in obj.attrs, name
        f.visititems(check)
        # measured data, bit for bit
        G = f["entry/data/conductance"]
        assert G.shape == (4, n, n) and G.attrs["units"] == "S"
        for k, r in enumerate(reads):
            np.testing.assert_array_equal(G[k], r.result.matrix)
            np.testing.assert_array_equal(f["entry/devices/g"][k], r.result.g)
            np.testing.assert_array_equal(f["entry/devices/truth"][k], r.truth)
            assert f["entry/data/t_bench"][k] == r.t_bench
        assert f["entry/data"].attrs["signal"] == "conductance"
        pulses = [r for r in run.sent if isinstance(r.op, Pulse)]
        np.testing.assert_array_equal(f["entry/apply/line_voltages"][...], [r.result.line_voltages for r in pulses])
        ap = f["entry/log/applies"][...]
        assert set(ap["kind"]) == {b"pulse"} and np.all(ap["count"] == 3)
        # the operation log holds the op and its settings as JSON
        ops = f["entry/log/operations"][...]
        assert [k.decode() for k in ops["kind"]] == [r.op.kind for r in run.sent]
        doc = _json_at(f, ops[1]["json_offset"], ops[1]["json_length"])
        assert doc["op"]["type"] == "ReadMatrix" and doc["settings"]["nplc"] == 1.0
        assert ops[1]["table"] == b"reads" and ops[1]["row"] == 0
        # records: JSON rows plus a numeric long table
        recs = f["entry/log/records"][...]
        sent_records = [r.op for r in run.sent if isinstance(r.op, Record)]
        assert [s.decode() for s in recs["stream"]] == [r.stream for r in sent_records]
        recall = _json_at(f, recs[1]["json_offset"], recs[1]["json_length"])
        assert recall["cue"] == sent_records[1].values["cue"].tolist()
        vals = f["entry/log/record_values"][...]
        acc = vals[(vals["stream"] == b"accuracy") & (vals["key"] == b"bit_accuracy")]["value"]
        np.testing.assert_allclose(acc, [0.7, 0.8, 0.9])
        assert b"stats.cues" in set(vals["key"])
        # provenance
        assert json.loads(f["entry/protocol/parameters"].asstr()[()])["v_train"] == 2.5
        assert json.loads(f["entry/protocol/seeds"].asstr()[()]) == {"seed": 7, "sim": 1234}
        assert f["entry/instrument/bench_text"].asstr()[()].startswith("[bench]")
        assert f["entry/program_name"].attrs["git_revision"] == "abc1234"
        assert f["entry/sample/device_lines"].shape == (d, 2)
        assert f["entry/instrument/v_max"].attrs["units"] == "V"


def test_round_trip_with_reader(tmp_path):
    path = tmp_path / "run.h5"
    w, run = write_synthetic(path, epochs=3)
    reads = [r for r in run.sent if isinstance(r.op, ReadMatrix)]
    with open_run(path) as r:
        assert r.status == "complete" and r.error == ""
        assert r.protocol_name == "synthetic_train" and r.protocol_params["epochs"] == 3
        assert r.info["host"] == "testhost" and r.info["seeds"]["sim"] == 1234
        G = r.conductance
        assert G.dims == ("read", "row", "col") and G.attrs["units"] == "S"
        np.testing.assert_array_equal(G.values[-1], reads[-1].result.matrix)
        assert np.isnan(G.coords["epoch"].values[0])
        assert list(G.coords["epoch"].values[1:]) == [1, 2, 3]  # reads carry the epoch they follow
        ds = r.dataset()
        assert set(ds.data_vars) >= {"conductance", "conductance_errors", "g", "g_errors", "truth"}
        tidy = r.conductance_table()
        assert len(tidy) == 4 * 2 * 595  # one row per read and filled cell (a film's matrix is symmetric)
        assert {"read", "row", "col", "G_S", "G_std_S", "t_bench_s"} <= set(tidy.columns)
        dt = r.device_table()
        np.testing.assert_allclose(dt["G_S"] - dt["truth_S"], dt["error_S"])
        ops = r.operations
        assert list(ops["kind"]) == [x.op.kind for x in run.sent]
        assert ops.loc[1, "op"]["type"] == "ReadMatrix"
        acc = r.records("accuracy")
        assert list(acc["epoch"]) == [1, 2, 3]
        assert acc["bit_accuracy"].iloc[-1] == pytest.approx(0.9)
        rec = r.records("recall")
        assert len(rec["cue"].iloc[0]) == 35
        assert set(r.record_values["stream"]) == {"recall", "accuracy", "train_epoch"}
        ck = r.checkpoints
        assert list(ck["state"].iloc[-1].keys()) == ["epoch", "rng"] and ck["state"].iloc[-1]["epoch"] == 3
        assert len(r.pairs) == 3 and r.pairs["truth_S"].notna().all()
        assert r.multiply.shape == (3, 35)
        assert r.applied.shape == (6, 35)
    runs = list_runs(tmp_path)
    assert isinstance(runs, pd.DataFrame) and len(runs) == 1
    row = runs.iloc[0]
    assert row["status"] == "complete" and row["protocol"] == "synthetic_train" and row["size_bytes"] > 10_000


def test_start_refuses_to_overwrite_and_folder_naming(tmp_path):
    bench = film_bench(6)
    w = ArchiveWriter(tmp_path)  # a folder: the writer names the file
    w.start(run_info(bench))
    w.finish("complete")
    assert w.path.parent == tmp_path and w.path.name.endswith("_synthetic_train_synthetic01.h5")
    with pytest.raises(FileExistsError):
        ArchiveWriter(w.path).start(run_info(bench))
    with pytest.raises(ArchiveError, match="complete"):
        ArchiveWriter.resume(w.path)


def test_failed_run_and_shape_errors(tmp_path):
    bench = film_bench(6)
    path = tmp_path / "f.h5"
    with pytest.raises(ValueError, match="MatrixResult.matrix has shape"):
        with ArchiveWriter(path) as w:
            w.start(run_info(bench))
            s = SyntheticRun(w, bench)
            s._send(Note("before"))
            bad = MatrixResult(g=np.zeros(15), g_std=np.zeros(15), matrix=np.zeros((5, 5)), matrix_std=np.zeros((5, 5)), v_read=0.1)
            s._send(ReadMatrix(), bad)
    with open_run(path) as r:
        assert r.status == "failed" and "MatrixResult.matrix has shape" in r.error
        assert list(r.operations["kind"]) == ["note"]  # what was measured before the error is kept


def test_small_crossbar_and_odd_values(tmp_path):
    # A crossbar bench (small rows share chunks), NaN lines, non-JSON values in records.
    n = 4
    devices = tuple((i, n + j) for i in range(n) for j in range(n))
    bench = BenchInfo(
        line_names=tuple([f"R{i}" for i in range(n)] + [f"K{i}" for i in range(n)]),
        neuron_lines=tuple((i, n + i) for i in range(n)), devices=devices,
        device_cells=tuple((i, j) for i in range(n) for j in range(n)), topology="crossbar",
        v_max=3.0, v_read_max=0.1, max_pulse_width_s=1e-3, default_v_read=0.05,
    )
    path = tmp_path / "x.h5"
    w = ArchiveWriter(path, flush_every=1, fsync=True)
    w.start(run_info(bench))
    s = SyntheticRun(w, bench)
    lv = np.array([1.0, np.nan, 0, 0, 0, 0, 0, 0])
    s._send(Apply.of({0: 1.0}, 1e-3, others="float"), ApplyResult(lv, 1e-3, {}))
    s._send(Record("odd", {"path": Path("/x"), "arr": np.arange(3), "nan": math.nan, (1, 2): "tuple key",
                           "flag": np.bool_(True), "i": np.int64(4)}))
    s.read_matrix()
    w.finish("aborted", "operator pressed Ctrl-C")
    with open_run(path) as r:
        assert r.status == "aborted" and "Ctrl-C" in r.error
        assert np.isnan(r.applied.values[0, 1]) and r.applied.values[0, 0] == 1.0
        odd = r.records("odd").iloc[0]
        assert odd["path"] == "/x" and odd["arr"] == [0, 1, 2] and math.isnan(odd["nan"]) and odd["(1, 2)"] == "tuple key"
        vals = r.record_values.set_index("key")["value"]
        assert vals["flag"] == 1.0 and vals["i"] == 4.0
        assert r.conductance.shape == (1, 4, 4)
        assert r.counts["commits"] >= 3  # flush_every=1


def test_reader_names_what_it_cannot_read(tmp_path):
    write_synthetic(tmp_path / "future.h5", epochs=1, n=6)
    with h5py.File(tmp_path / "future.h5", "r+") as f:
        f.attrs["hopbench_layout_version"] = LAYOUT_VERSION + 1
    with pytest.raises(ArchiveFormatError, match=f"layout version {LAYOUT_VERSION + 1}.*newer hopbench"):
        open_run(tmp_path / "future.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(ArchiveFormatError, match="not a hopbench run archive"):
        open_run(tmp_path / "other.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 at all")
    write_synthetic(tmp_path / "good.h5", epochs=1, n=6)
    runs = list_runs(tmp_path).set_index("path")
    status = {Path(k).name: v for k, v in runs["status"].items()}
    assert status == {"future.h5": "unreadable", "other.h5": "unreadable", "junk.h5": "unreadable", "good.h5": "complete"}
    assert "newer hopbench" in runs.loc[str(tmp_path / "future.h5"), "error"]
