"""Settings a simulated SCPI instrument keeps and reads back, declared as a table.

Most of an instrument's tree is settings with no effect on the simulated circuit (delays,
filters, display, trigger lines ...), yet each must take the values the manual allows,
refuse others with the manual's error and answer its query with what was set. A
:class:`Setting` says that once; :func:`add_settings` declares the set and query handlers
on a :class:`~sim_backend.instruments.scpi.Dispatcher`. Values live in a dict the model
clears on ``*RST`` (an absent key reads as the default). Numeric suffixes of the header
(``:OUTP2``, ``:SENS:CURR:DEL:USER3``) are part of the key, so each channel or user slot
keeps its own value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .scpi import Call, Dispatcher, ScpiError, boolean, choice, nr3, number, string


@dataclass(frozen=True)
class Setting:
    """One stored setting: its header pattern, kind and allowed values.

    ``kind``: ``"number"`` (NRf in [lo, hi], MIN/MAX/DEF; replies NR3), ``"int"``
    (replies an integer), ``"bool"`` (ON/OFF/1/0; replies 1/0), ``"choice"`` (one of
    ``options`` written as in the manual, ``VOLTage``; replies the short form),
    ``"string"`` (a quoted string; replies it quoted), ``"readonly"`` (a query only).
    """

    pattern: str
    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    options: tuple[str, ...] = ()


def num(pattern: str, default: float, lo: float, hi: float) -> Setting:
    return Setting(pattern, "number", default, lo, hi)


def integer(pattern: str, default: int, lo: int, hi: int) -> Setting:
    return Setting(pattern, "int", default, lo, hi)


def flag(pattern: str, default: bool) -> Setting:
    return Setting(pattern, "bool", default)


def pick(pattern: str, default: str, *options: str) -> Setting:
    return Setting(pattern, "choice", default, options=options)


def text(pattern: str, default: str) -> Setting:
    return Setting(pattern, "string", default)


def readonly(pattern: str, reply: str) -> Setting:
    return Setting(pattern, "readonly", reply)


def short(option: str) -> str:
    return "".join(c for c in option if c.isupper() or c.isdigit()) or option.upper()


def parse_value(s: Setting, c: Call) -> Any:
    """The value a set command carries, checked as the setting allows."""
    if s.kind == "number":
        return number(c.one(), s.lo, s.hi, s.default)
    if s.kind == "int":
        v = number(c.one(), s.lo, s.hi, s.default)
        return int(round(v))
    if s.kind == "bool":
        return boolean(c.one())
    if s.kind == "choice":
        value = choice(c.one(), s.options)
        return next(short(o) for o in s.options if o.upper() == value)
    return string(c.one())


def format_value(s: Setting, value: Any) -> str:
    if s.kind == "number":
        return nr3(float(value))
    if s.kind == "int":
        return str(int(value))
    if s.kind == "bool":
        return "1" if value else "0"
    if s.kind == "string":
        return f'"{value}"'
    return str(value)


def add_settings(scpi: Dispatcher, table: Sequence[Setting], store: dict[Any, Any]) -> None:
    """Declare each setting's set/query handlers on ``scpi``; values go into ``store``."""
    for s in table:
        if s.kind == "readonly":
            scpi.add(s.pattern, None, lambda c, s=s: s.default)
            continue

        def on_set(c: Call, s: Setting = s) -> None:
            store[_key(s, c.suffixes)] = parse_value(s, c)

        def on_query(c: Call, s: Setting = s) -> str:
            c.none()
            return format_value(s, store.get(_key(s, c.suffixes), s.default))

        scpi.add(s.pattern, on_set, on_query)


def _key(s: Setting, suffixes: Sequence[int | None] | None = None) -> tuple[str, tuple[int, ...]]:
    """A setting's place in the store: an absent suffix is 1 (``:SOUR`` is ``:SOUR1``)."""
    if suffixes is None:
        suffixes = [None] * s.pattern.count("#")
    return (s.pattern, tuple(1 if x is None else x for x in suffixes))


def stored(store: dict[Any, Any], s: Setting, suffixes: Sequence[int | None] | None = None) -> Any:
    """The value of ``s`` (for the given header suffixes; default: all 1)."""
    return store.get(_key(s, suffixes), s.default)


def put(store: dict[Any, Any], s: Setting, value: Any, suffixes: Sequence[int | None] | None = None) -> None:
    store[_key(s, suffixes)] = value


__all__ = ["Setting", "add_settings", "flag", "integer", "num", "pick", "readonly", "text", "stored", "put", "ScpiError"]
