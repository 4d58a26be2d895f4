"""2600B reading buffers (``smuX.nvbuffer1``/``2``, ``smuX.makebuffer(n)``) and ``printbuffer``.

A buffer holds readings with their timestamp, source value and status; ``buf[i]`` and
``buf.readings[i]`` are the i-th reading, ``buf.n`` the count, ``buf.capacity`` the size.
With ``appendmode = 0`` (the default) each measurement call into the buffer clears it
first (once per call, not per reading). ``printbuffer(first, last, b1,
b2 ...)`` prints readings of several buffers (or their ``.readings``, ``.timestamps``,
``.sourcevalues``, ``.statuses`` lists) interleaved, as ``format.data`` says.
"""
from __future__ import annotations

from typing import Any

from .lua_runtime import HostFunction, HostObject, LuaError
from .tsp import TspError, number_argument

FIELDS = ("readings", "timestamps", "sourcevalues", "statuses")
_SETTINGS = {"appendmode": 0.0, "collecttimestamps": 1.0, "collectsourcevalues": 0.0, "fillmode": 0.0,
             "timestampresolution": 1e-6, "basetimestamp": 0.0}


class ReadingList(HostObject):
    """One column of a buffer (``buf.readings``): indexable, read-only."""

    def __init__(self, buffer: "ReadingBuffer", column: int) -> None:
        self.buffer = buffer
        self.column = column
        self.lua_name = f"{buffer.lua_name}.{FIELDS[column]}"

    def values(self) -> list[float]:
        return [row[self.column] for row in self.buffer.rows]

    def lua_get(self, key: Any) -> Any:
        if isinstance(key, float) and key.is_integer() and 1 <= key <= len(self.buffer.rows):
            return self.buffer.rows[int(key) - 1][self.column]
        return None

    def lua_len(self) -> float:
        return float(len(self.buffer.rows))


class ReadingBuffer(HostObject):
    def __init__(self, name: str, capacity: int) -> None:
        self.lua_name = name
        self.capacity = capacity
        self.rows: list[tuple[float, float, float, float]] = []
        self.settings = dict(_SETTINGS)
        self.lists = {f: ReadingList(self, i) for i, f in enumerate(FIELDS)}

    def clear(self) -> None:
        self.rows.clear()

    def start_measurement(self) -> None:
        if not self.settings["appendmode"]:
            self.rows.clear()

    def append(self, reading: float, timestamp: float, source: float, status: float) -> None:
        if len(self.rows) >= self.capacity:
            if not self.settings["fillmode"]:  # FILL_ONCE: a full buffer takes no more
                return
            self.rows.pop(0)
        self.rows.append((reading, timestamp - self.settings["basetimestamp"], source, status))

    def lua_get(self, key: Any) -> Any:
        if isinstance(key, float):
            return self.lists["readings"].lua_get(key)
        if key in self.lists:
            return self.lists[key]
        if key == "n":
            return float(len(self.rows))
        if key == "capacity":
            return float(self.capacity)
        if key in ("clear", "clearcache"):
            return HostFunction(f"{self.lua_name}.{key}", lambda *a: self.clear())
        return self.settings.get(key)

    def lua_set(self, key: Any, value: Any) -> None:
        if key not in self.settings or key == "timestampresolution":
            raise LuaError(f"cannot assign '{self.lua_name}.{key}'")
        n = number_argument(value, f"{self.lua_name}.{key}")
        if key != "basetimestamp" and n not in (0.0, 1.0):
            raise TspError(f"Parameter data out of range: {self.lua_name}.{key}", -222)
        self.settings[key] = n

    def lua_len(self) -> float:
        return float(len(self.rows))


def columns(args: tuple[Any, ...]) -> list[list[float]]:
    """The value lists ``printbuffer`` arguments name (a buffer means its readings)."""
    out = []
    for a in args:
        if isinstance(a, ReadingBuffer):
            out.append(a.lists["readings"].values())
        elif isinstance(a, ReadingList):
            out.append(a.values())
        else:
            raise TspError("Parameter error printbuffer: reading buffer expected", 1104)
    return out


def printbuffer_values(first: Any, last: Any, args: tuple[Any, ...]) -> list[float]:
    a, b = int(number_argument(first, "printbuffer")), int(number_argument(last, "printbuffer"))
    cols = columns(args)
    if not cols:
        raise TspError("Parameter error printbuffer: no buffer", 1104)
    n = min(len(c) for c in cols)
    if a < 1 or b > n or a > b:
        raise TspError(f"Parameter data out of range: printbuffer {a}..{b} of {n} readings", -222)
    return [c[i - 1] for i in range(a, b + 1) for c in cols]
