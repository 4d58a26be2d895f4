"""A simulated sample that persists between dry runs, as a real one does between bench runs.

A *sample file* (HDF5) holds the twin's dynamic state — every device's texture, the
generator, the virtual clock — and which preset and seed made the sample (the seed fixes its
device-to-device spread, so the same sample is rebuilt from it before the state is laid on).
``--sample NAME`` names a file in ``<out>/samples/``; a path ending in ``.h5`` names a file
anywhere. A run archive can be given too: the sample continues from the state its last
checkpoint stored (a run archive is never written to by another run).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from lab.archive import open_run
from lab.archive.access import open_h5
from lab.observer import TWIN_STATE

SAMPLE_FORMAT = "hopbench-sample/1"
_ARRAYS = ("x", "pool")


class SampleError(ValueError):
    """A sample file that cannot be used here; the message says why."""


def sample_path(name_or_path: str | Path, out_dir: str | Path) -> Path:
    """Where a sample lives: a bare name is ``<out_dir>/samples/<name>.h5``."""
    text = str(name_or_path)
    if text.endswith(".h5") or "/" in text or "\\" in text:
        return Path(text)
    if not text or not all(c.isalnum() or c in "-_." for c in text):
        raise SampleError(f"--sample {text!r}: a name may hold letters, digits, '-', '_' and '.' only")
    return Path(out_dir) / "samples" / f"{text}.h5"


def is_run_archive(path: Path) -> bool:
    with open_h5(path).file as f:  # a damaged file: one ArchiveFormatError, never a hang
        return "entry" in f


def load_sample(path: Path) -> dict[str, Any]:
    """The twin state stored in a sample file, or in a run archive's last checkpoint."""
    if not path.exists():
        raise SampleError(f"{path}: no such sample")
    if is_run_archive(path):
        with open_run(path) as run:
            states = list(run.checkpoints["state"]) if len(run.checkpoints) else []
        state = next((s[TWIN_STATE] for s in reversed(states) if TWIN_STATE in s), None)
        if state is None:
            raise SampleError(f"{path}: this run archive stored no simulated sample (a real run, or no checkpoint)")
        return dict(state)
    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != SAMPLE_FORMAT:
            raise SampleError(f"{path}: not a hopbench sample file (format {f.attrs.get('format')!r})")
        state: dict[str, Any] = json.loads(f.attrs["state"])
        for key in _ARRAYS:
            state[key] = f[key][...]
    return state


def save_sample(path: Path, state: Mapping[str, Any], *, run_archive: str | None, bench: str) -> Path:
    """Write the sample atomically (a crash leaves the previous state, never half of one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, Any]] = []
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                history = json.loads(f.attrs.get("history", "[]"))
        except OSError:
            history = []
    history.append({"run": run_archive, "bench": bench, "clock_s": float(state["clock_s"]),
                    "saved": datetime.now(timezone.utc).isoformat()})
    tmp = path.with_name(path.name + ".tmp")
    scalars = {k: v for k, v in state.items() if k not in _ARRAYS}
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = SAMPLE_FORMAT
        f.attrs["state"] = json.dumps(scalars)
        f.attrs["history"] = json.dumps(history)
        for key in _ARRAYS:
            f.create_dataset(key, data=np.asarray(state[key], dtype=np.float32))
    tmp.replace(path)
    return path
