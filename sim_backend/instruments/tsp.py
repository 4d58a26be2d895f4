"""The one TSP (Lua) interpreter of the simulated TSP instruments, and their shared base.

TSP instruments (Keithley 2600B, 707B/708B) receive Lua chunks one line at a time. Drivers
send a narrow subset: assignments (``smua.source.levelv = 1.5``, ``a, b = 1, 2``), locals
(``local i, v = smua.measure.iv()``), calls with string or number arguments
(``channel.close("1A01,1B02")``, ``delay(0.001)``), ``print(...)`` with several arguments
(``print(smua.measure.i(), status.measurement.instrument.smua.condition)``), and several
statements on one line separated by spaces or semicolons. That subset is parsed here in
full; anything else (control flow, operators, function definitions, indexing a value
that is not a name) is a syntax error that lands in the error queue, as it would if a
real instrument rejected the chunk.

A chunk is parsed whole before anything runs (a syntax error executes nothing, as Lua
compiles a chunk first); a runtime error stops the chunk at the failing statement, and
what it printed before stays printed. Numbers print as ``format.asciiprecision = 6``
does (``1.23400e-06``), ``print`` arguments separated by tabs.

:class:`TspInstrument` is the base of the simulated TSP instruments: the IEEE 488.2
common commands a TSP instrument still takes (``*IDN?``, ``*RST``, ``*OPC?`` ...), one
chunk per message, the ``errorqueue``, ``delay``, ``reset`` and ``waitcomplete`` every
TSP instrument has; a model registers its own tables in :meth:`TspInstrument.add_functions`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Union

from .base import SimInstrument
from .scpi import ScpiError

SYNTAX_ERROR = -285
RUNTIME_ERROR = -286


class TspError(Exception):
    """An error the instrument reports in its error queue: ``code`` and ``message``."""

    code = RUNTIME_ERROR

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class TspSyntaxError(TspError):
    code = SYNTAX_ERROR


class TspRuntimeError(TspError):
    code = RUNTIME_ERROR


# -- syntax tree ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Literal:
    value: float | str | bool | None


@dataclass(frozen=True)
class Name:
    path: str  # dotted, e.g. "smua.source.levelv"


@dataclass(frozen=True)
class Negate:
    operand: "Expr"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...] = ()


@dataclass(frozen=True)
class Assign:
    target: str
    value: "Expr"


@dataclass(frozen=True)
class AssignList:
    """``a, b = 1, f()``: several targets or values (values are all evaluated first)."""

    targets: tuple[str, ...]
    values: tuple["Expr", ...]


@dataclass(frozen=True)
class Local:
    """``local i, v = smua.measure.iv()``: names that live until the end of the chunk."""

    names: tuple[str, ...]
    values: tuple["Expr", ...] = ()


Expr = Union[Literal, Name, Negate, Call]
Statement = Union[Assign, AssignList, Local, Call]

# -- tokenizer ----------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|--[^\n]*)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|~=|<=|>=|\.\.|[=(),;.\[\]{}+\-*/<>#:^%])
    """,
    re.VERBOSE,
)
_KEYWORDS = {
    "and", "break", "do", "else", "elseif", "end", "for", "function", "if", "in", "local",
    "not", "or", "repeat", "return", "then", "until", "while",
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    pos: int


def _tokenize(line: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        if m is None:
            raise TspSyntaxError(f"TSP Syntax error at line 1: unexpected symbol near '{line[pos]}'")
        kind = m.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, m.group(), pos))
        pos = m.end()
    tokens.append(_Token("eof", "<eof>", len(line)))
    return tokens


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


