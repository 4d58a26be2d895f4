"""JSON as the archive stores it: NumPy and dataclasses made plain, keys made strings."""
from __future__ import annotations

import dataclasses
import json
from collections import abc
from typing import Any, Mapping

import numpy as np


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, abc.Mapping):
        return {str(k): v for k, v in obj.items()}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    if hasattr(obj, "model_dump"):  # pydantic models
        return obj.model_dump(mode="json")
    return str(obj)


def to_json(obj: Any) -> str:
    """JSON text of ``obj``; NumPy arrays become lists, NaN stays ``NaN`` (Python's JSON)."""
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def keys_to_str(obj: Any) -> Any:
    """``obj`` with every mapping key a string.

    json.dumps refuses tuple keys and silently turns int keys into strings; do it ourselves.
    """
    if isinstance(obj, abc.Mapping):
        return {k if type(k) is str else str(k): keys_to_str(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [keys_to_str(v) for v in obj]
    return obj


def archived_json(obj: Any) -> str:
    """The JSON text the archive stores for ``obj`` (any keys, NumPy values)."""
    return to_json(keys_to_str(obj))


def numeric_items(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """Scalar numbers of a (nested) mapping, keys joined with dots; bools count as 0/1."""
    out: list[tuple[str, float]] = []
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
            out.append((key, float(v)))
        elif isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
            out.append((key, float(v)))
        elif isinstance(v, abc.Mapping):
            out.extend(numeric_items(v, key + "."))
    return out
