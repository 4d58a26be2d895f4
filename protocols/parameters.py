"""What a protocol takes, for people: its parameters as rows, dotted overrides, plain-word errors.

Every protocol parameter is a pydantic field; its one line of meaning is the field's
``description``, its allowed range the field's constraints (``ge``, ``gt``, ``le``, ``lt``,
a ``Literal``'s values). Units follow the names: a name ending in ``_<unit>`` (``width_s``,
``ambient_K``, ``cross_section_m2``) carries that unit; ``v`` and names starting ``v_`` are
voltages across a device or on a line, in V. Nested parameter objects (``pulse``,
``patterns``, ``cues``) are listed field by field under dotted names (``pulse.width_s``), the
names ``--set`` and protocol files take.
"""
from __future__ import annotations

import difflib
import inspect
import sys
import tomllib
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined

UNIT_SUFFIXES = ("m2", "Hz", "s", "V", "A", "W", "K", "S", "m")


def unit_of(name: str) -> str:
    """The unit a parameter name states ('' for a pure number)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "v" or leaf.startswith("v_"):
        return "V"
    for unit in UNIT_SUFFIXES:
        if leaf.endswith("_" + unit):
            return unit
    return ""


@dataclass(frozen=True)
class Parameter:
    name: str  # dotted for a field of a nested parameter object
    type: str
    unit: str
    default: str
    allowed: str
    description: str
    required: bool = False


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is type(None):
        return "none"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0])}"
        return "(" + ", ".join(_type_name(a) for a in args) + ")"
    if origin in (list, dict, Mapping):
        return getattr(origin, "__name__", str(origin))
    if isinstance(tp, type):
        if issubclass(tp, BaseModel):
            return "table"
        return {"str": "text", "bool": "true/false", "int": "integer", "float": "number"}.get(tp.__name__, tp.__name__)
    return str(tp).replace("typing.", "")


def _allowed(info: Any) -> str:
    parts = []
    for m in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(m, attr, None)
            if value is not None and isinstance(m, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le,
                                                    annotated_types.Lt, annotated_types.Interval)):
                parts.append(f"{sign} {value:g}" if isinstance(value, (int, float)) else f"{sign} {value}")
    origin = typing.get_origin(info.annotation)
    if origin is Literal:
        parts.append(", ".join(repr(a) for a in typing.get_args(info.annotation)))
    return ", ".join(parts)


def _show(value: Any) -> str:
    """A default as it would be written after ``--set name=`` (TOML), 'none' when unset."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_show(v)}" for k, v in value.items() if v is not None) + "}"
    return str(value)


def _model_of(tp: Any) -> type[BaseModel] | None:
    """The parameter-object class of a field (``PulseShape``, or ``X | None``), if it is one."""
    candidates = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, BaseModel):
            return c
    return None


def parameters(cls: type[BaseModel], prefix: str = "", default: Any = PydanticUndefined) -> list[Parameter]:
    """Every parameter of a protocol (or parameter object), nested objects flattened to dotted names."""
    rows: list[Parameter] = []
    for name, info in cls.model_fields.items():
        full = prefix + name
        value = info.default if default is PydanticUndefined else getattr(default, name, info.default)
        # inside a table a required field is required when the table is given
        required = info.is_required() and (default is PydanticUndefined or default is None)
        sub = _model_of(info.annotation)
        desc = (info.description or "").strip()
        if sub is not None:
            optional = type(None) in typing.get_args(info.annotation)
            rows.append(Parameter(full, "table" + (" or none" if optional else ""), "",
                                  "required" if required else _show(value), "", desc, required))
            rows += parameters(sub, full + ".", value if isinstance(value, BaseModel) else None)
            continue
        rows.append(Parameter(
            full, _type_name(info.annotation), unit_of(full),
            "required" if required else _show(value), _allowed(info), desc, required,
        ))
    return rows


def field_names(cls: type[BaseModel]) -> list[str]:
    """Every settable leaf name (``pulse.width_s``; the table ``pulse`` itself is settable too)."""
    return [p.name for p in parameters(cls) if not p.type.startswith("table")]


# ------------------------------------------------------------------ dotted overrides


