"""A small SCPI parser: the subset real SCPI instruments share, enough for the simulators.

Command patterns are written as the manuals write them::

    [:SOURce#]:VOLTage[:LEVel][:IMMediate][:AMPLitude]

Upper-case letters are the short form, the whole word the long form (either is accepted,
nothing in between, any case); ``[...]`` marks an optional node; ``#`` an optional numeric
suffix (``SOUR2``), captured for the handler. A program message may hold several units
separated by ``;``; a unit without a leading ``:`` continues the path of the previous one,
as IEEE 488.2 says. Query replies of one message are joined with ``;``.

Handlers raise :class:`ScpiError` with a SCPI error code; the dispatcher stops the message
there and the instrument queues the error, as a real one does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Sequence


class ScpiError(Exception):
    """A SCPI error: negative codes are the standard ones (-113 Undefined header ...)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


UNDEFINED_HEADER = (-113, "Undefined header")
DATA_TYPE = (-104, "Data type error")
PARAM_NOT_ALLOWED = (-108, "Parameter not allowed")
MISSING_PARAM = (-109, "Missing parameter")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_VALUE = (-224, "Illegal parameter value")


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: bool

    def matches(self, text: str) -> bool:
        t = text.upper()
        return t == self.short or t == self.long


_NODE_RE = re.compile(r"(\[)?:?([A-Za-z*][A-Za-z0-9*]*?)(#)?(\])?(?=[\[:\]#]|$)")


def compile_pattern(pattern: str) -> tuple[_Node, ...]:
    """``[:SOURce#]:VOLTage[:LEVel]`` -> nodes with short/long forms and flags."""
    nodes = []
    pos = 0
    p = pattern.strip()
    while pos < len(p):
        m = _NODE_RE.match(p, pos)
        if not m or m.end() == pos:
            raise ValueError(f"bad SCPI pattern {pattern!r} at {pos}")
        opt_open, word, suffix, opt_close = m.groups()
        if bool(opt_open) != bool(opt_close):
            raise ValueError(f"unbalanced [] in SCPI pattern {pattern!r}")
        short = "".join(c for c in word if c.isupper() or c.isdigit() or c == "*")
        nodes.append(_Node(short, word.upper(), bool(opt_open), bool(suffix)))
        pos = m.end()
    return tuple(nodes)


@dataclass
class Unit:
    """One program message unit after parsing."""

    nodes: list[tuple[str, int | None]]  # (mnemonic text, numeric suffix)
    query: bool
    params: list[str]
    common: bool = False
    text: str = ""


def _split_outside(text: str, sep: str) -> list[str]:
    """Split at ``sep`` where it stands outside quotes and parentheses; parts are stripped."""
    out, cur, quote, depth = [], [], "", 0
    for c in text:
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == sep and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(c)
    out.append("".join(cur).strip())
    return out


def split_units(message: str) -> list[str]:
    """Split at ``;`` outside quotes and parentheses."""
    return [u for u in _split_outside(message, ";") if u]


def split_params(text: str) -> list[str]:
    """Split a parameter list at commas outside quotes and parentheses."""
    text = text.strip()
    if not text:
        return []
    out = _split_outside(text, ",")
    if any(p == "" for p in out):
        raise ScpiError(*MISSING_PARAM)
    return out


_MNEMONIC_RE = re.compile(r"^([A-Za-z][A-Za-z0-9]*?)(\d+)?$")


def parse_unit(text: str, previous: Unit | None) -> Unit:
    m = re.match(r"^(\S+?)(\?)?(?:\s+(.*))?$", text, re.S)
    if not m:
        raise ScpiError(*UNDEFINED_HEADER)
    header, q, rest = m.group(1), m.group(2), m.group(3) or ""
    if header.endswith("?"):
        header, q = header[:-1], "?"
    params = split_params(rest)
    if header.startswith(":*"):
        header = header[1:]  # ":*RST" (sent by some drivers) is the common command
    if header.startswith("*"):
        return Unit([(header.upper(), None)], bool(q), params, common=True, text=text)
    absolute = header.startswith(":")
    parts = header.lstrip(":").split(":")
    nodes: list[tuple[str, int | None]] = []
    for part in parts:
        mm = _MNEMONIC_RE.match(part)
        if not mm:
            raise ScpiError(*UNDEFINED_HEADER)
        nodes.append((mm.group(1), int(mm.group(2)) if mm.group(2) else None))
    if not absolute and previous is not None and not previous.common and len(previous.nodes) > 1:
        nodes = list(previous.nodes[:-1]) + nodes
    return Unit(nodes, bool(q), params, text=text)


