"""A small TSP (Lua) statement parser and interpreter for the simulated TSP instruments.

TSP instruments (Keithley 2600B, 707B/708B) receive Lua chunks one line at a time. Drivers
send a narrow subset: assignments (``smua.source.levelv = 1.5``), calls with string or
number arguments (``channel.close("1A01,1B02")``), ``print(...)`` with several arguments
(``print(smua.measure.i(), status.measurement.instrument.smua.condition)``), and several
statements on one line separated by spaces or semicolons. That subset is parsed here in
full; anything else (control flow, operators, function definitions) is a syntax error
that lands in the error queue, as it would if a real instrument rejected the chunk.

A chunk is parsed whole before anything runs (a syntax error executes nothing, as Lua
compiles a chunk first); a runtime error stops the chunk at the failing statement.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Union

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


Expr = Union[Literal, Name, Negate, Call]
Statement = Union[Assign, Call]

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
        name = self.dotted_name()
        if self.at("op", "("):
            return Call(name, self.arguments())
        if self.at("op", "="):
            self.i += 1
            return Assign(name, self.expression())
        raise self.error("'=' expected")

    def arguments(self) -> tuple[Expr, ...]:
        self.take("op", "(")
        args: list[Expr] = []
        if not self.at("op", ")"):
            args.append(self.expression())
            while self.at("op", ","):
                self.i += 1
                args.append(self.expression())
        self.take("op", ")")
        return tuple(args)

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

    def execute(self, line: str) -> list[str]:
        """Run one chunk; return the printed lines. Raises :class:`TspError`."""
        printed: list[str] = []
        for statement in parse(line):
            try:
                self._run(statement, printed)
            except TspError as exc:
                exc.printed = printed  # type: ignore[attr-defined]
                raise
        return printed

    def _run(self, statement: Statement, printed: list[str]) -> None:
        if isinstance(statement, Assign):
            (value,) = self.evaluate(statement.value)[:1]
            self.set(statement.target, value)
        elif statement.func == "print":
            printed.append("\t".join(format_value(v) for v in self._arguments(statement.args)))
        else:
            self.call(statement.func, self._arguments(statement.args))