# -- parser -------------------------------------------------------------------------------
class _Parser:
    def __init__(self, line: str) -> None:
        self.tokens = _tokenize(line)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def error(self, what: str = "unexpected symbol") -> TspSyntaxError:
        return TspSyntaxError(f"TSP Syntax error at line 1: {what} near '{self.tok.text}'")

    def take(self, kind: str, text: str | None = None) -> _Token:
        t = self.tok
        if t.kind != kind or (text is not None and t.text != text):
            raise self.error(f"'{text}' expected" if text else f"{kind} expected")
        self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def chunk(self) -> list[Statement]:
        statements: list[Statement] = []
        while not self.at("eof"):
            if self.at("op", ";"):
                self.i += 1
                continue
            statements.append(self.statement())
        return statements

    def dotted_name(self) -> str:
        t = self.tok
        if t.kind != "name" or t.text in _KEYWORDS:
            raise self.error()
        self.i += 1
        parts = [t.text]
        while self.at("op", "."):
            self.i += 1
            t = self.tok
            if t.kind != "name" or t.text in _KEYWORDS:
                raise self.error("<name> expected")
            self.i += 1
            parts.append(t.text)
        return ".".join(parts)

    def statement(self) -> Statement:
        if self.at("name", "local"):
            self.i += 1
            names = [self.local_name()]
            while self.at("op", ","):
                self.i += 1
                names.append(self.local_name())
            values: tuple[Expr, ...] = ()
            if self.at("op", "="):
                self.i += 1
                values = self.expressions()
            return Local(tuple(names), values)
        name = self.dotted_name()
        if self.at("op", "("):
            return Call(name, self.arguments())
        targets = [name]
        while self.at("op", ","):
            self.i += 1
            targets.append(self.dotted_name())
        if not self.at("op", "="):
            raise self.error("'=' expected")
        self.i += 1
        values = self.expressions()
        if len(targets) == 1 and len(values) == 1:
            return Assign(name, values[0])
        return AssignList(tuple(targets), values)

    def local_name(self) -> str:
        name = self.dotted_name()
        if "." in name:
            raise self.error("<name> expected")
        return name

    def expressions(self) -> tuple[Expr, ...]:
        exprs = [self.expression()]
        while self.at("op", ","):
            self.i += 1
            exprs.append(self.expression())
        return tuple(exprs)

    def arguments(self) -> tuple[Expr, ...]:
        self.take("op", "(")
        args: tuple[Expr, ...] = ()
        if not self.at("op", ")"):
            args = self.expressions()
        self.take("op", ")")
        return args

    def expression(self) -> Expr:
        t = self.tok
        if t.kind == "op" and t.text == "-":
            self.i += 1
            return Negate(self.expression())
        if t.kind == "number":
            self.i += 1
            return Literal(float(t.text))
        if t.kind == "string":
            self.i += 1
            return Literal(_unquote(t.text))
        if t.kind == "name" and t.text in ("true", "false", "nil"):
            self.i += 1
            return Literal({"true": True, "false": False, "nil": None}[t.text])
        if t.kind == "name":
            name = self.dotted_name()
            if self.at("op", "("):
                return Call(name, self.arguments())
            return Name(name)
        raise self.error()


def parse(line: str) -> list[Statement]:
    """Parse one TSP chunk into statements; raises :class:`TspSyntaxError`."""
    return _Parser(line).chunk()


