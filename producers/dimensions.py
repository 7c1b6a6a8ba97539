"""Extra dimensions and actions on the partner side: where a commodity column goes, and repeated keys.

`decide_commodity(mapping, table)`: for a mapping without `commodity_classification`, whether the file's
commodity codes are HS (HS-shaped) or another classification, kept as the dimension COMMODITY (decided
once per file, on its first batch). `KeyTracker`: counts validated rows whose observation key (the key
fields and the extra dimensions) repeats an earlier row's, from one 64-bit hash per row (vectorized: the
distinct values of each column are hashed, rows gather them), spilled to local disk by a worker thread (so
that memory does not grow with the release and the spilling overlaps with publishing). Rules:
docs/publishing.md.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.ingest.background import Background
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


def _varies(column: DictColumn) -> bool:
    """False for a column that cannot tell rows apart (all absent, or one value on every row)."""
    return len(column.dictionary) > 1 or (len(column.dictionary) == 1 and int(column.indices.min()) < 0)


_SPILL = np.dtype([("hash", "<u8"), ("file", "<u4"), ("line", "<u4")])
_PARTS_BITS = 6          # the hashes are spilled to 64 files by their top bits, and counted file by file
_SLICE_ROWS = 1 << 16


def _salt(name: str) -> int:
    return int(pd.util.hash_array(np.array([name], dtype=object))[0])


class KeyTracker:
    """Row keys of a release seen so far, in bounded memory; `repeated()` counts the rows whose key an
    earlier row has. Each row's key is one 64-bit hash, appended with its file and line to one of 64
    files on local disk (by the hash's top bits): memory stays that of a few batches, and the count at the
    end reads one file at a time (1/64 of the release's 16 bytes a row). `add` hashes on the caller's
    thread; the spilling runs on a worker thread, in order, at most two batches behind."""

    def __init__(self, directory: Path | None = None):
        self._dir = Path(tempfile.mkdtemp(prefix="ioxhub-keys-", dir=directory))
        self._parts: dict[int, BinaryIO] = {}
        self._spiller: Background | None = None
        self.files: list[str] = []

    def add(self, obs: Observations) -> None:
        if not len(obs):
            return
        if not self.files or self.files[-1] != obs.file:
            self.files.append(obs.file)
        columns = [(name, obs.text[name]) for name in KEY_FIELDS] + sorted(obs.dimensions.items())
        hashed = [(_entry_hashes(column, _salt(name)), column.indices) for name, column in columns if _varies(column)]
        if self._spiller is None:
            self._spiller = Background("keys")
        for start in range(0, len(obs), _SLICE_ROWS):       # small temporaries: publish memory stays flat
            stop = min(start + _SLICE_ROWS, len(obs))
            row = np.zeros(stop - start, np.uint64)
            with np.errstate(over="ignore"):
                for entries, indices in hashed:
                    row = row * np.uint64(0x100000001B3) ^ entries.take(indices[start:stop])
            self._spiller.submit(self._spill, row, len(self.files) - 1, obs.lines[start:stop])

    def _spill(self, row: np.ndarray, file: int, lines: np.ndarray) -> None:
        records = np.empty(len(row), _SPILL)
        records["hash"], records["file"], records["line"] = row, file, lines
        part = (row >> np.uint64(64 - _PARTS_BITS)).astype(np.uint8)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange((1 << _PARTS_BITS) + 1))
        records = records[order]
        for p in np.flatnonzero(np.diff(bounds)):
            sink = self._parts.get(int(p))
            if sink is None:
                sink = self._parts[int(p)] = open(self._dir / f"{int(p):02d}.keys", "wb")
            sink.write(records[bounds[p]:bounds[p + 1]].tobytes())

    def repeated(self) -> tuple[int, str | None]:
        """(rows whose key an earlier row has, an example "file line A and file line B" or None)."""
        if self._spiller is not None:
            self._spiller.wait()
        count, example = 0, None
        for p, sink in sorted(self._parts.items()):
            sink.close()
            records = np.fromfile(self._dir / f"{p:02d}.keys", _SPILL)
            hashes = pd.Series(records["hash"])
            dup = hashes.duplicated(keep="first").to_numpy()
            count += int(dup.sum())
            if example is None and dup.any():
                later = records[int(np.flatnonzero(dup)[0])]
                first = records[int(np.flatnonzero(records["hash"] == later["hash"])[0])]
                example = f"{self._where(first)} and {self._where(later)}"
        return count, example

    def _where(self, record) -> str:
        return f"{self.files[int(record['file'])]} line {int(record['line'])}"

    def close(self) -> None:
        if self._spiller is not None:
            self._spiller.close()
        for sink in self._parts.values():
            sink.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "KeyTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
