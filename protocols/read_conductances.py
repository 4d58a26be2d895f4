"""ReadConductances: the conductance matrix (or some pairs) with its uncertainty."""
from __future__ import annotations

from typing import Any, ClassVar, Literal, Mapping

import numpy as np
from pydantic import Field, field_validator

from lab.operations import BenchInfo, MatrixResult, ReadMatrix, Record

from .base import Plan, Protocol
from .common import device_index, symmetric_matrix


class ReadConductances(Protocol):
    """Read every device, or the devices between the neuron ``pairs`` given, ``repeats`` times averaged.

    The guarded scheme holds every non-measured line at the measured line's potential, so
    sneak paths carry no current; "floating" is offered to show what it costs.
    """

    name: ClassVar[str] = "read_conductances"
    figures: ClassVar[Mapping[str, str]] = {"reads": "conductance"}

    pairs: tuple[tuple[int, int], ...] | None = Field(None,
        description="neuron pairs [[i, j], ...] to read (default: every device)")
    repeats: int = Field(1, ge=1, description="reads averaged per device")
    v_read: float | None = Field(None, gt=0, description="read voltage (default: the bench's v_read_default_V)")
    scheme: Literal["guarded", "floating"] = Field("guarded",
        description="'guarded' holds every other line at the measured line's potential (no sneak current); 'floating' shows what that costs")
    label: str = Field("conductance", description="name of the record stream the matrix is archived under")

    @field_validator("pairs")
    @classmethod
    def _pairs_distinct(cls, v: Any) -> Any:
        if v is not None:
            if not v:
                raise ValueError("pairs is empty; leave it out to read every device")
            for i, j in v:
                if i == j:
                    raise ValueError(f"pair ({i}, {j}) joins a neuron to itself")
        return v

    def devices_for(self, bench: BenchInfo) -> tuple[int, ...] | None:
        if self.pairs is None:
            return None
        index = device_index(bench)
        out = []
        for i, j in self.pairs:
            if not (0 <= i < bench.n_neurons and 0 <= j < bench.n_neurons):
                raise ValueError(f"pair ({i}, {j}): neurons run 0..{bench.n_neurons - 1}")
            if (i, j) not in index:
                raise ValueError(f"pair ({i}, {j}): no device joins these neurons")
            out.append(index[(i, j)])
        return tuple(out)

    def steps(self, bench: BenchInfo, resume: Mapping[str, Any] | None = None) -> Plan:
        if self.v_read is not None and self.v_read > bench.v_read_max:
            raise ValueError(f"v_read = {self.v_read} V exceeds the bench read ceiling {bench.v_read_max} V")
        devices = self.devices_for(bench)
        res: MatrixResult = yield ReadMatrix(
            devices=devices, v_read=self.v_read, repeats=self.repeats, scheme=self.scheme
        )
        matrix = symmetric_matrix(bench, res.g)
        matrix_std = symmetric_matrix(bench, res.g_std)
        yield Record(
            self.label,
            {"g": res.g, "g_std": res.g_std, "matrix": matrix, "matrix_std": matrix_std, "v_read": res.v_read},
        )
        return {
            "g": np.asarray(res.g),
            "g_std": np.asarray(res.g_std),
            "matrix": matrix,
            "matrix_std": matrix_std,
            "v_read": res.v_read,
        }
