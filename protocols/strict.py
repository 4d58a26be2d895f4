"""Strict parameter types, checked before pydantic's own (lax) conversion.

pydantic's lax mode turns ``true`` into 1 for an integer, ``"no"`` into False for a flag and
``"3"`` into 3.0; TOML and ``--set`` already give typed values (``epochs = 10`` is an
integer, ``calibrate = false`` a boolean), so anything else is a mistake to name, not to
guess at. pydantic's own ``strict`` mode cannot be used: it also refuses a TOML list for a
tuple field. Every number must be finite (an infinite width or count is no bound at all).
Nested parameter objects (``pulse.count``) and sequences are checked element by element.
"""
from __future__ import annotations

import collections.abc
import math
import numbers
import stat
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel

MAX_PROTOCOL_FILE_BYTES = 1_000_000  # a protocol file is a few parameters (shipped ones: < 2 kB)


def _shown(v: Any) -> str:
    if isinstance(v, bool):
        return f"{str(v).lower()} (true/false)"
    if isinstance(v, str):
        return f"{v!r} (text)"
    return repr(v)


def _problem(tp: Any, v: Any, path: str) -> str | None:
    """Why ``v`` is not a value of ``tp`` (None: acceptable, or left to pydantic)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _problem(args[0], v, path)
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return None
        problems = [_problem(a, v, path) for a in args if a is not type(None)]
        return None if any(p is None for p in problems) else problems[0]
    if isinstance(v, float) and not math.isfinite(v):
        return f"{path}: {v} is not a finite number"
    if origin is Literal or tp is Any or isinstance(v, BaseModel):
        return None
    if tp is bool:
        return None if isinstance(v, bool) else f"{path}: true/false expected, got {_shown(v)}"
    if tp is int:
        ok = isinstance(v, numbers.Integral) and not isinstance(v, bool)
        return None if ok else f"{path}: an integer expected, got {_shown(v)}"
    if tp is float:
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool)
        return None if ok else f"{path}: a number expected, got {_shown(v)}"
    if tp is str:
        return None if isinstance(v, str) else f"{path}: text expected, got {_shown(v)}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return fields_problem(tp, v, path + ".") if isinstance(v, Mapping) else None
    if origin in (tuple, list, collections.abc.Sequence, set, frozenset) and isinstance(v, (list, tuple)):
        if origin is tuple and args and args[-1] is not Ellipsis:
            pairs = list(zip(args, v))
        else:
            pairs = [(args[0] if args else Any, x) for x in v]
        for k, (a, x) in enumerate(pairs):
            p = _problem(a, x, f"{path}[{k}]")
            if p:
                return p
        return None
    if origin in (dict, collections.abc.Mapping) and isinstance(v, Mapping) and len(args) == 2:
        for key, x in v.items():
            p = _problem(args[1], x, f"{path}.{key}")
            if p:
                return p
    return _nonfinite(v, path)


def _nonfinite(v: Any, path: str) -> str | None:
    """A NaN or inf anywhere inside an untyped value."""
    if isinstance(v, float) and not math.isfinite(v):
        return f"{path}: {v} is not a finite number"
    if isinstance(v, (list, tuple)):
        for k, x in enumerate(v):
            p = _nonfinite(x, f"{path}[{k}]")
            if p:
                return p
    if isinstance(v, Mapping):
        for key, x in v.items():
            p = _nonfinite(x, f"{path}.{key}")
            if p:
                return p
    return None


def fields_problem(cls: type[BaseModel], data: Any, prefix: str = "") -> str | None:
    """The first parameter of ``data`` (a mapping of field values) with the wrong type."""
    if not isinstance(data, Mapping):
        return None
    for name, value in data.items():
        info = cls.model_fields.get(name) if isinstance(name, str) else None
        if info is None:
            continue  # an unknown name: pydantic's extra="forbid" names it
        p = _problem(info.annotation, value, prefix + name)
        if p:
            return p
    return None


def check_types(cls: type[BaseModel], data: Any) -> None:
    """Raise ValueError naming the first parameter whose value has the wrong type or is not finite."""
    p = fields_problem(cls, data)
    if p:
        raise ValueError(p)


def read_protocol_file(path: Path) -> str:
    """A protocol file's text: a regular file (not a fifo, /dev/zero or a folder), size-limited."""
    st = path.stat()
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{path}: not a regular file (a protocol file is a TOML text file)")
    with open(path, "rb") as fh:
        raw = fh.read(MAX_PROTOCOL_FILE_BYTES + 1)
    if len(raw) > MAX_PROTOCOL_FILE_BYTES:
        raise ValueError(f"{path}: larger than a protocol file can be ({MAX_PROTOCOL_FILE_BYTES} bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start})") from None
