"""A sweep on a real Dask LocalCluster, with one point that fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest

from lab.app.sweep import SweepSpec, expand, load_sweep

SWEEP = """
protocol = "read_conductances"
mode = "grid"
seed = 3
metric = "conductance.v_read"

[grid]
"protocol.repeats" = [1, 0, 2]   # 0 is not a valid repeat count: that point must fail alone
"""


@pytest.mark.slow
def test_sweep_on_a_local_cluster_records_a_failed_point_and_goes_on(tmp_path: Path) -> None:
    spec = tmp_path / "sweep.toml"
    spec.write_text(SWEEP)
    out = tmp_path / "out"
    res = subprocess.run(
        [sys.executable, "-m", "lab.app.cli", "sweep", str(spec), "--workers", "2", "--out", str(out), "--json"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "COLUMNS": "200"},
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    rows = sorted(summary["points"], key=lambda r: r["point"])
    assert [r["status"] for r in rows] == ["complete", "failed", "complete"]
    assert "repeats" in rows[1]["error"]
    for row in (rows[0], rows[2]):
        with h5py.File(row["archive"], "r", swmr=True) as f:
            assert f["entry/status"].asstr()[()] == "complete"
            assert json.loads(f["entry/protocol/parameters"].asstr()[()])["repeats"] == row["protocol.repeats"]
    assert not Path(rows[1]["archive"]).exists()
    table = pd.read_csv(out / "summary.csv")
    assert list(table["status"]) == ["complete", "failed", "complete"]
    assert Path(summary["figure"]).stat().st_size > 5000


def test_grid_and_random_expansion_are_deterministic(tmp_path: Path) -> None:
    grid = SweepSpec(protocol="p", grid={"protocol.a": [1, 2], "preset.cycle_noise": [0.1, 0.2, 0.3]})
    points = expand(grid, tmp_path)
    assert len(points) == 6
    assert points[1].protocol_params == {"a": 1} and points[1].preset_overrides == {"cycle_noise": 0.2}
    assert len({p.sim_seed for p in points}) == 6  # every point its own simulator seed
    rnd = SweepSpec(protocol="p", mode="random", samples=5, seed=4,
                    random={"protocol.v": {"low": 0.5, "high": 1.0}})
    a, b = expand(rnd, tmp_path), expand(rnd, tmp_path)
    assert [p.protocol_params for p in a] == [p.protocol_params for p in b]
    assert all(0.5 <= p.protocol_params["v"] <= 1.0 for p in a)


@pytest.mark.parametrize("text, field", [
    ('protocol = "p"\n[grid]\n"voltage" = [1]\n', "voltage"),
    ('protocol = "p"\nmode = "random"\n[random]\n"protocol.v" = {low = 2, high = 1}\n', "high"),
    ('protocol = "p"\n[grid]\n"protocol.v" = []\n', "protocol.v"),
    ('protocl = "p"\n', "protocl"),
])
def test_bad_sweep_files_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=field):
        load_sweep(path)
