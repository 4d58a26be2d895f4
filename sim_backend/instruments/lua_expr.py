"""Expressions of the TSP Lua compiler: compile-time scopes, and each expression kind as a closure.

Mixed into :class:`~sim_backend.instruments.lua_compile.Compiler`. ``expr`` gives a
closure returning one value, ``multi`` one returning every value (calls and ``...``),
``explist`` a list with the last expression expanded, as Lua adjusts them.
"""
from __future__ import annotations

from typing import Any, Callable

from .lua_runtime import (
    Activation, LuaError, LuaFunction, LuaTable, SLOT_BYTES, arith, compare, lua_eq, to_number,
    truthy, type_name,
)

Fn = Callable[[Activation], Any]
MULTI = ("call", "method", "vararg")


class FuncState:
    """Compile-time scope of one function: blocks of local names -> slots, upvalues."""

    def __init__(self, parent: "FuncState | None", params: list[str], vararg: bool = False) -> None:
        self.parent = parent
        self.vararg = vararg
        self.loops = 0
        self.blocks: list[dict[str, int]] = [{}]
        self.nslots = 0
        self.upvals: list[tuple[bool, int]] = []
        self.upval_names: dict[str, int] = {}
        for p in params:
            if p != "...":
                self.declare(p)

    def declare(self, name: str) -> int:
        slot = self.nslots
        self.nslots += 1
        self.blocks[-1][name] = slot
        return slot

    def local(self, name: str) -> int | None:
        for block in reversed(self.blocks):
            if name in block:
                return block[name]
        return None

    def resolve(self, name: str) -> tuple[str, int] | None:
        slot = self.local(name)
        if slot is not None:
            return ("local", slot)
        if name in self.upval_names:
            return ("upval", self.upval_names[name])
        if self.parent is None:
            return None
        outer = self.parent.resolve(name)
        if outer is None:
            return None
        self.upvals.append((outer[0] == "local", outer[1]))
        self.upval_names[name] = len(self.upvals) - 1
        return ("upval", self.upval_names[name])


def describe(node: tuple, fs: FuncState) -> str:
    kind = node[0]
    if kind == "name":
        return f"{'local' if fs.resolve(node[2]) else 'global'} '{node[2]}'"
    if kind == "index" and node[3][0] == "const" and type(node[3][2]) is str:
        return f"field '{node[3][2]}'"
    if kind == "method":
        return f"method '{node[3]}'"
    return ""


_FAST = {
    "+": lambda x, y: x + y,
    "-": lambda x, y: x - y,
    "*": lambda x, y: x * y,
}


