"""The wheel a lab PC installs: our four packages with their shipped data inside them."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_shipped_data_inside_the_owning_packages(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (wheel,) = tmp_path.glob("hopbench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"lab", "drivers", "protocols", "sim_backend"}
    shipped = {
        "sim_backend/data": ROOT / "data" / "presets",
        "protocols/data": ROOT / "data" / "patterns",
        "lab/benches": ROOT / "data" / "benches",
        "lab/sweeps": ROOT / "data" / "sweeps",
    }
    for inside, source in shipped.items():
        files = sorted(p.name for p in source.iterdir() if p.is_file())
        assert files and all(f"{inside}/{f}" in names for f in files), inside
    # the live monitor's page: everything it loads is in the package (labs are often offline)
    assert {f"lab/app/monitor/static/{f}" for f in ("index.html", "monitor.css", "monitor.js")} <= set(names)
