"""Harmonized rows of a release being assembled, on local disk in key order: a release of any size is
applied in bounded memory (ioxhub.ingest.harmonized reads it back one key range at a time).

Each harmonized chunk is sorted (stably: the publisher's order survives among equal keys) by
(year of period_start, indicator, ref_area) and written as one Arrow IPC file, one record batch per
year, with an index of where each (indicator, ref_area) key starts. `rows(year, lo, hi)` returns the rows of one year
whose key lies in [lo, hi], chunk after chunk in chunk_seq order, read through memory maps (only the
pages of that range are touched, and they are released with the returned table).

Rows with the same series key share year, indicator and ref_area, so a key range holds every copy of
its series: duplicates and revisions are settled inside one range.
"""
from __future__ import annotations

import bisect
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Key = tuple[str, str]            # (indicator, ref_area)


@dataclass(frozen=True)
class _ChunkYear:
    path: Path
    batch: int                   # the year's record batch in the file
    keys: list[Key]              # sorted
    starts: np.ndarray           # first row of each key in the file
    counts: np.ndarray


def ranked(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, list]:
    """(rank of each row's value in sorted order, the sorted distinct values); nulls rank last (value None)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(column.type) \
            else column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary.to_pylist()
    values = sorted(set(v for v in dictionary if v is not None))
    position = {v: i for i, v in enumerate(values)}
    remap = np.array([position.get(v, len(values)) for v in dictionary] + [len(values)], np.int64)
    indices = column.indices
    idx = indices.fill_null(len(dictionary)).to_numpy() if indices.null_count else indices.to_numpy()
    return remap[idx], values + [None]


def row_keys(table: pa.Table) -> tuple[np.ndarray, list[Key]]:
    """A sortable integer per row for its (indicator, ref_area), and the key of each integer."""
    ind, ind_values = ranked(table["indicator"])
    ref, ref_values = ranked(table["ref_area"])
    codes = ind * len(ref_values) + ref
    return codes, [(i, r) for i in ind_values for r in ref_values]


class ReleaseSpill:
    """The harmonized rows of one release, by chunk_seq, on disk under `directory`."""

    def __init__(self, directory: Path):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.index: dict[int, dict[int, _ChunkYear]] = {}

    @property
    def rows_total(self) -> int:
        return sum(int(cy.counts.sum()) for years in self.index.values() for cy in years.values())

    def add(self, seq: int, table: pa.Table) -> None:
        """Keep the harmonized rows of chunk `seq` (replacing an earlier copy of that chunk)."""
        self.drop(seq)
        self.index[seq] = years = {}
        if table.num_rows == 0:
            return
        year = pc.year(table["period_start"]).to_numpy().astype(np.int64)
        codes, keys = row_keys(table)
        first = int(year.min())
        combined = (year - first) * len(keys) + codes
        order = np.argsort(combined, kind="stable")
        ordered = table.take(pa.array(order))
        distinct, starts, counts = np.unique(combined[order], return_index=True, return_counts=True)
        path = self.directory / f"{seq:06d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, ordered.schema) as writer:
            for batch, y in enumerate(np.unique(year)):
                y = int(y)
                lo, hi = np.searchsorted(distinct // len(keys), [y - first, y - first + 1])
                begin = int(starts[lo])
                end = int(starts[hi - 1] + counts[hi - 1])
                # one batch per year; every batch shares the chunk's dictionaries (no replacement)
                writer.write_batch(ordered.slice(begin, end - begin).combine_chunks().to_batches()[0])
                years[y] = _ChunkYear(path, batch, [keys[int(k) % len(keys)] for k in distinct[lo:hi]],
                                      starts[lo:hi] - begin, counts[lo:hi])

    def drop(self, seq: int) -> None:
        if self.index.pop(seq, None) is not None:
            (self.directory / f"{seq:06d}.arrow").unlink(missing_ok=True)

    def years(self) -> list[int]:
        return sorted({y for years in self.index.values() for y in years})

    def key_counts(self, year: int) -> Counter:
        counts: Counter = Counter()
        for years in self.index.values():
            cy = years.get(year)
            if cy is not None:
                counts.update(dict(zip(cy.keys, cy.counts.tolist())))
        return counts

    def rows(self, year: int, lo: Key, hi: Key) -> pa.Table | None:
        """The rows of `year` with lo <= (indicator, ref_area) <= hi, in chunk_seq order (None if none)."""
        pieces = []
        for seq in sorted(self.index):
            cy = self.index[seq].get(year)
            if cy is None:
                continue
            a = bisect.bisect_left(cy.keys, _sortable(lo), key=_sortable)
            b = bisect.bisect_right(cy.keys, _sortable(hi), key=_sortable)
            if a >= b:
                continue
            begin, end = int(cy.starts[a]), int(cy.starts[b - 1] + cy.counts[b - 1])
            # Zero-copy: the pieces point into the mapping, unmapped when the last of them is released.
            batch = pa.ipc.open_file(pa.memory_map(str(cy.path))).get_batch(cy.batch)
            pieces.append(batch.slice(begin, end - begin))
        if not pieces:
            return None
        return pa.Table.from_batches(pieces).unify_dictionaries().combine_chunks()

    def close(self) -> None:
        self.index.clear()
        shutil.rmtree(self.directory, ignore_errors=True)


def _sortable(key: Key) -> tuple:
    """Keys ordered as `ranked` orders values: nulls last."""
    return tuple((v is None, v or "") for v in key)
