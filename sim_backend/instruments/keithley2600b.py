"""Simulated Keithley Series 2600B System SourceMeter (TSP; 2600BS-901-01).

A 2600B runs every message as a Lua chunk. This module holds the small Lua subset that
drivers send: statements (``smua.source.levelv = 1``, ``local c = smua.source.compliance``,
``delay(0.001)``, ``print(...)``), dotted names, calls with multiple results, numbers,
strings, booleans, nil and unary minus. The whole chunk is parsed before anything runs, so a
syntax error changes nothing (-285); a run-time error (-286) or a rejected setting stops the
chunk where it happened. ``print`` writes numbers as ``format.asciiprecision = 6`` does
(``1.23400e-06``), arguments separated by tabs. ``delay(s)`` advances the virtual clock.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from .base import SimInstrument
from .scpi import ScpiError
from .smu_common import SmuChannel, SmuRatings, make_channels


class LuaError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message


def _syntax(near: str) -> LuaError:
    return LuaError(-285, f"TSP Syntax error at line 1: unexpected symbol near '{near}'")


def _runtime(what: str) -> LuaError:
    return LuaError(-286, f"TSP Runtime error at line 1: {what}")


# -- lexer ---------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<comment>--[^\n]*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<string>"[^"\n]*"|'[^'\n]*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op>[=.,();\-])
    )""",
    re.X,
)
KEYWORDS = {"local", "true", "false", "nil"}


@dataclass(frozen=True)
class Tok:
    kind: str  # number, string, name, keyword, op, eof
    text: str


def tokenize(src: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while True:
        while pos < len(src) and src[pos].isspace():
            pos += 1
        if pos >= len(src):
            break
        m = _TOKEN_RE.match(src, pos)
        if not m or m.end() == pos:
            raise _syntax(src[pos:pos + 1])
        pos = m.end()
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "comment":
            continue
        if kind == "name" and text in KEYWORDS:
            kind = "keyword"
        out.append(Tok(kind, text))
    out.append(Tok("eof", "<eof>"))
    return out


# -- parser: source -> tuples ------------------------------------------------------------

class _Parser:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, text: str) -> None:
        t = self.take()
        if t.text != text or t.kind not in ("op", "keyword"):
            raise _syntax(t.text)

    def chunk(self) -> list[tuple]:
        stats = []
        while self.peek().kind != "eof":
            if self.peek().text == ";" and self.peek().kind == "op":
                self.take()
                continue
            stats.append(self.statement())
        return stats

    def statement(self) -> tuple:
        t = self.peek()
        if t.kind == "keyword" and t.text == "local":
            self.take()
            names = [self.name()]
            while self.peek().text == ",":
                self.take()
                names.append(self.name())
            exps: list[tuple] = []
            if self.peek().text == "=" and self.peek().kind == "op":
                self.take()
                exps = self.explist()
            return ("local", names, exps)
        target = self.suffixed()
        if self.peek().kind == "op" and self.peek().text in ("=", ","):
            targets = [target]
            while self.peek().text == ",":
                self.take()
                targets.append(self.suffixed())
            self.expect("=")
            for tg in targets:
                if tg[0] not in ("name", "index"):
                    raise _syntax("=")
            return ("assign", targets, self.explist())
        if target[0] != "call":
            raise _syntax(self.peek().text)
        return ("callstat", target)

    def name(self) -> str:
        t = self.take()
        if t.kind != "name":
            raise _syntax(t.text)
        return t.text

    def explist(self) -> list[tuple]:
        exps = [self.expr()]
        while self.peek().text == "," and self.peek().kind == "op":
            self.take()
            exps.append(self.expr())
        return exps

    def expr(self) -> tuple:
        t = self.peek()
        if t.kind == "op" and t.text == "-":
            self.take()
            return ("neg", self.expr())
        if t.kind == "number":
            self.take()
            return ("value", float(t.text))
        if t.kind == "string":
            self.take()
            return ("value", t.text[1:-1])
        if t.kind == "keyword" and t.text in ("true", "false", "nil"):
            self.take()
            return ("value", {"true": True, "false": False, "nil": None}[t.text])
        return self.suffixed()

    def suffixed(self) -> tuple:
        t = self.take()
        if t.kind == "name":
            node: tuple = ("name", t.text)
        elif t.kind == "op" and t.text == "(":
            node = ("paren", self.expr())
            self.expect(")")
        else:
            raise _syntax(t.text)
        while True:
            t = self.peek()
            if t.kind == "op" and t.text == ".":
                self.take()
                node = ("index", node, self.name())
            elif t.kind == "op" and t.text == "(":
                self.take()
                args = [] if self.peek().text == ")" else self.explist()
                self.expect(")")
                node = ("call", node, args)
            else:
                return node


