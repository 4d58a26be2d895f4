"""Compiler of the TSP Lua subset: syntax tree (:mod:`~sim_backend.instruments.lua_parse`)
to Python closures over :class:`~sim_backend.instruments.lua_runtime.Activation` frames.

Locals live in cells (one-element lists) in the frame of their function, at slots fixed
at compile time; a closure captures the cells of the locals it uses (its upvalues), and a
loop makes fresh cells every turn, as Lua 5.1 does. Each statement counts one step of the
message's budget and records its line for error messages; each loop turn counts one more.
"""
from __future__ import annotations

from typing import Any, Callable

from .lua_expr import MULTI as _MULTI, ExprCompiler, FuncState as _FuncState, describe as _describe
from .lua_runtime import BREAK, Activation, LuaError, Proto, Return, truthy

Fn = Callable[[Activation], Any]

def _seq(fns: list[Fn]) -> Fn:
    if not fns:
        return lambda a: None
    if len(fns) == 1:
        return fns[0]

    def run(a: Activation) -> Any:
        for f in fns:
            r = f(a)
            if r is not None:
                return r
        return None

    return run


class Compiler(ExprCompiler):
    """Turns syntax-tree nodes into closures bound to one machine (``m``); expressions in the mixin."""

    def __init__(self, machine: Any) -> None:
        self.m = machine

    def chunk(self, tree: list[tuple], name: str) -> Proto:
        return self._proto(_FuncState(None, [], vararg=True), 0, True, tree, name)

    def _proto(self, fs: _FuncState, nparams: int, vararg: bool, body: list[tuple], name: str) -> Proto:
        run = self.block(fs, body, scope=False)
        return Proto(name, nparams, vararg, fs.nslots, fs.upvals, run)

    def error(self, line: int, message: str) -> Exception:
        from .lua_parse import LuaSyntaxError

        return LuaSyntaxError(line, message)

    # -- statements --------------------------------------------------------------------------
    def block(self, fs: _FuncState, stmts: list[tuple], scope: bool = True) -> Fn:
        if scope:
            fs.blocks.append({})
        fns = [self.stmt(fs, s) for s in stmts]
        if scope:
            fs.blocks.pop()
        return _seq(fns)

    def stmt(self, fs: _FuncState, node: tuple) -> Fn:
        inner = getattr(self, f"s_{node[0]}")(fs, node)
        m, line, budget = self.m, node[1], self.m.budget

        def run(a: Activation) -> Any:
            m.line = line
            budget.step()
            return inner(a)

        return run

    def s_local(self, fs: _FuncState, node: tuple) -> Fn:
        names, values = node[2], node[3]
        if len(names) == 1 and len(values) == 1 and values[0][0] not in _MULTI:
            ev = self.expr(fs, values[0])
            slot = fs.declare(names[0])

            def one(a: Activation) -> None:
                a.f[slot] = [ev(a)]

            return one
        el = self.explist(fs, values)
        slots = [fs.declare(n) for n in names]

        def run(a: Activation) -> None:
            vals = el(a)
            for i, s in enumerate(slots):
                a.f[s] = [vals[i] if i < len(vals) else None]

        return run

    def s_localfunction(self, fs: _FuncState, node: tuple) -> Fn:
        slot = fs.declare(node[2])
        mk = self.expr(fs, node[3])

        def run(a: Activation) -> None:
            cell: list[Any] = [None]
            a.f[slot] = cell
            cell[0] = mk(a)

        return run

    def s_assign(self, fs: _FuncState, node: tuple) -> Fn:
        targets, values = node[2], node[3]
        if len(targets) == 1 and len(values) == 1 and values[0][0] not in _MULTI:
            prep, store = self.target(fs, targets[0])
            ev = self.expr(fs, values[0])

            def one(a: Activation) -> None:
                st = prep(a)
                store(st, ev(a))

            return one
        pairs = [self.target(fs, t) for t in targets]
        el = self.explist(fs, values)

        def run(a: Activation) -> None:
            states = [prep(a) for prep, _ in pairs]
            vals = el(a)
            for i, (_, store) in enumerate(pairs):
                store(states[i], vals[i] if i < len(vals) else None)

        return run

    def target(self, fs: _FuncState, node: tuple) -> tuple[Callable[[Activation], Any], Callable[[Any, Any], None]]:
        m = self.m
        if node[0] == "name":
            where = fs.resolve(node[2])
            name = node[2]
            if where is None:
                return (lambda a: None), (lambda st, v: m.set_global(name, v))
            i = where[1]
            if where[0] == "local":
                return (lambda a: a.f[i]), (lambda cell, v: cell.__setitem__(0, v))
            return (lambda a: a.u[i]), (lambda cell, v: cell.__setitem__(0, v))
        oe, ke, desc = self.expr(fs, node[2]), self.expr(fs, node[3]), _describe(node[2], fs)
        return (lambda a: (oe(a), ke(a))), (lambda st, v: m.setindex(st[0], st[1], v, desc))

    def s_callstat(self, fs: _FuncState, node: tuple) -> Fn:
        call = self.multi(fs, node[2])

        def run(a: Activation) -> None:
            call(a)

        return run

    def s_do(self, fs: _FuncState, node: tuple) -> Fn:
        return self.block(fs, node[2])

    def s_return(self, fs: _FuncState, node: tuple) -> Fn:
        el = self.explist(fs, node[2])
        return lambda a: Return(el(a))

    def s_break(self, fs: _FuncState, node: tuple) -> Fn:
        if not fs.loops:
            raise self.error(node[1], "no loop to break near 'break'")
        return lambda a: BREAK

    def s_if(self, fs: _FuncState, node: tuple) -> Fn:
        clauses = [(self.expr(fs, c), self.block(fs, b)) for c, b in node[2]]
        orelse = self.block(fs, node[3])

        def run(a: Activation) -> Any:
            for cond, body in clauses:
                v = cond(a)
                if v is not None and v is not False:
                    return body(a)
            return orelse(a)

        return run

    def _loop_body(self, fs: _FuncState, stmts: list[tuple], extra: Callable[[], Any] | None = None) -> Any:
        fs.loops += 1
        fs.blocks.append({})
        result = extra() if extra else None
        body = _seq([self.stmt(fs, s) for s in stmts])
        fs.blocks.pop()
        fs.loops -= 1
        return body, result

    def s_while(self, fs: _FuncState, node: tuple) -> Fn:
        cond = self.expr(fs, node[2])
        body, _ = self._loop_body(fs, node[3])
        budget = self.m.budget

        def run(a: Activation) -> Any:
            while truthy(cond(a)):
                budget.step()
                r = body(a)
                if r is not None:
                    return None if r is BREAK else r
            return None

        return run

    def s_repeat(self, fs: _FuncState, node: tuple) -> Fn:
        fs.loops += 1
        fs.blocks.append({})
        body = _seq([self.stmt(fs, s) for s in node[2]])
        cond = self.expr(fs, node[3])  # sees the body's locals
        fs.blocks.pop()
        fs.loops -= 1
        budget = self.m.budget

        def run(a: Activation) -> Any:
            while True:
                budget.step()
                r = body(a)
                if r is not None:
                    return None if r is BREAK else r
                if truthy(cond(a)):
                    return None

        return run

    def s_fornum(self, fs: _FuncState, node: tuple) -> Fn:
        start, stop, step = (self.expr(fs, n) for n in node[3:6])
        body, slot = self._loop_body(fs, node[6], lambda: fs.declare(node[2]))
        budget = self.m.budget

        def run(a: Activation) -> Any:
            v, limit, inc = start(a), stop(a), step(a)
            for what, x in (("initial", v), ("limit", limit), ("step", inc)):
                if type(x) is not float:
                    raise LuaError(f"'for' {what} value must be a number")
            while (v <= limit) if inc > 0 else (v >= limit):
                budget.step()
                a.f[slot] = [v]
                r = body(a)
                if r is not None:
                    return None if r is BREAK else r
                v += inc
            return None

        return run

    def s_forin(self, fs: _FuncState, node: tuple) -> Fn:
        el = self.explist(fs, node[3])
        body, slots = self._loop_body(fs, node[4], lambda: [fs.declare(n) for n in node[2]])
        m, budget = self.m, self.m.budget

        def run(a: Activation) -> Any:
            vals = el(a) + (None, None, None)
            f, s, ctl = vals[0], vals[1], vals[2]
            while True:
                budget.step()
                out = m.call(f, (s, ctl), "for iterator")
                if not out or out[0] is None:
                    return None
                ctl = out[0]
                for i, slot in enumerate(slots):
                    a.f[slot] = [out[i] if i < len(out) else None]
                r = body(a)
                if r is not None:
                    return None if r is BREAK else r

        return run
