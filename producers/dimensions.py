"""Extra dimensions and actions on the partner side: where a commodity column goes, and repeated keys.

`decide_commodity(mapping, table)`: for a mapping without `commodity_classification`, whether the file's
commodity codes are HS (HS-shaped) or another classification, kept as the dimension COMMODITY (decided
once per file, on its first batch). `KeyTracker`: counts validated rows whose observation key (the key
fields and the extra dimensions) repeats an earlier row's, from one 64-bit hash per row (vectorized: the
distinct values of each column are hashed, rows gather them). Rules: docs/publishing.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from producers.mapping import COMMODITY_DIMENSION, ColumnMapping
from producers.validate import DictColumn, Observations

KEY_FIELDS = ("indicator", "ref_area", "counterpart_area", "commodity", "period", "unit")
# HS-shaped: 2, 4 or 6 digits, dots or spaces between pairs; also what the HS normalization repairs
# (a lost leading zero: 1, 3, 5 digits; national tariff lines: 8, 10) and the totals.
_HS_SHAPE = r"^\s*([0-9]{1,2}([.\s]?[0-9]{2}){0,4}|TOTAL|_T)\s*$"


def hs_shaped(values: pa.Array) -> np.ndarray:
    """Whether each (string) value looks like an HS code."""
    return pc.fill_null(pc.match_substring_regex(values, _HS_SHAPE), False).to_numpy(zero_copy_only=False)


def decide_commodity(mapping: ColumnMapping, table: pa.Table) -> tuple[ColumnMapping, str | None]:
    """Settle a resolved mapping's commodity column on a file's first batch: HS when at least half of its
    distinct codes are HS-shaped, else kept as the dimension COMMODITY. (mapping, a note or None)."""
    if mapping.commodity_decided:
        return mapping, None
    column = mapping.fields["commodity"].column
    values = table[column]
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    distinct = pc.unique(pc.utf8_trim_whitespace(values.cast(pa.string())))
    distinct = distinct.filter(pc.fill_null(pc.not_equal(distinct, ""), False))
    shaped = hs_shaped(distinct)
    if not len(distinct) or 2 * int(shaped.sum()) >= len(distinct):
        return mapping.with_commodity_hs(), None
    example = distinct.filter(pa.array(~shaped))[0].as_py()
    return mapping.commodity_as_dimension(), (
        f"column {column!r}: codes are not HS codes (e.g. {example!r}): kept as the dimension {COMMODITY_DIMENSION}, "
        "commodity left empty (commodity_classification: HS2022 in the mapping validates them as HS)")


def _entry_hashes(column: DictColumn, salt: int) -> np.ndarray:
    """A 64-bit hash per dictionary entry (salted by the column), one more for absent (index -1)."""
    entries = np.asarray(column.dictionary.to_pylist(), dtype=object)
    hashed = pd.util.hash_array(entries, categorize=False) if len(entries) else np.zeros(0, np.uint64)
    return np.concatenate([hashed, np.zeros(1, np.uint64)]) ^ np.uint64(salt)


@dataclass
class KeyTracker:
    """Row keys of a release seen so far; `repeated()` counts the rows that repeat an earlier key."""

    hashes: list[np.ndarray] = field(default_factory=list)
    where: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def add(self, obs: Observations) -> None:
        if not len(obs):
            return
        row = np.zeros(len(obs), np.uint64)
        columns = [(name, obs.text[name]) for name in KEY_FIELDS] + sorted(obs.dimensions.items())
        with np.errstate(over="ignore"):
            for name, column in columns:
                salt = int(pd.util.hash_array(np.array([name], dtype=object))[0])
                row = row * np.uint64(0x100000001B3) ^ _entry_hashes(column, salt)[column.indices]
        self.hashes.append(row)
        self.where.append((obs.file, obs.lines))

    def repeated(self) -> tuple[int, str | None]:
        """(rows whose key an earlier row has, an example "file line A and line B" or None)."""
        if not self.hashes:
            return 0, None
        every = pd.Series(np.concatenate(self.hashes))
        dup = every.duplicated(keep="first").to_numpy()
        count = int(dup.sum())
        if not count:
            return 0, None
        later = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero(every.to_numpy() == every.iloc[later])[0])
        files = [f for f, _ in self.where]
        sizes = np.cumsum([len(lines) for _, lines in self.where])

        def place(i: int) -> str:
            k = int(np.searchsorted(sizes, i, side="right"))
            start = int(sizes[k - 1]) if k else 0
            return f"{files[k]} line {int(self.where[k][1][i - start])}"
        return count, f"{place(first)} and {place(later)}"
