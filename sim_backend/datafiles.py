"""Where the shipped data files (presets, benches, patterns) live.

In a source checkout or an editable install they sit in the top-level ``data/``
folder; a built wheel carries the same folder as ``hopbench_data/``.
"""
from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    for candidate in (_ROOT / "data", _ROOT / "hopbench_data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"hopbench data folder not found next to {_ROOT} (looked for data/ and hopbench_data/)"
    )


def data_path(*parts: str) -> Path:
    return data_dir().joinpath(*parts)
