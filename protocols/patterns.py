"""Pattern sets: ±1 vectors, one per stored memory, loaded from plain text glyph files.

A set file (see ``data/patterns/font5x7.txt``) holds blocks ``glyph <name>`` followed by
``rows`` lines of ``cols`` characters, ``#`` = +1 and ``.`` = −1. Loading checks every
block and names the bad glyph and line, because a wrong pixel silently changes every
recall statistic downstream.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

DEFAULT_SET = "font5x7"
_ON, _OFF = "#", "."


class PatternFileError(ValueError):
    """A pattern file or a pattern request that is malformed; the message names the entry."""


# Shipped pattern sets: protocols/data in the wheel (a link to the repository's data/patterns).
PATTERN_SETS = Path(str(files("protocols") / "data"))


@dataclass(frozen=True)
class PatternSet:
    """Named ±1 patterns of one shape; ``patterns[k]`` is the row-major image of ``names[k]``."""

    names: tuple[str, ...]
    patterns: np.ndarray  # (P, rows*cols) int8 of ±1
    shape: tuple[int, int]
    source: str = ""

    def __post_init__(self) -> None:
        arr = np.asarray(self.patterns)
        if arr.ndim != 2 or arr.shape[0] != len(self.names):
            raise PatternFileError(f"{self.source}: {len(self.names)} names but patterns of shape {arr.shape}")
        if arr.shape[1] != self.shape[0] * self.shape[1]:
            raise PatternFileError(f"{self.source}: patterns have {arr.shape[1]} pixels, shape says {self.shape}")
        if not np.isin(arr, (-1, 1)).all():
            bad = int(np.argwhere(~np.isin(arr, (-1, 1)))[0][0])
            raise PatternFileError(f"{self.source}: pattern {self.names[bad]!r} has values other than ±1")
        if len(set(self.names)) != len(self.names):
            dup = [n for n in self.names if self.names.count(n) > 1][0]
            raise PatternFileError(f"{self.source}: glyph {dup!r} appears twice")

    @property
    def n_pixels(self) -> int:
        return self.shape[0] * self.shape[1]

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.patterns[self.index(name)]

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise PatternFileError(
                f"{self.source}: no glyph {name!r}; available: {' '.join(self.names)}"
            ) from None

    def select(self, names: Iterable[str]) -> "PatternSet":
        names = tuple(names)
        if not names:
            raise PatternFileError(f"{self.source}: empty selection")
        idx = [self.index(n) for n in names]
        return PatternSet(names, self.patterns[idx].copy(), self.shape, self.source)

    def overlaps(self) -> np.ndarray:
        """(P, P) overlaps m_ab = ξ_a·ξ_b / N."""
        x = self.patterns.astype(float)
        return x @ x.T / self.n_pixels

    def mean_overlap(self, absolute: bool = True) -> float:
        return mean_pairwise_overlap(self.patterns, absolute=absolute)

    def render(self, name_or_vector: "str | np.ndarray") -> str:
        v = self[name_or_vector] if isinstance(name_or_vector, str) else np.asarray(name_or_vector)
        return render(v, self.shape)


def render(vector: np.ndarray, shape: tuple[int, int]) -> str:
    v = np.asarray(vector).reshape(shape)
    return "\n".join("".join(_ON if x > 0 else _OFF for x in row) for row in v)


def mean_pairwise_overlap(patterns: np.ndarray, absolute: bool = True) -> float:
    x = np.asarray(patterns, dtype=float)
    if x.shape[0] < 2:
        return 0.0
    m = x @ x.T / x.shape[1]
    iu = np.triu_indices(x.shape[0], 1)
    vals = np.abs(m[iu]) if absolute else m[iu]
    return float(vals.mean())


def parse_patterns(text: str, source: str = "<text>") -> PatternSet:
    shape: tuple[int, int] | None = None
    names: list[str] = []
    images: list[list[str]] = []
    current: list[str] | None = None
    current_line = 0
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        where = f"{source}:{lineno}"
        if line.startswith("shape"):
            parts = line.split()
            if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts[1:]):
                raise PatternFileError(f"{where}: expected 'shape <rows> <cols>', got {line!r}")
            if names:
                raise PatternFileError(f"{where}: 'shape' must come before the first glyph")
            shape = (int(parts[1]), int(parts[2]))
            continue
        if line.startswith("glyph"):
            if shape is None:
                raise PatternFileError(f"{where}: missing 'shape <rows> <cols>' line before the first glyph")
            parts = line.split(maxsplit=1)
            if len(parts) != 2:
                raise PatternFileError(f"{where}: 'glyph' needs a name")
            if current is not None and len(current) != shape[0]:
                raise PatternFileError(
                    f"{source}: glyph {names[-1]!r} (line {current_line}) has {len(current)} rows, expected {shape[0]}"
                )
            names.append(parts[1])
            current = []
            current_line = lineno
            images.append(current)
            continue
        if current is None:
            raise PatternFileError(f"{where}: pixel row {line!r} before any 'glyph <name>' line")
        bad = set(line) - {_ON, _OFF}
        if bad:
            raise PatternFileError(
                f"{where}: glyph {names[-1]!r} row {len(current) + 1} has {''.join(sorted(bad))!r}; "
                f"only '{_ON}' (on) and '{_OFF}' (off) are allowed"
            )
        assert shape is not None  # a glyph line has been seen, and it checks for shape
        if len(line) != shape[1]:
            raise PatternFileError(
                f"{where}: glyph {names[-1]!r} row {len(current) + 1} has {len(line)} pixels, expected {shape[1]}"
            )
        if len(current) >= shape[0]:
            raise PatternFileError(f"{where}: glyph {names[-1]!r} has more than {shape[0]} rows")
        current.append(line)
    if not names:
        raise PatternFileError(f"{source}: no glyphs found")
    assert shape is not None
    if len(images[-1]) != shape[0]:
        raise PatternFileError(
            f"{source}: glyph {names[-1]!r} (line {current_line}) has {len(images[-1])} rows, expected {shape[0]}"
        )
    arr = np.array(
        [[1 if c == _ON else -1 for c in "".join(rows)] for rows in images], dtype=np.int8
    )
    return PatternSet(tuple(names), arr, shape, source)


def pattern_file(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".txt" and p.exists():
        return p
    candidate = PATTERN_SETS / f"{name_or_path}.txt"
    if candidate.exists():
        return candidate
    known = sorted(q.stem for q in PATTERN_SETS.glob("*.txt"))
    raise PatternFileError(f"unknown pattern set {str(name_or_path)!r}; shipped sets: {', '.join(known)}")


def load_patterns(name_or_path: str | Path = DEFAULT_SET, names: Sequence[str] | None = None) -> PatternSet:
    """A shipped set by name (``"font5x7"``) or a file path; ``names`` selects glyphs in that order."""
    path = pattern_file(name_or_path)
    ps = parse_patterns(path.read_text(), source=path.name)
    return ps.select(names) if names else ps


def pick_subset(
    pset: PatternSet,
    k: int,
    target_overlap: float,
    *,
    absolute: bool = True,
    candidates: Sequence[str] | None = None,
    exhaustive_limit: int = 400_000,
) -> tuple[str, ...]:
    """The k glyphs whose mean pairwise overlap is closest to ``target_overlap``.

    Exhaustive over all k-subsets while that stays cheap, else greedy growth plus
    single swaps; ties go to the alphabetically first set so the choice is reproducible.
    """
    pool = pset.select(candidates) if candidates else pset
    n = len(pool)
    if not 2 <= k <= n:
        raise PatternFileError(f"pick_subset: k={k} must be between 2 and the {n} candidates")
    m = pool.overlaps()
    m = np.abs(m) if absolute else m
    n_pairs = k * (k - 1) / 2

    def score(idx: Sequence[int]) -> float:
        sub = m[np.ix_(idx, idx)]
        return abs((sub.sum() - np.trace(sub)) / 2 / n_pairs - target_overlap)

    total = 1
    for i in range(k):
        total = total * (n - i) // (i + 1)
    if total <= exhaustive_limit:
        combos = np.array(list(itertools.combinations(range(n), k)), dtype=np.intp)
        sums = np.zeros(len(combos))
        for a, b in itertools.combinations(range(k), 2):
            sums += m[combos[:, a], combos[:, b]]
        err = np.abs(sums / n_pairs - target_overlap)
        best = combos[int(np.argmin(err))]  # argmin keeps the first (lexicographic) on ties
        return tuple(pool.names[i] for i in best)
    first = np.unravel_index(np.argmin(np.abs(m + np.eye(n) * 1e9 - target_overlap)), m.shape)
    chosen = [int(first[0]), int(first[1])]
    while len(chosen) < k:
        rest = [i for i in range(n) if i not in chosen]
        chosen.append(min(rest, key=lambda i: score(chosen + [i])))
    improved = True
    while improved:
        improved = False
        for pos in range(k):
            for i in range(n):
                if i in chosen:
                    continue
                trial = chosen.copy()
                trial[pos] = i
                if score(trial) < score(chosen) - 1e-12:
                    chosen, improved = trial, True
    return tuple(pool.names[i] for i in sorted(chosen))