class ExprCompiler:
    m: Any

    def error(self, line: int, message: str) -> Exception:
        raise NotImplementedError

    def block(self, fs: FuncState, stmts: list[tuple], scope: bool = True) -> Fn:
        raise NotImplementedError

    def explist(self, fs: FuncState, nodes: list[tuple]) -> Callable[[Activation], tuple[Any, ...]]:
        if not nodes:
            return lambda a: ()
        singles = [self.expr(fs, n) for n in nodes[:-1]]
        last = nodes[-1]
        if last[0] in MULTI:
            lm = self.multi(fs, last)
            if not singles:
                return lm
            return lambda a: tuple([f(a) for f in singles]) + lm(a)
        le = self.expr(fs, last)
        if not singles:
            return lambda a: (le(a),)
        return lambda a: tuple([f(a) for f in singles] + [le(a)])

    def multi(self, fs: FuncState, node: tuple) -> Callable[[Activation], tuple[Any, ...]]:
        kind = node[0]
        if kind == "vararg":
            self._check_vararg(fs, node)
            return lambda a: a.v
        if kind in ("call", "method"):
            return self._call(fs, node)
        e = self.expr(fs, node)
        return lambda a: (e(a),)

    def _check_vararg(self, fs: FuncState, node: tuple) -> None:
        if not fs.vararg:
            raise self.error(node[1], "cannot use '...' outside a vararg function near '...'")

    def expr(self, fs: FuncState, node: tuple) -> Fn:
        kind = node[0]
        if kind in ("call", "method"):
            call = self._call(fs, node)

            def first(a: Activation) -> Any:
                r = call(a)
                return r[0] if r else None

            return first
        return getattr(self, f"e_{kind}")(fs, node)

    def e_const(self, fs: FuncState, node: tuple) -> Fn:
        v = node[2]
        return lambda a: v

    def e_vararg(self, fs: FuncState, node: tuple) -> Fn:
        self._check_vararg(fs, node)
        return lambda a: a.v[0] if a.v else None

    def e_paren(self, fs: FuncState, node: tuple) -> Fn:
        return self.expr(fs, node[2])

    def e_name(self, fs: FuncState, node: tuple) -> Fn:
        name = node[2]
        where = fs.resolve(name)
        if where is None:
            get = self.m.get_global
            return lambda a: get(name)
        i = where[1]
        if where[0] == "local":
            return lambda a: a.f[i][0]
        return lambda a: a.u[i][0]

    def e_index(self, fs: FuncState, node: tuple) -> Fn:
        oe, desc, index = self.expr(fs, node[2]), describe(node[2], fs), self.m.index
        if node[3][0] == "const":
            key = node[3][2]

            def const_key(a: Activation) -> Any:
                o = oe(a)
                return o.get(key) if type(o) is LuaTable else index(o, key, desc)

            return const_key
        ke = self.expr(fs, node[3])
        return lambda a: index(oe(a), ke(a), desc)

    def _call(self, fs: FuncState, node: tuple) -> Callable[[Activation], tuple[Any, ...]]:
        m = self.m
        if node[0] == "method":
            oe, name, args = self.expr(fs, node[2]), node[3], self.explist(fs, node[4])
            odesc, desc = describe(node[2], fs), f"method '{node[3]}'"

            def method(a: Activation) -> tuple[Any, ...]:
                o = oe(a)
                return m.call(m.index(o, name, odesc), (o,) + args(a), desc)

            return method
        fe, args, desc = self.expr(fs, node[2]), self.explist(fs, node[3]), describe(node[2], fs)
        return lambda a: m.call(fe(a), args(a), desc)

    def e_function(self, fs: FuncState, node: tuple) -> Fn:
        params, vararg, body, name = node[2], node[3], node[4], node[5]
        child = FuncState(fs, params, vararg=vararg)
        proto = self._proto(child, len(params), vararg, body, name)  # type: ignore[attr-defined]
        ups = proto.upvals

        def make(a: Activation) -> LuaFunction:
            return LuaFunction(proto, [a.f[i] if local else a.u[i] for local, i in ups])

        return make

    def e_table(self, fs: FuncState, node: tuple) -> Fn:
        m, items = self.m, node[2]
        parts: list[tuple[str, Any, Any]] = []
        for n, item in enumerate(items):
            if item[0] == "kv":
                parts.append(("kv", self.expr(fs, item[1]), self.expr(fs, item[2])))
            elif n == len(items) - 1 and item[1][0] in MULTI:
                parts.append(("many", self.multi(fs, item[1]), None))
            else:
                parts.append(("pos", self.expr(fs, item[1]), None))

        def build(a: Activation) -> LuaTable:
            t = LuaTable()
            i = 1.0
            for kind, f, g in parts:
                if kind == "kv":
                    m.set_table(t, f(a), g(a))
                    continue
                for v in (f(a),) if kind == "pos" else f(a):
                    m.budget.charge(SLOT_BYTES)
                    t.set(i, v)
                    i += 1.0
            return t

        return build

    def e_binop(self, fs: FuncState, node: tuple) -> Fn:
        op, le, re_ = node[2], self.expr(fs, node[3]), self.expr(fs, node[4])
        if op in _FAST:
            fast = _FAST[op]
            desc = describe(node[3], fs) or describe(node[4], fs)

            def arithmetic(a: Activation) -> Any:
                x, y = le(a), re_(a)
                if type(x) is float and type(y) is float:
                    return fast(x, y)
                return arith(op, x, y, desc)

            return arithmetic
        if op in ("/", "%", "^"):
            return lambda a: arith(op, le(a), re_(a))
        if op == "..":
            concat = self.m.concat
            return lambda a: concat(le(a), re_(a))
        if op == "==":
            return lambda a: lua_eq(le(a), re_(a))
        if op == "~=":
            return lambda a: not lua_eq(le(a), re_(a))
        return lambda a: compare(op, le(a), re_(a))

    def e_and(self, fs: FuncState, node: tuple) -> Fn:
        le, re_ = self.expr(fs, node[2]), self.expr(fs, node[3])

        def both(a: Activation) -> Any:
            x = le(a)
            return re_(a) if truthy(x) else x

        return both

    def e_or(self, fs: FuncState, node: tuple) -> Fn:
        le, re_ = self.expr(fs, node[2]), self.expr(fs, node[3])

        def either(a: Activation) -> Any:
            x = le(a)
            return x if truthy(x) else re_(a)

        return either

    def e_not(self, fs: FuncState, node: tuple) -> Fn:
        e = self.expr(fs, node[2])
        return lambda a: not truthy(e(a))

    def e_neg(self, fs: FuncState, node: tuple) -> Fn:
        e, desc = self.expr(fs, node[2]), describe(node[2], fs)

        def neg(a: Activation) -> float:
            x = e(a)
            if type(x) is float:
                return -x
            n = to_number(x)
            if n is None:
                where = f" ({desc})" if desc else ""
                raise LuaError(f"attempt to perform arithmetic on a {type_name(x)} value{where}")
            return -n

        return neg

    def e_len(self, fs: FuncState, node: tuple) -> Fn:
        e, length = self.expr(fs, node[2]), self.m.length
        return lambda a: length(e(a))
