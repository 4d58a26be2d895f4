"""Protocol base: a validated parameter object whose ``steps()`` is a plan.

``steps()`` yields :mod:`lab.operations` objects and receives each result back
(``result = yield op``); the runner owns everything else (safety, timing, archive,
cleanup). Protocols speak only to ``lab`` so they run unchanged on a bench or in a dry run.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar, Generator, Mapping

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from lab.operations import BenchInfo, Operation

from .parameters import ParameterError, apply_overrides, explain
from .strict import check_types, read_protocol_file

Plan = Generator[Operation, Any, Any]

_REGISTRY: dict[str, type["Protocol"]] = {}


class Protocol(BaseModel):
    # Types strict and numbers finite for every protocol and its nested parameter objects
    # (``epochs = true``, ``calibrate = "no"``, ``width_s = inf`` are errors): see protocols.strict.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _strict_types(cls, data: Any) -> Any:
        check_types(cls, data)
        return data

    name: ClassVar[str] = "protocol"
    # An adaptive protocol chooses later operations from measured results, so a dry
    # check can only replay it with placeholder results.
    adaptive: ClassVar[bool] = False
    # Which figure a report draws for each record stream this protocol yields:
    # "accuracy" (scores per epoch), "recall" (cue → answer glyphs), "curves" (a quantity
    # against the protocol's swept variable), "threshold" (ΔG per pulse vs amplitude),
    # "device" (one device's characterization), "retention" (G(t) on a log time axis).
    # Streams not named get no figure. The key "reads" says what the matrix reads are
    # drawn as: "learned_change" (a training: ΔG/G0 and W), "conductance" or "none".
    figures: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        raise NotImplementedError

    def check(self, bench: BenchInfo) -> None:
        """Reject parameters this bench cannot take (raise ValueError naming the parameter).

        The runner calls it before anything is sent, also for adaptive protocols whose
        plan a dry check cannot replay faithfully. The default accepts everything: the
        runner checks every operation against the bench limits anyway.
        """

    def seeds(self) -> dict[str, int]:
        """Every seed this protocol draws from, by parameter name."""
        return {k: v for k, v in self.model_dump().items() if "seed" in k and isinstance(v, int)}

    def parameters(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def registry() -> dict[str, type[Protocol]]:
    import protocols  # noqa: F401  (importing the package registers every protocol)

    return dict(_REGISTRY)


def get_protocol(name: str) -> type[Protocol]:
    reg = registry()
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise KeyError(f"unknown protocol {name!r}; {hint}known: {', '.join(sorted(reg))} "
                       "(hopbench protocols lists them)")
    return reg[name]


def load_protocol(name_or_file: str, overrides: Mapping[str, Any] | None = None) -> Protocol:
    """A protocol by name, or from a TOML file with ``protocol = "<name>"`` and parameters."""
    import tomllib

    params: dict[str, Any] = {}
    path = Path(name_or_file)
    if path.suffix == ".toml" and path.exists():
        data = tomllib.loads(read_protocol_file(path))
        if "protocol" not in data:
            raise ValueError(f"{path}: missing key 'protocol' (the protocol's name)")
        name = data.pop("protocol")
        params.update(data)
    else:
        name = name_or_file
    cls = get_protocol(name)
    params = apply_overrides(cls, params, overrides or {})
    try:
        return cls.model_validate(params)
    except ValidationError as exc:
        raise ParameterError(explain(cls, exc)) from None
