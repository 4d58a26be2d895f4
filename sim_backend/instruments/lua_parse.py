"""Lexer and parser of the Lua a TSP script uses (Lua 5.0/5.1 syntax), into a tuple syntax tree.

Everything a script on a 2600B or 707B writes parses: locals, multiple assignment, ``if``/
``elseif``/``else``, ``while``, ``repeat``, numeric and generic ``for``, ``function``
declarations (``function a.b:c()``, ``local function``), closures, varargs, ``return``,
``break``, table constructors, every operator with Lua's precedence (``..`` and ``^``
right-associative), method calls, ``f"str"``/``f{...}`` calls, long strings and comments.

Nodes are tuples ``(kind, line, ...)``; :mod:`sim_backend.instruments.lua_runtime`
compiles them. A chunk is parsed whole before anything runs; an error raises
:class:`LuaSyntaxError` with the line and the token near it. Nesting depth and chunk size
are bounded, so hostile input cannot exhaust the parser.
"""
from __future__ import annotations

import re
from typing import Any

MAX_DEPTH = 120  # nested expressions/blocks ("chunk has too many syntax levels")
MAX_CHUNK_CHARS = 1_000_000


class LuaSyntaxError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"TSP Syntax error at line {line}: {message}")
        self.line = line
        self.message = f"TSP Syntax error at line {line}: {message}"


KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat return then "
    "true until while".split()
)
_TOKEN = re.compile(
    r"""
    (?P<newline>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<longcomment>--\[(?P<ceq>=*)\[)
  | (?P<comment>--[^\n]*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<longstring>\[(?P<seq>=*)\[)
  | (?P<string>"(?:[^"\\\n]|\\.|\\\n)*"|'(?:[^'\\\n]|\\.|\\\n)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^\#<>=(){}\[\];:,.])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v",
            "\\": "\\", '"': '"', "'": "'", "\n": "\n"}


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0].isdigit():
            return chr(int(e) % 256)
        return _ESCAPES.get(e, e)

    return re.sub(r"\\(\d{1,3}|.|\n)", one, body, flags=re.S)


def tokenize(text: str) -> list[tuple[str, Any, int]]:
    """(kind, value, line) tokens, ending with ("eof", None, line)."""
    if len(text) > MAX_CHUNK_CHARS:
        raise LuaSyntaxError(1, "chunk too large")
    out: list[tuple[str, Any, int]] = []
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise LuaSyntaxError(line, f"unexpected symbol near '{text[pos]}'")
        kind = m.lastgroup if m.lastgroup not in ("ceq", "seq") else None
        kind = kind or ("longcomment" if m.group("longcomment") else "longstring")
        pos = m.end()
        if kind == "newline":
            line += 1
        elif kind in ("longcomment", "longstring"):
            close = "]" + (m.group("ceq") if kind == "longcomment" else m.group("seq")) + "]"
            end = text.find(close, pos)
            if end < 0:
                raise LuaSyntaxError(line, "unfinished long string near '<eof>'")
            body = text[pos:end]
            if kind == "longstring":
                out.append(("string", body[1:] if body.startswith("\n") else body, line))
            line += body.count("\n")
            pos = end + len(close)
        elif kind == "number":
            t = m.group()
            out.append(("number", float(int(t, 16)) if t[:2] in ("0x", "0X") else float(t), line))
        elif kind == "string":
            out.append(("string", _unescape(m.group()[1:-1]), line))
            line += m.group().count("\n")
        elif kind == "name":
            t = m.group()
            out.append(("kw" if t in KEYWORDS else "name", t, line))
        elif kind == "op":
            out.append(("op", m.group(), line))
    out.append(("eof", None, line))
    return out


# binary operator -> (left priority, right priority), as in lparser.c
_BINARY = {
    "or": (1, 1), "and": (2, 2),
    "<": (3, 3), ">": (3, 3), "<=": (3, 3), ">=": (3, 3), "~=": (3, 3), "==": (3, 3),
    "..": (5, 4), "+": (6, 6), "-": (6, 6), "*": (7, 7), "/": (7, 7), "%": (7, 7), "^": (10, 9),
}
_UNARY_PRIORITY = 8
_BLOCK_END = {"end", "else", "elseif", "until", "eof"}


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # -- tokens ---------------------------------------------------------------------------
    @property
    def tok(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    @property
    def line(self) -> int:
        return self.tokens[self.i][2]

    def error(self, what: str = "unexpected symbol") -> LuaSyntaxError:
        kind, value, line = self.tok
        near = "<eof>" if kind == "eof" else (value if kind != "number" else f"{value:g}")
        return LuaSyntaxError(line, f"{what} near '{near}'")

    def check(self, value: str) -> bool:
        kind, v, _ = self.tok
        return kind in ("op", "kw") and v == value

    def accept(self, value: str) -> bool:
        if self.check(value):
            self.i += 1
            return True
        return False

    def expect(self, value: str, what: str | None = None) -> None:
        if not self.accept(value):
            raise self.error(f"'{value}' expected" + (f" (to close '{what}')" if what else ""))

    def name(self) -> str:
        kind, value, _ = self.tok
        if kind != "name":
            raise self.error("<name> expected")
        self.i += 1
        return value

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error("chunk has too many syntax levels")

    # -- blocks and statements ------------------------------------------------------------
    def chunk(self) -> list[tuple]:
        body = self.block()
        if self.tok[0] != "eof":
            raise self.error("'<eof>' expected")
        return body

    def block(self) -> list[tuple]:
        self.enter()
        statements: list[tuple] = []
        while not (self.tok[0] == "eof" or (self.tok[0] == "kw" and self.tok[1] in _BLOCK_END)):
            if self.accept(";"):
                continue
            if self.check("return"):
                line = self.line
                self.i += 1
                values: list[tuple] = []
                if not (self.tok[0] == "eof" or self.check(";") or (self.tok[0] == "kw" and self.tok[1] in _BLOCK_END)):
                    values = self.exprlist()
                self.accept(";")
                statements.append(("return", line, values))
                break
            if self.check("break"):
                statements.append(("break", self.line))
                self.i += 1
                self.accept(";")
                break
            statements.append(self.statement())
        self.depth -= 1
        return statements

    def statement(self) -> tuple:
        line = self.line
        kind, value, _ = self.tok
        if kind == "kw":
            handler = getattr(self, f"stat_{value}", None)
            if handler is not None:
                self.i += 1
                return handler(line)
        expr = self.suffixedexp()
        if self.check("=") or self.check(","):
            targets = [expr]
            while self.accept(","):
                targets.append(self.suffixedexp())
            self.expect("=")
            for t in targets:
                if t[0] not in ("name", "index"):
                    raise LuaSyntaxError(line, "syntax error near '='")
            return ("assign", line, targets, self.exprlist())
        if expr[0] not in ("call", "method"):
            raise self.error("syntax error")
        return ("callstat", line, expr)

    def stat_do(self, line: int) -> tuple:
        body = self.block()
        self.expect("end", "do")
        return ("do", line, body)

    def stat_while(self, line: int) -> tuple:
        cond = self.expr()
        self.expect("do")
        body = self.block()
        self.expect("end", "while")
        return ("while", line, cond, body)

    def stat_repeat(self, line: int) -> tuple:
        body = self.block()
        self.expect("until", "repeat")
        return ("repeat", line, body, self.expr())

    def stat_if(self, line: int) -> tuple:
        clauses = []
        cond = self.expr()
        self.expect("then")
        clauses.append((cond, self.block()))
        orelse: list[tuple] | None = None
        while True:
            if self.accept("elseif"):
                cond = self.expr()
                self.expect("then")
                clauses.append((cond, self.block()))
            elif self.accept("else"):
                orelse = self.block()
                self.expect("end", "if")
                break
            else:
                self.expect("end", "if")
                break
        return ("if", line, clauses, orelse or [])

    def stat_for(self, line: int) -> tuple:
        first = self.name()
        if self.accept("="):
            start = self.expr()
            self.expect(",")
            stop = self.expr()
            step = self.expr() if self.accept(",") else ("const", line, 1.0)
            self.expect("do")
            body = self.block()
            self.expect("end", "for")
            return ("fornum", line, first, start, stop, step, body)
        names = [first]
        while self.accept(","):
            names.append(self.name())
        self.expect("in")
        exprs = self.exprlist()
        self.expect("do")
        body = self.block()
        self.expect("end", "for")
        return ("forin", line, names, exprs, body)

    def stat_function(self, line: int) -> tuple:
        target: tuple = ("name", line, self.name())
        method = False
        while self.check(".") or self.check(":"):
            method = self.check(":")
            self.i += 1
            target = ("index", line, target, ("const", line, self.name()))
            if method:
                break
        func = self.funcbody(line, method=method, name=_describe(target))
        return ("assign", line, [target], [func])

    def stat_local(self, line: int) -> tuple:
        if self.accept("function"):
            name = self.name()
            return ("localfunction", line, name, self.funcbody(line, name=name))
        names = [self.name()]
        while self.accept(","):
            names.append(self.name())
        values = self.exprlist() if self.accept("=") else []
        return ("local", line, names, values)

    # -- expressions -----------------------------------------------------------------------
    def exprlist(self) -> list[tuple]:
        exprs = [self.expr()]
        while self.accept(","):
            exprs.append(self.expr())
        return exprs

    def expr(self, limit: int = 0) -> tuple:
        self.enter()
        line = self.line
        kind, value, _ = self.tok
        if (kind == "kw" and value == "not") or (kind == "op" and value in ("-", "#")):
            self.i += 1
            operand = self.expr(_UNARY_PRIORITY)
            left: tuple = ({"not": "not", "-": "neg", "#": "len"}[value], line, operand)
        else:
            left = self.simpleexp()
        while True:
            kind, op, line = self.tok
            prio = _BINARY.get(op) if kind in ("op", "kw") else None
            if prio is None or prio[0] <= limit:
                break
            self.i += 1
            right = self.expr(prio[1])
            left = (op, line, left, right) if op in ("and", "or") else ("binop", line, op, left, right)
        self.depth -= 1
        return left

    def simpleexp(self) -> tuple:
        kind, value, line = self.tok
        if kind in ("number", "string"):
            self.i += 1
            return ("const", line, value)
        if kind == "kw" and value in ("nil", "true", "false"):
            self.i += 1
            return ("const", line, {"nil": None, "true": True, "false": False}[value])
        if self.accept("..."):
            return ("vararg", line)
        if self.check("{"):
            return self.table()
        if self.accept("function"):
            return self.funcbody(line)
        return self.suffixedexp()

    def primaryexp(self) -> tuple:
        kind, value, line = self.tok
        if kind == "name":
            self.i += 1
            return ("name", line, value)
        if self.accept("("):
            inner = self.expr()
            self.expect(")", "(")
            return ("paren", line, inner)
        raise self.error()

    def suffixedexp(self) -> tuple:
        expr = self.primaryexp()
        while True:
            line = self.line
            if self.accept("."):
                expr = ("index", line, expr, ("const", line, self.name()))
            elif self.accept("["):
                key = self.expr()
                self.expect("]")
                expr = ("index", line, expr, key)
            elif self.accept(":"):
                method = self.name()
                expr = ("method", line, expr, method, self.callargs())
            elif self.check("(") or self.check("{") or self.tok[0] == "string":
                expr = ("call", line, expr, self.callargs())
            else:
                return expr

    def callargs(self) -> list[tuple]:
        kind, value, line = self.tok
        if kind == "string":
            self.i += 1
            return [("const", line, value)]
        if self.check("{"):
            return [self.table()]
        self.expect("(")
        if self.accept(")"):
            return []
        args = self.exprlist()
        self.expect(")", "(")
        return args

    def table(self) -> tuple:
        line = self.line
        self.expect("{")
        items: list[tuple] = []
        while not self.check("}"):
            if self.accept("["):
                key = self.expr()
                self.expect("]")
                self.expect("=")
                items.append(("kv", key, self.expr()))
            elif self.tok[0] == "name" and self.tokens[self.i + 1][1] == "=" and self.tokens[self.i + 1][0] == "op":
                key_line = self.line
                key = ("const", key_line, self.name())
                self.i += 1
                items.append(("kv", key, self.expr()))
            else:
                items.append(("pos", self.expr()))
            if not (self.accept(",") or self.accept(";")):
                break
        self.expect("}", "{")
        return ("table", line, items)

    def funcbody(self, line: int, *, method: bool = False, name: str | None = None) -> tuple:
        self.expect("(")
        params = ["self"] if method else []
        vararg = False
        if not self.check(")"):
            while True:
                if self.accept("..."):
                    vararg = True
                    break
                params.append(self.name())
                if not self.accept(","):
                    break
        self.expect(")")
        body = self.block()
        self.expect("end", "function")
        return ("function", line, params, vararg, body, name or "anonymous")


def _describe(expr: tuple) -> str:
    if expr[0] == "name":
        return expr[2]
    if expr[0] == "index" and expr[3][0] == "const":
        return f"{_describe(expr[2])}.{expr[3][2]}"
    return "?"


def parse(text: str) -> list[tuple]:
    """The statements of one chunk; raises :class:`LuaSyntaxError`."""
    return Parser(text).chunk()
