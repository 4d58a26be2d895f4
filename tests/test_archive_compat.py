"""Archives every tool opens: nexusformat and plain h5py read a run file whole, an old
(layout 1) file stays readable and resumable, and the archived git revision is hopbench's own."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from test_archive_synthetic import write_synthetic

from lab.archive import LAYOUT_VERSION, ArchiveWriter, open_run
from lab.observer import OperationRecord
from lab.operations import MatrixResult, ReadMatrix

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    path = tmp_path / "run.h5"
    write_synthetic(path, epochs=2, n=6)
    return path


def test_nexusformat_loads_the_whole_file_and_finds_the_default_plot(archive: Path) -> None:
    nexus = pytest.importorskip("nexusformat.nexus", reason="nexusformat is in the test extra")
    root = nexus.nxload(str(archive))
    try:
        tree = root.tree  # reads every group and field; today's file raised on /entry/committed
        assert "committed" in tree and "conductance" in tree
        data = root.plottable_data
        assert data is not None and data.nxsignal.nxname == "conductance"
        with h5py.File(archive, "r") as f:
            reads = int(f["entry/committed"][0]["reads"])
        assert root["entry/committed"].shape == (1,) and root["entry/data/conductance"].shape[0] == reads
    finally:
        root.nxfile.close()


def test_plain_h5py_reads_every_dataset(archive: Path) -> None:
    seen = []
    with h5py.File(archive, "r") as f:  # no SWMR: what HDFView, MATLAB and silx do
        assert f.attrs["hopbench_layout_version"] == LAYOUT_VERSION
        f.visititems(lambda name, obj: seen.append(name) if isinstance(obj, h5py.Dataset) and obj[()] is not None else None)
        assert f["entry/committed"].shape == (1,)
    assert len(seen) > 40


def _as_layout_1(path: Path) -> None:
    """Rewrite a file as hopbench's layout 1 wrote it: /entry/committed a compound scalar."""
    with h5py.File(path, "r+") as f:
        old = f["entry/committed"]
        row, attrs = old[0], dict(old.attrs)
        del f["entry/committed"]
        new = f["entry"].create_dataset("committed", data=np.array(row, dtype=row.dtype).reshape(()))
        new.attrs.update(attrs)
        f.attrs["hopbench_layout_version"] = 1


def test_a_layout_1_archive_reads_and_resumes(tmp_path: Path) -> None:
    path = tmp_path / "old.h5"
    write_synthetic(path, epochs=2, n=6)
    with h5py.File(path, "r+") as f:  # an aborted run, to resume
        f["entry/status"][()] = np.bytes_("aborted")
    with open_run(path) as r:
        counts, g, n = dict(r.counts), r.g.values.copy(), r.info["n_neurons"]
    _as_layout_1(path)
    with open_run(path) as r:
        assert r.layout_version == 1 and r.counts == counts
        np.testing.assert_array_equal(r.g.values, g)
    w = ArchiveWriter.resume(path)  # appends to the old layout in place
    res = MatrixResult(g=g[-1], g_std=g[-1] * 0.01, matrix=np.full((n, n), np.nan), matrix_std=np.full((n, n), np.nan),
                       v_read=0.1)
    w.operation(OperationRecord(10_000, ReadMatrix(), res, 0.0, 0.0, 0.1, {}))
    w.finish("complete")
    with open_run(path) as r:
        assert r.layout_version == 1 and r.status == "complete" and r.counts["reads"] == counts["reads"] + 1
        assert r.resumes.shape[0] == 1


def test_the_archived_git_revision_is_hopbenchs_own(tmp_path: Path) -> None:
    from lab.runner import _git_revision

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0 and (ROOT / "pyproject.toml").is_file():
        assert _git_revision() == head.stdout.strip()
    # the same packages installed inside some other git repository get their version, not its HEAD
    other = tmp_path / "analysis"
    site = other / "site"
    site.mkdir(parents=True)
    for pkg in ("lab", "drivers", "protocols", "sim_backend"):
        shutil.copytree(ROOT / pkg, site / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-c", "user.email=t@example.org", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q", str(other)], check=True)
    subprocess.run([*git, "-C", str(other), "commit", "-q", "--allow-empty", "-m", "theirs"], check=True)
    theirs = subprocess.run(["git", "-C", str(other), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    code = f"import sys; sys.path.insert(0, {str(site)!r}); import json, lab, lab.runner as r; " \
           "print(json.dumps([r.__file__, r._git_revision(), lab.__version__]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    where, revision, version = json.loads(out.stdout)
    assert where.startswith(str(site)) and revision != theirs and revision == f"installed {version}"