# -- values --------------------------------------------------------------------------------
def format_value(value: Any) -> str:
    """Format a value the way TSP ``print`` does (default ``format.asciiprecision``)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{float(value):.5e}"
    return str(value)


# -- interpreter ----------------------------------------------------------------------------
@dataclass
class _Property:
    get: Callable[[], Any]
    setter: Callable[[Any], None] | None = None


class TspInterpreter:
    """Runs parsed chunks against a table of instrument attributes and functions.

    Register what the instrument knows with :meth:`constant`, :meth:`attribute` and
    :meth:`function`; :meth:`execute` returns the lines ``print`` produced. Functions
    receive evaluated arguments and return a value or a tuple of values (Lua multiple
    returns: ``print(f())`` prints them all, ``x = f()`` keeps the first).
    """

    def __init__(self) -> None:
        self.variables: dict[str, Any] = {}  # globals the host assigned (``x = 1``)
        self._locals: dict[str, Any] = {}  # the running chunk's locals
        self._properties: dict[str, _Property] = {}
        self._functions: dict[str, Callable[..., Any]] = {}
        self._tables: set[str] = set()

    def constant(self, name: str, value: Any) -> None:
        self.attribute(name, lambda: value)

    def attribute(
        self, name: str, get: Callable[[], Any], setter: Callable[[Any], None] | None = None
    ) -> None:
        self._properties[name] = _Property(get, setter)
        self._add_tables(name)

    def function(self, name: str, fn: Callable[..., Any]) -> None:
        self._functions[name] = fn
        self._add_tables(name)

    def _add_tables(self, name: str) -> None:
        parts = name.split(".")
        for i in range(1, len(parts)):
            self._tables.add(".".join(parts[:i]))

    # -- evaluation ----------------------------------------------------------------------
    def get(self, path: str) -> Any:
        if path in self._locals:
            return self._locals[path]
        if path in self._properties:
            return self._properties[path].get()
        if path in self._functions:
            return f"function: {path}"
        if path in self._tables:
            return f"table: {path}"
        if "." not in path:
            return self.variables.get(path)
        parent = path.rsplit(".", 1)[0]
        if parent in self._tables:
            return None
        raise TspRuntimeError(
            f"TSP Runtime error at line 1: attempt to index a nil value (field '{parent}')"
        )

    def set(self, path: str, value: Any) -> None:
        if path in self._locals:
            self._locals[path] = value
            return
        prop = self._properties.get(path)
        if prop is not None:
            if prop.setter is None:
                raise TspRuntimeError(f"TSP Runtime error at line 1: {path} is read-only")
            prop.setter(value)
            return
        if "." not in path and path not in self._tables and path not in self._functions:
            self.variables[path] = value
            return
        raise TspRuntimeError(f"TSP Runtime error at line 1: cannot assign '{path}'")

    def call(self, func: str, args: list[Any]) -> tuple[Any, ...]:
        fn = self._functions.get(func)
        if fn is None:
            self.get(func)  # an unknown parent table is an "attempt to index" error first
            raise TspRuntimeError(
                f"TSP Runtime error at line 1: attempt to call a nil value (field '{func}')"
            )
        result = fn(*args)
        return result if isinstance(result, tuple) else (result,)

    def evaluate(self, expr: Expr, *, multiple: bool = False) -> tuple[Any, ...]:
        if isinstance(expr, Literal):
            return (expr.value,)
        if isinstance(expr, Name):
            return (self.get(expr.path),)
        if isinstance(expr, Negate):
            (value,) = self.evaluate(expr.operand)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise TspRuntimeError("TSP Runtime error at line 1: attempt to perform arithmetic on a non-number")
            return (-value,)
        values = self.call(expr.func, self._arguments(expr.args))
        return values if multiple else values[:1] or (None,)

    def _arguments(self, args: tuple[Expr, ...]) -> list[Any]:
        out: list[Any] = []
        for i, arg in enumerate(args):
            last = i == len(args) - 1
            out.extend(self.evaluate(arg, multiple=last) if last else self.evaluate(arg)[:1])
        return out

    def execute(self, line: str, printed: list[str] | None = None) -> list[str]:
        """Run one chunk; return the printed lines. Raises :class:`TspError`.

        ``printed``: the list to print into; whatever error stops the chunk, it keeps what
        was printed before (a :class:`TspError` carries it as ``printed`` too).
        """
        printed = [] if printed is None else printed
        statements = parse(line)
        self._locals = {}
        try:
            for statement in statements:
                self._run(statement, printed)
        except TspError as exc:
            exc.printed = printed  # type: ignore[attr-defined]
            raise
        finally:
            self._locals = {}
        return printed

    def _run(self, statement: Statement, printed: list[str]) -> None:
        if isinstance(statement, Assign):
            (value,) = self.evaluate(statement.value)[:1]
            self.set(statement.target, value)
        elif isinstance(statement, AssignList):
            values = self._arguments(statement.values)
            for i, target in enumerate(statement.targets):
                self.set(target, values[i] if i < len(values) else None)
        elif isinstance(statement, Local):
            values = self._arguments(statement.values)
            for i, name in enumerate(statement.names):
                self._locals[name] = values[i] if i < len(values) else None
        elif statement.func == "print":
            printed.append("\t".join(format_value(v) for v in self._arguments(statement.args)))
        else:
            self.call(statement.func, self._arguments(statement.args))


# -- the instruments -------------------------------------------------------------------------
UNDEFINED_HEADER = -113
PARAMETER_ERROR = 1104  # a TSP function got an argument of the wrong type
PARAMETER_TOO_SMALL = 1103


def number_argument(value: Any, what: str) -> float:
    """A TSP number argument (booleans and strings are not numbers in Lua)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TspError(f"Parameter error {what}: number expected", PARAMETER_ERROR)
    return float(value)