def apply_overrides(cls: type[BaseModel], params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``overrides`` applied; a dotted name changes one field of a nested object.

    ``pulse.width_s = 0.004`` keeps every other field of ``pulse`` at its current value (from
    ``params``, else the protocol's default), so the rest of a calibrated default survives;
    ``pulse = {width_s = 0.004}`` replaces the whole object (its own defaults fill the rest).
    """
    out = dict(params)
    for key, value in overrides.items():
        if "." not in key:
            out[key] = value
            continue
        path = key.split(".")
        node = out
        model: type[BaseModel] | None = cls
        for k, part in enumerate(path[:-1]):
            if model is None or part not in model.model_fields:
                raise ParameterError(_unknown(".".join(path[:k + 1]), model, cls))
            info = model.model_fields[part]
            current = node.get(part, PydanticUndefined)
            if current is PydanticUndefined or current is None:
                current = None if info.is_required() else info.default
            if isinstance(current, BaseModel):
                current = current.model_dump(exclude_unset=False)
            node[part] = dict(current) if isinstance(current, Mapping) else {}
            node = node[part]
            model = _model_of(info.annotation)
            if model is None:
                raise ParameterError(f"{key}: {'.'.join(path[:k + 1])} is a single value "
                                     f"({_type_name(info.annotation)}), not a table with fields")
        node[path[-1]] = value
    return out


# ------------------------------------------------------------------ errors in plain words


class ParameterError(ValueError):
    """A protocol parameter that cannot be taken, said in plain words."""


def _suggest(name: str, valid: Iterable[str]) -> str:
    valid = list(valid)
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    if not close:  # a leaf name typed without its table (width_s for pulse.width_s)
        close = [v for v in valid if v.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]][:1]
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown(name: str, model: type[BaseModel] | None, protocol: type[BaseModel]) -> str:
    where = getattr(protocol, "name", protocol.__name__)
    valid = field_names(protocol)
    return (f"{where} has no parameter {name!r}; {_suggest(name, valid)}"
            f"its parameters: {', '.join(valid)} (hopbench protocols {where} explains each)")


def _plain(err: Mapping[str, Any], unit: str = "") -> str:
    kind, msg, ctx = err.get("type", ""), str(err.get("msg", "")), err.get("ctx") or {}
    ctx = {k: (f"{v:g}" + (f" {unit}" if unit else "") if isinstance(v, (int, float)) else v) for k, v in ctx.items()}
    got = err.get("input")
    given = f", got {got!r}" if got is not None and not isinstance(got, (dict, BaseModel)) else ""
    bounds = {"greater_than": "must be > {gt}", "greater_than_equal": "must be ≥ {ge}",
              "less_than": "must be < {lt}", "less_than_equal": "must be ≤ {le}"}
    if kind in bounds:
        return bounds[kind].format(**ctx) + given
    if kind == "literal_error":
        return f"must be {ctx.get('expected', msg)}{given}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"must be a whole number{given}"
    if kind in ("float_parsing", "float_type"):
        return f"must be a number{given}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false{given}"
    if kind in ("tuple_type", "list_type"):
        return f"must be a list, e.g. [1, 2]{given}"
    if kind == "model_type" or kind == "dict_type":
        return f"must be a table, e.g. {{name = value}}{given}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg.removeprefix("Value error, ") + given


def explain(protocol: type[BaseModel], exc: ValidationError) -> str:
    """Every problem of a ValidationError of ``protocol``'s parameters, one per line, in plain words."""
    where = getattr(protocol, "name", protocol.__name__)
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith(("function-", "tagged-union"))]
        # pydantic tries each member of a union: "x.PulseShape" / "x.none" are not names a user wrote
        loc = [p for p in loc if not (p[:1].isupper() or p in ("none", "str", "int", "float", "tuple[...]"))]
        name = ".".join(p for p in loc if not p.isdigit())
        if err.get("type") == "extra_forbidden":
            lines.append(_unknown(name, None, protocol))
        elif err.get("type") == "missing":
            lines.append(f"{where}: parameter {name!r} is required (set it with --set {name}=...)")
        else:
            index = "".join(f"[{p}]" for p in loc if p.isdigit())
            text = _plain(err, unit_of(name))
            # a validator's own message usually names its field already
            subject = "" if not loc or text.startswith(name.rsplit(".", 1)[-1]) else f"{name}{index} "
            lines.append(f"{where}: {subject}{text}")
    unique = list(dict.fromkeys(lines))
    return "\n".join(unique)


def plain_validation(exc: ValidationError) -> list[str]:
    """Any model's ValidationError (a sweep file, a table) as ``field: problem`` lines in plain words."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            out.append(f"{loc}: not a known field of {exc.title}")
        elif err.get("type") == "missing":
            out.append(f"{loc}: required, not given")
        else:
            out.append(f"{loc}: {_plain(err, unit_of(loc))}" if loc else _plain(err))
    return list(dict.fromkeys(out))


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``name=value`` pairs; values are read as TOML (numbers, booleans, lists) or text.

    A dotted name (``pulse.width_s=0.004``) stays dotted: the protocol loader changes that one
    field and keeps the table's other fields. One name given twice, or a table given beside one
    of its fields, is refused: which one wins would depend on the order on the command line.
    """
    result: dict[str, Any] = {}
    given: dict[str, str] = {}
    for item in items or []:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name or any(not part for part in name.split(".")):
            raise ValueError(f"--set {item!r}: expected name=value (or table.field=value)")
        if name in given:
            raise ValueError(f"--set {name} is given twice ({given[name]!r} and {item!r}); give it once")
        for other in given:
            if other.startswith(name + ".") or name.startswith(other + "."):
                raise ValueError(f"--set {other} and --set {name} overlap: set the whole table or its fields, not both")
        given[name] = item
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError as exc:
            if raw.strip()[:1] in "[{":  # meant as a list or table, not as text
                raise ValueError(f"--set {name}: {raw!r} is not a TOML list or table ({exc}); text inside "
                                 f"one goes in quotes, e.g. [\"L\", \"T\"] or {{names = [\"L\"]}}") from None
            value = raw  # a bare word is text
        result[name] = value
    return result


def protocol_summary(cls: type) -> str:
    """A protocol's one line: the first line of its docstring, else of its module's."""
    doc = inspect.getdoc(cls) if cls.__doc__ else (sys.modules[cls.__module__].__doc__ or "")
    first = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    return first.replace("``", "")


def parameter_lines(cls: type[BaseModel], name: str) -> list[str]:
    """One block per parameter: name [unit], type and allowed range, default; its meaning below.

    Plain lines rather than a table: six columns do not fit 80 characters, and a block per
    parameter reads (and greps) the same at any width.
    """
    lines = [f"{name}: {protocol_summary(cls)}", "", "parameters (--set name=value; a table's field: "
             "--set pulse.width_s=0.004; a protocol TOML file takes the same names):"]
    for row in parameters(cls):
        unit = f" [{row.unit}]" if row.unit else ""
        kind = row.type + (f", {row.allowed}" if row.allowed and not row.type.startswith("one of") else "")
        default = "required" if row.required else f"default {row.default}"
        lines.append(f"  {row.name}{unit}: {kind}; {default}")
        if row.description:
            lines.append(f"      {row.description}")
    return lines