def _match(pattern: Sequence[_Node], nodes: Sequence[tuple[str, int | None]]) -> list[int | None] | None:
    """Return the suffixes of the pattern's suffix nodes if ``nodes`` matches, else None."""
    if not pattern:
        return [] if not nodes else None
    head, rest = pattern[0], pattern[1:]
    if nodes and head.matches(nodes[0][0]):
        suffix = nodes[0][1]
        if suffix is None or head.suffix:
            sub = _match(rest, nodes[1:])
            if sub is not None:
                return ([suffix] if head.suffix else []) + sub
    if head.optional:
        sub = _match(rest, nodes)
        if sub is not None:
            return ([None] if head.suffix else []) + sub
    return None


@dataclass
class Call:
    """What a handler receives."""

    params: list[str]
    suffixes: list[int | None]
    query: bool
    text: str

    def suffix(self, index: int = 0, default: int = 1) -> int:
        s = self.suffixes[index] if index < len(self.suffixes) else None
        return default if s is None else s

    def one(self) -> str:
        if not self.params:
            raise ScpiError(*MISSING_PARAM)
        if len(self.params) > 1:
            raise ScpiError(*PARAM_NOT_ALLOWED)
        return self.params[0]

    def none(self) -> None:
        if self.params:
            raise ScpiError(*PARAM_NOT_ALLOWED)


Handler = Callable[[Call], "str | None"]


@dataclass
class _Command:
    pattern: tuple[_Node, ...]
    on_set: Handler | None
    on_query: Handler | None
    source: str = ""


@dataclass
class Dispatcher:
    """A table of SCPI commands; :meth:`execute` runs one program message."""

    commands: list[_Command] = field(default_factory=list)

    def add(self, pattern: str, on_set: Handler | None = None, on_query: Handler | None = None) -> None:
        self.commands.append(_Command(compile_pattern(pattern), on_set, on_query, pattern))

    def execute(self, message: str) -> str | None:
        """Run every unit; return the joined query replies or None. Raises ScpiError."""
        replies: list[str] = []
        previous: Unit | None = None
        for text in split_units(message):
            unit = parse_unit(text, previous)
            previous = unit
            reply = self._run(unit)
            if unit.query:
                replies.append("" if reply is None else reply)
        return ";".join(replies) if replies else None

    def _run(self, unit: Unit) -> str | None:
        for cmd in self.commands:
            if unit.common:
                if len(cmd.pattern) != 1 or cmd.pattern[0].long != unit.nodes[0][0]:
                    continue
                suffixes: list[int | None] | None = []
            else:
                suffixes = _match(cmd.pattern, unit.nodes)
                if suffixes is None:
                    continue
            handler = cmd.on_query if unit.query else cmd.on_set
            if handler is None:
                break  # a query of a set-only header (or the reverse) is undefined
            return handler(Call(unit.params, suffixes, unit.query, unit.text))
        raise ScpiError(*UNDEFINED_HEADER)


# -- parameter parsing ---------------------------------------------------------------

_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def number(text: str, lo: float | None = None, hi: float | None = None, default: float | None = None) -> float:
    """Parse a numeric parameter (NRf, MIN/MAX/DEF), checking it against [lo, hi]."""
    t = text.strip().upper()
    if t in ("MIN", "MINIMUM") and lo is not None:
        return lo
    if t in ("MAX", "MAXIMUM") and hi is not None:
        return hi
    if t in ("DEF", "DEFAULT") and default is not None:
        return default
    if not _NUMBER_RE.match(t):
        raise ScpiError(*DATA_TYPE)
    v = float(t)
    if not math.isfinite(v):
        raise ScpiError(*DATA_TYPE)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ScpiError(*DATA_OUT_OF_RANGE)
    return v


def boolean(text: str) -> bool:
    t = text.strip().upper()
    if t in ("ON", "1"):
        return True
    if t in ("OFF", "0"):
        return False
    if _NUMBER_RE.match(t):
        return round(float(t)) != 0
    raise ScpiError(*DATA_TYPE)


def string(text: str) -> str:
    """A quoted string parameter, quotes removed."""
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "\"'":
        return t[1:-1]
    raise ScpiError(*DATA_TYPE)


def choice(text: str, options: Sequence[str]) -> str:
    """Character data among ``options`` written as in the manual (``VOLTage``); returns the long form."""
    t = text.strip().upper()
    if t.startswith(('"', "'")):
        t = string(text).upper()
    for opt in options:
        short = "".join(c for c in opt if c.isupper())
        if t == short or t == opt.upper():
            return opt.upper()
    raise ScpiError(*ILLEGAL_VALUE)


def channel_list(text: str) -> list[int]:
    """``(@1)``, ``(@1,2)`` or ``(@1:2)``."""
    m = re.match(r"^\(@([\d,:\s]+)\)$", text.strip())
    if not m:
        raise ScpiError(*DATA_TYPE)
    out: list[int] = []
    for part in m.group(1).split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(a, b + 1))
        else:
            out.append(int(part))
    return out


def nr3(value: float) -> str:
    """Float the way SCPI instruments print them: ``+1.234560E-06``."""
    return f"{value:+.6E}"