class TspInstrument(SimInstrument):
    """Base of the simulated TSP instruments: common commands, a Lua chunk per message.

    Errors of a chunk go to the error queue with their code: :class:`TspError` from the
    interpreter and the model's functions, :class:`~sim_backend.instruments.scpi.ScpiError`
    from the channel state shared with the SCPI models (same codes), and a wrong argument
    count or type as a runtime error. A model sets ``error_severity``/``error_node`` (what
    ``errorqueue.next()`` returns besides code and message), ``unknown_common`` (the error
    an unknown ``*`` command queues) and implements :meth:`reset` and :meth:`add_functions`.
    """

    error_severity = 0
    error_node = 0
    unknown_common = (UNDEFINED_HEADER, "Undefined header: {message}")

    def __init__(self, name: str = "", bench: Any = None) -> None:
        super().__init__(name)
        self.bench = bench

    @functools.cached_property
    def tsp(self) -> TspInterpreter:
        """The instrument's interpreter, built at the first message (after the model's state)."""
        t = TspInterpreter()
        t.function("reset", self.reset)
        t.function("waitcomplete", lambda *a: None)
        t.function("opc", lambda: None)
        t.function("delay", self._delay)
        t.function("errorqueue.clear", self.error_queue.clear)
        t.function("errorqueue.next", self._next_error)
        t.attribute("errorqueue.count", lambda: len(self.error_queue))
        self.add_functions(t)
        return t

    def add_functions(self, tsp: TspInterpreter) -> None:
        """Register the model's constants, attributes and functions."""
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def _delay(self, seconds: Any = None) -> None:
        s = number_argument(seconds, "delay")
        if s < 0:
            raise TspError("Parameter too small", PARAMETER_TOO_SMALL)
        if self.bench is not None:
            self.bench.advance(s)

    def _next_error(self) -> tuple[Any, ...]:
        code, message = self.next_error()
        if code == 0:
            return (0, "Queue Is Empty", 0, 0)
        return (code, message, self.error_severity, self.error_node)

    # -- messages ------------------------------------------------------------------------------
    def _common(self, message: str) -> str | None:
        head = message.split()[0].upper()
        if head == "*IDN?":
            return self.idn
        if head == "*OPC?":
            return "1"
        if head == "*RST":
            self.reset()
        elif head == "*CLS":
            self.error_queue.clear()
        elif head in ("*OPC", "*WAI", "*TRG"):
            pass
        elif head == "*ESR?":
            return "0"
        elif head == "*STB?":
            return str(4 if self.error_queue else 0)  # EAV bit: error available
        else:
            code, text = self.unknown_common
            self.push_error(code, text.format(message=message))
        return None

    def handle(self, message: str) -> str | None:
        if not message:
            return None
        if message.startswith("*"):
            return self._common(message)
        printed: list[str] = []
        try:
            self.tsp.execute(message, printed)
        except (TspError, ScpiError) as exc:
            self.push_error(exc.code, exc.message)
        except (TypeError, ValueError) as exc:  # wrong argument count or type
            self.push_error(RUNTIME_ERROR, f"TSP Runtime error at line 1: {exc}")
        return "\n".join(printed) if printed else None
