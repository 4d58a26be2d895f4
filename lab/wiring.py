"""The wiring of a bench file checked: buses on matrix rows, lines on mainframe columns.

One matrix (``[wiring] matrix = "matrix"``, a line ``[slot, column]``) or several mainframes
joined on shared rows (``matrix = ["m1", "m2"]``, a line ``[matrix, slot, column]``): every
listed mainframe an existing switch matrix, every bus on its own row letter (the same row on
every mainframe), every line on an installed column of its one mainframe, no crosspoint twice
on a mainframe (the same slot and column of two mainframes are two crosspoints), and the
digital-I/O trigger lines between instruments that have them. Each problem is
``(field path, message)``; :mod:`lab.config` collects them with its other checks.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lab.models import capability


def wiring_mainframes(cfg: Any, insts: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The matrix instruments the wiring names, by name, or the problems with those names."""
    w = cfg.wiring
    single = isinstance(w.matrix, str)
    names = (w.matrix,) if single else w.matrix
    p: list[tuple[str, str]] = []
    if not names:
        p.append(("wiring.matrix", "lists no matrix"))
    out: dict[str, Any] = {}
    for k, name in enumerate(names):
        f = "wiring.matrix" if single else f"wiring.matrix[{k}]"
        inst = insts.get(name)
        if inst is None:
            p.append((f, f"no instrument named {name!r}"))
        elif capability(inst.model).kind != "matrix":
            p.append((f, f"{name!r} is a {inst.model}, not a switch matrix"))
        elif name in out:
            p.append((f, f"matrix {name!r} listed twice"))
        out[name] = inst
    return out, p


def _line_spot(cfg: Any, spot: tuple[Any, ...],
               mainframes: Mapping[str, Any]) -> tuple[tuple[str, int, int] | None, str | None]:
    """(matrix, slot, column) of a wiring.lines entry, or why the entry has the wrong form."""
    if isinstance(cfg.wiring.matrix, str):
        if len(spot) == 3:
            return None, (f"{list(spot)}: this bench has one matrix ({cfg.wiring.matrix}); a line is "
                          "[slot, column]")
        return (cfg.wiring.matrix, spot[0], spot[1]), None
    if len(spot) == 2:
        return None, (f"{list(spot)}: this bench joins several matrices (wiring.matrix); a line is "
                      f"[matrix, slot, column], e.g. [{next(iter(mainframes), 'm1')!r}, 1, 1]")
    if spot[0] not in mainframes:
        return None, (f"matrix {spot[0]!r} is not one of wiring.matrix "
                      f"({', '.join(mainframes)})")
    return (spot[0], spot[1], spot[2]), None


def wiring_problems(cfg: Any, mainframes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every bus on its own row of the matrices, every line on its own installed column of one
    mainframe (the same slot and column on two mainframes are two crosspoints)."""
    p: list[tuple[str, str]] = []
    w = cfg.wiring
    models = sorted({m.model for m in mainframes.values()})
    letters: dict[str, str] = {}
    for bus, letter in w.rows.items():
        if bus not in cfg.buses:
            p.append((f"wiring.rows.{bus}", f"no bus named {bus!r}"))
        for model in models:
            rows = capability(model).rows
            if letter not in rows:
                p.append((f"wiring.rows.{bus}", f"row {letter!r} does not exist on a {model} "
                                                f"(rows {rows[0]}-{rows[-1]})"))
        if letter in letters:
            p.append((f"wiring.rows.{bus}", f"row {letter} already joins bus {letters[letter]!r}"))
        letters[letter] = bus
    for bus in cfg.buses:
        if bus not in w.rows:
            p.append(("wiring.rows", f"bus {bus!r} is not wired to any matrix row"))
    names = cfg.array.lines()
    known = set(names)
    spots: dict[tuple[str, int, int], str] = {}
    for line, entry in w.lines.items():
        f = f"wiring.lines.{line}"
        if line not in known:
            p.append((f, f"no line named {line!r} in the {cfg.array.topology} array"))
        spot, why = _line_spot(cfg, entry, mainframes)
        if spot is None:
            p.append((f, str(why)))
            continue
        name, slot, col = spot
        minst = mainframes[name]
        columns = capability(minst.model).columns
        if not 1 <= slot <= (minst.cards or 0):
            p.append((f, f"slot {slot} not installed ({name} has {minst.cards} card(s))"))
        if not 1 <= col <= columns:
            p.append((f, f"column {col} out of 1..{columns}"))
        if spot in spots:
            where = f"{name} slot {slot}" if cfg.multi_matrix else f"slot {slot}"
            p.append((f, f"{where} column {col} already wired to line {spots[spot]!r} "
                         f"(crosspoints would be used twice)"))
        spots[spot] = line
    missing = [n for n in names if n not in w.lines]
    if missing:
        p.append(("wiring.lines", f"line(s) not wired: {', '.join(missing)}"))
    insts = {i.name: i for i in cfg.instruments}
    for line, members in w.trigger_lines.items():
        f = f"wiring.trigger_lines.{line}"
        if not members or len(set(members)) != len(members):
            p.append((f, "needs one or more distinct instrument names"))
        for name in members:
            inst = insts.get(name)
            if inst is None:
                p.append((f, f"no instrument named {name!r}"))
            elif not 1 <= line <= capability(inst.model).trigger_lines:
                p.append((f, f"{name} ({inst.model}) has no trigger line {line} "
                             f"(it has {capability(inst.model).trigger_lines})"))
    return p