def parse(src: str) -> list[tuple]:
    return _Parser(tokenize(src)).chunk()


# -- the object model the scripts see ----------------------------------------------------

class LuaFunction:
    def __init__(self, fn: Callable[..., tuple], name: str) -> None:
        self.fn = fn
        self.name = name


class TspObject:
    """An instrument object: constants, attributes (getter/setter) and functions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fields: dict[str, Any] = {}
        self.attrs: dict[str, tuple[Callable[[], Any], Callable[[Any], None] | None]] = {}

    def get(self, key: str) -> Any:
        if key in self.attrs:
            return self.attrs[key][0]()
        return self.fields.get(key)

    def set(self, key: str, value: Any) -> None:
        if key in self.attrs and self.attrs[key][1] is not None:
            self.attrs[key][1](value)
        elif key in self.attrs:
            raise _runtime(f"attribute '{self.path}.{key}' is read-only")
        else:
            raise _runtime(f"attempt to set unknown field '{self.path}.{key}'")


def _describe(exp: tuple) -> str:
    if exp[0] == "name":
        return f"global '{exp[1]}'"
    if exp[0] == "index":
        return f"field '{exp[2]}'"
    return "a value"


class Interpreter:
    def __init__(self, globals_: dict[str, Any]) -> None:
        self.globals = globals_

    def run(self, stats: list[tuple], out: list[str]) -> None:
        self.locals: dict[str, Any] = {}
        self.out = out
        for st in stats:
            kind = st[0]
            if kind == "local":
                vals = self.values(st[2])
                for i, name in enumerate(st[1]):
                    self.locals[name] = vals[i] if i < len(vals) else None
            elif kind == "assign":
                vals = self.values(st[2])
                for i, target in enumerate(st[1]):
                    self.assign(target, vals[i] if i < len(vals) else None)
            else:
                self.call(st[1])

    def values(self, exps: list[tuple]) -> list[Any]:
        vals: list[Any] = []
        for i, e in enumerate(exps):
            if i == len(exps) - 1:
                vals.extend(self.multi(e))
            else:
                vals.append(self.eval(e))
        return vals

    def multi(self, exp: tuple) -> list[Any]:
        if exp[0] == "call":
            return list(self.call(exp))
        return [self.eval(exp)]

    def eval(self, exp: tuple) -> Any:
        kind = exp[0]
        if kind == "value":
            return exp[1]
        if kind == "neg":
            v = self.eval(exp[1])
            if not isinstance(v, float):
                raise _runtime("attempt to perform arithmetic on a non-number value")
            return -v
        if kind == "paren":
            return self.eval(exp[1])
        if kind == "name":
            if exp[1] in self.locals:
                return self.locals[exp[1]]
            return self.globals.get(exp[1])
        if kind == "index":
            obj = self.eval(exp[1])
            if not isinstance(obj, TspObject):
                raise _runtime(f"attempt to index {_describe(exp[1])} (a {_lua_type(obj)} value)")
            return obj.get(exp[2])
        if kind == "call":
            res = self.call(exp)
            return res[0] if res else None
        raise AssertionError(kind)

    def call(self, exp: tuple) -> tuple:
        fn = self.eval(exp[1])
        if not isinstance(fn, LuaFunction):
            raise _runtime(f"attempt to call {_describe(exp[1])} (a {_lua_type(fn)} value)")
        return tuple(fn.fn(*self.values(exp[2])))

    def assign(self, target: tuple, value: Any) -> None:
        if target[0] == "name":
            if target[1] in self.locals:
                self.locals[target[1]] = value
            else:
                self.globals[target[1]] = value
            return
        obj = self.eval(target[1])
        if not isinstance(obj, TspObject):
            raise _runtime(f"attempt to index {_describe(target[1])} (a {_lua_type(obj)} value)")
        obj.set(target[2], value)


def _lua_type(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, LuaFunction):
        return "function"
    return "userdata"


def lua_str(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return f"{float(v):.5e}"  # format.asciiprecision = 6 significant digits
    if isinstance(v, LuaFunction):
        return f"function: {v.name}"
    if isinstance(v, TspObject):
        return f"table: {v.path}"
    return str(v)


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise LuaError(1104, f"Parameter error {what}: number expected")
    return float(v)


# -- the instrument ------------------------------------------------------------------------

class Keithley2600B(SimInstrument):
    """A dual-channel 2600B (smua, smub); model variants below differ in channels and ratings."""

    model = "keithley2636b"
    idn = "Keithley Instruments Inc., Model 2636B, 4390001, 4.0.4"
    channel_ids: tuple[str, ...] = ("a", "b")
    ratings = SmuRatings(
        v_max=202.0, i_max=1.515, nplc_min=0.001, nplc_max=25.0, default_limit=0.1,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(100e-12, 1e-9, 10e-9, 100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5),
    )

    def __init__(self, name: str, bench: Any, channels: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.bench = bench
        self.smu = make_channels(bench, dict(channels or {}), self.channel_ids, self.ratings, self.faults, self.model)
        self.globals: dict[str, Any] = {}
        self._print_buffer: list[str] = []
        self._build_globals()

    # -- messages ---------------------------------------------------------------------
    def handle(self, message: str) -> str | None:
        text = message.strip()
        if text.startswith("*"):
            return self._common(text)
        out: list[str] = []
        self._print_buffer = out
        try:
            stats = parse(text)
            Interpreter(self.globals).run(stats, out)
        except LuaError as e:
            self.push_error(e.code, e.message)
        except ScpiError as e:
            self.push_error(e.code, e.message)
        return "\n".join(out) if out else None

    def _common(self, text: str) -> str | None:
        cmd = text.upper()
        if cmd == "*IDN?":
            return self.idn
        if cmd == "*RST":
            self.reset()
            return None
        if cmd == "*CLS":
            self.error_queue.clear()
            return None
        if cmd == "*OPC?":
            return "1"
        if cmd in ("*OPC", "*WAI", "*TRG"):
            return None
        self.push_error(-285, f"TSP Syntax error at line 1: unexpected symbol near '{text[:1]}'")
        return None

    def reset(self) -> None:
        for ch in self.smu.values():
            ch.reset()

    # -- object model ---------------------------------------------------------------
    def _build_globals(self) -> None:
        g = self.globals

        def fn(f: Callable[..., Any], name: str, multi: bool = False) -> LuaFunction:
            def wrapped(*args: Any) -> tuple:
                r = f(*args)
                if multi:
                    return tuple(r)
                return () if r is None else (r,)

            return LuaFunction(wrapped, name)

        def print_(*args: Any) -> None:
            self._out.append("\t".join(lua_str(a) for a in args))

        def delay(seconds: Any = None) -> None:
            s = _number(seconds, "delay")
            if s < 0:
                raise LuaError(1103, "Parameter too small")
            self.bench.advance(s)

        def next_error() -> tuple:
            if not self.error_queue:
                return (0.0, "Queue Is Empty", 0.0, 0.0)
            code, msg = self.error_queue.popleft()
            return (float(code), msg, 30.0, 1.0)

        eq = TspObject("errorqueue")
        eq.attrs["count"] = (lambda: float(len(self.error_queue)), None)
        eq.fields["next"] = fn(next_error, "errorqueue.next", multi=True)
        eq.fields["clear"] = fn(lambda: self.error_queue.clear(), "errorqueue.clear")

        g.update(
            print=fn(print_, "print"),
            delay=fn(delay, "delay"),
            reset=fn(self.reset, "reset"),
            waitcomplete=fn(lambda *a: None, "waitcomplete"),
            opc=fn(lambda: None, "opc"),
            errorqueue=eq,
        )
        for cid, ch in self.smu.items():
            g[f"smu{cid}"] = self._smu_object(f"smu{cid}", ch, fn)

    def _smu_object(self, path: str, ch: SmuChannel, fn: Callable[..., LuaFunction]) -> TspObject:
        smu = TspObject(path)
        smu.fields.update(
            OUTPUT_DCAMPS=0.0, OUTPUT_DCVOLTS=1.0, OUTPUT_OFF=0.0, OUTPUT_ON=1.0, OUTPUT_HIGH_Z=2.0,
            AUTORANGE_OFF=0.0, AUTORANGE_ON=1.0, AUTORANGE_FOLLOW_LIMIT=2.0, SENSE_LOCAL=0.0, SENSE_REMOTE=1.0,
        )
        smu.fields["reset"] = fn(ch.reset, f"{path}.reset")

        src = TspObject(f"{path}.source")
        stored: dict[str, Any] = {"leveli": 0.0, "limitv": 20.0, "rangei": 1e-6, "autorangei": 1.0, "offmode": 0.0}

        def set_func(v: Any) -> None:
            ch.set_source_function("VOLT" if _number(v, "func") == 1.0 else "CURR")

        def set_output(v: Any) -> None:
            n = _number(v, "output")
            if n not in (0.0, 1.0, 2.0):
                raise LuaError(1104, "Parameter error: illegal value")
            ch.set_output(n != 0.0)

        src.attrs.update(
            func=(lambda: 1.0 if ch.source_function == "VOLT" else 0.0, set_func),
            levelv=(lambda: ch.level, lambda v: ch.set_level(_number(v, "levelv"))),
            limiti=(lambda: ch.limit, lambda v: ch.set_limit(_number(v, "limiti"))),
            rangev=(lambda: ch.source_range or 0.2, lambda v: ch.set_source_range(_number(v, "rangev"))),
            autorangev=(lambda: 1.0 if ch.source_range is None else 0.0,
                        lambda v: ch.set_source_range(None if _number(v, "autorangev") else (ch.source_range or 20.0))),
            output=(lambda: 1.0 if ch.output else 0.0, set_output),
            compliance=(ch.in_compliance, None),
        )
        for key in stored:
            src.attrs[key] = (lambda k=key: stored[k], lambda v, k=key: stored.__setitem__(k, _number(v, k)))
        smu.fields["source"] = src

        meas = TspObject(f"{path}.measure")

        def iv() -> tuple:
            v, i, _ = ch.measure()
            return (i, v)

        meas.attrs.update(
            nplc=(lambda: ch.nplc, lambda v: ch.set_nplc(_number(v, "nplc"))),
            rangei=(lambda: ch.measure_range or 1e-6, lambda v: ch.set_measure_range(_number(v, "rangei"))),
            autorangei=(lambda: 1.0 if ch.measure_range is None else 0.0,
                        lambda v: ch.set_measure_range(None if _number(v, "autorangei") else (ch.measure_range or 1e-6))),
        )
        meas.fields.update(
            i=fn(lambda: ch.measure()[1], f"{path}.measure.i"),
            v=fn(lambda: ch.measure()[0], f"{path}.measure.v"),
            iv=fn(iv, f"{path}.measure.iv", multi=True),
        )
        smu.fields["measure"] = meas
        return smu

    @property
    def _out(self) -> list[str]:
        return self._print_buffer


class Keithley2636B(Keithley2600B):
    pass


class Keithley2634B(Keithley2600B):
    model = "keithley2634b"
    idn = "Keithley Instruments Inc., Model 2634B, 4390002, 4.0.4"


class Keithley2612B(Keithley2600B):
    model = "keithley2612b"
    idn = "Keithley Instruments Inc., Model 2612B, 4390003, 4.0.4"
    ratings = SmuRatings(
        v_max=202.0, i_max=1.515, nplc_min=0.001, nplc_max=25.0, default_limit=0.1,
        voltage_ranges=(0.2, 2.0, 20.0, 200.0),
        current_ranges=(100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 1.5),
    )


class Keithley2602B(Keithley2600B):
    model = "keithley2602b"
    idn = "Keithley Instruments Inc., Model 2602B, 4390004, 4.0.4"
    ratings = SmuRatings(
        v_max=40.4, i_max=3.03, nplc_min=0.001, nplc_max=25.0, default_limit=0.1,
        voltage_ranges=(0.1, 1.0, 6.0, 40.0),
        current_ranges=(100e-9, 1e-6, 10e-6, 100e-6, 1e-3, 10e-3, 100e-3, 1.0, 3.0),
    )


class Keithley2635B(Keithley2600B):
    """Single channel: only smua exists."""

    model = "keithley2635b"
    idn = "Keithley Instruments Inc., Model 2635B, 4390005, 4.0.4"
    channel_ids = ("a",)
