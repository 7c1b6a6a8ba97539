"""Harmonized rows of a release being assembled, kept in key order in memory or on local disk.

`ReleaseSpill.add(seq, rows)` sorts a chunk's rows by (year, indicator, ref_area); `rows_by_range(year,
ranges)` gives them back one key range at a time, chunk after chunk in chunk_seq order, so a release of
any size is applied in bounded memory (`MemoryBudget`: MEMORY_ROWS rows per run stay in memory, the rest
goes to Arrow IPC files). Method: docs/architecture.md, "Bounded memory in the ingest".
"""
from __future__ import annotations

import bisect
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Key = tuple[str, str]            # (indicator, ref_area)
MEMORY_ROWS = 1 << 20            # harmonized rows a run keeps in memory before spilling to disk (~64 MB)


class MemoryBudget:
    """Harmonized rows held in memory by all the spills of one run."""

    def __init__(self, rows: int | None = None):
        self.rows = MEMORY_ROWS if rows is None else rows

    def take(self, rows: int) -> bool:
        if rows > self.rows:
            return False
        self.rows -= rows
        return True

    def give_back(self, rows: int) -> None:
        self.rows += rows


@dataclass(frozen=True)
class _ChunkYear:
    path: Path | None            # the chunk's IPC file, or None when held in memory
    batch: int | pa.RecordBatch  # the year's record batch: its number in the file, or itself
    keys: list[Key]              # sorted
    starts: np.ndarray           # first row of each key in the batch
    counts: np.ndarray

    def load(self) -> pa.RecordBatch:
        if self.path is None:
            return self.batch
        with pa.OSFile(str(self.path)) as source:
            return pa.ipc.open_file(source).get_batch(self.batch)


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


def take_rows(table: pa.Table, indices: np.ndarray) -> pa.Table:
    """`table.take(indices)`, but a column that cannot differ between rows is made anew rather than
    gathered: one without a single value as nulls, a dictionary column of one entry without nulls as
    indices of that entry (a gather walks every row; several harmonized columns hold one value or none
    in a release, e.g. the release id, area types and unit details). The columns made anew share one
    buffer of zeros (their indices, and the values under their nulls): memory of one column, not of each."""
    zeros = _Zeros(len(indices))
    made = {i: made for i, column in enumerate(table.columns) if (made := _constant(column, zeros)) is not None}
    if not made:
        return table.take(pa.array(indices))
    taken = table.select([i for i in range(table.num_columns) if i not in made]).take(pa.array(indices))
    columns = [made[i] if i in made else taken[f.name] for i, f in enumerate(table.schema)]
    return pa.table(columns, schema=table.schema)


def uniform(column: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every row of `column` holds the same value (or none): it tells no row apart."""
    return _constant(column, _Zeros(0)) is not None


class _Zeros:
    """One zero-filled buffer for `n` rows, made on first use and shared by the arrays built on it."""

    def __init__(self, n: int):
        self.n = n
        self._buffer: pa.Buffer | None = None

    def buffer(self, nbytes: int) -> pa.Buffer:
        if self._buffer is None or self._buffer.size < nbytes:
            self._buffer = pa.py_buffer(np.zeros(max(nbytes, 4 * self.n, 1), np.uint8))
        return self._buffer

    def nulls(self, type_: pa.DataType) -> pa.Array:
        """`n` nulls of a fixed-width or dictionary type (strings: `pa.nulls`)."""
        index = type_.index_type if pa.types.is_dictionary(type_) else type_
        if not (pa.types.is_integer(index) or pa.types.is_floating(index) or pa.types.is_temporal(index)) \
                or index.bit_width % 8:
            return pa.nulls(self.n, type_)
        buffers = [self.buffer((self.n + 7) // 8), self.buffer(self.n * index.bit_width // 8)]
        if pa.types.is_dictionary(type_):
            return pa.DictionaryArray.from_buffers(type_, self.n, buffers, pa.array([], type_.value_type), null_count=self.n)
        return pa.Array.from_buffers(type_, self.n, buffers, null_count=self.n)

    def indices(self, dictionary: pa.Array, index_type: pa.DataType) -> pa.DictionaryArray:
        """`n` rows of the dictionary's first entry."""
        buffers = [None, self.buffer(self.n * index_type.bit_width // 8)]
        return pa.DictionaryArray.from_buffers(pa.dictionary(index_type, dictionary.type), self.n, buffers, dictionary,
                                               null_count=0)


def _constant(column: pa.Array | pa.ChunkedArray, zeros: _Zeros) -> pa.Array | None:
    """`zeros.n` rows of `column`'s only value (or of nulls) when every row holds it, else None (decided
    on the chunks' dictionaries and null counts, without reading the rows)."""
    if column.null_count == len(column):
        return zeros.nulls(column.type)
    if column.null_count or not pa.types.is_dictionary(column.type):
        return None
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    dictionaries = [c.dictionary for c in chunks if len(c)]
    if any(len(d) != 1 for d in dictionaries) or any(not d.equals(dictionaries[0]) for d in dictionaries[1:]):
        return None
    return zeros.indices(dictionaries[0], column.type.index_type)


def row_keys(table: pa.Table) -> tuple[np.ndarray, list[Key]]:
    """A sortable integer per row for its (indicator, ref_area), and the key of each integer."""
    ind, ind_values = ranked(table["indicator"])
    ref, ref_values = ranked(table["ref_area"])
    codes = ind * len(ref_values) + ref
    return codes, [(i, r) for i in ind_values for r in ref_values]


class ReleaseSpill:
    """The harmonized rows of one release, by chunk_seq: in memory within `budget`, else on disk
    under `directory`."""

    def __init__(self, directory: Path, budget: MemoryBudget):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.budget = budget
        self.index: dict[int, dict[int, _ChunkYear]] = {}
        self.held: dict[int, int] = {}           # seq -> rows held in memory

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
        ordered = take_rows(table, order)
        distinct, starts, counts = np.unique(combined[order], return_index=True, return_counts=True)
        batches = []
        for y in np.unique(year):
            y = int(y)
            lo, hi = np.searchsorted(distinct // len(keys), [y - first, y - first + 1])
            begin, end = int(starts[lo]), int(starts[hi - 1] + counts[hi - 1])
            # every batch of a chunk shares its dictionaries (an IPC file allows no replacement)
            batches.append((y, ordered.slice(begin, end - begin).combine_chunks().to_batches()[0],
                            [keys[int(k) % len(keys)] for k in distinct[lo:hi]], starts[lo:hi] - begin, counts[lo:hi]))
        path = None
        if self.budget.take(table.num_rows):
            self.held[seq] = table.num_rows
        else:
            path = self.directory / f"{seq:06d}.arrow"
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, ordered.schema) as writer:
                for _, batch, *_ in batches:
                    writer.write_batch(batch)
        for i, (y, batch, year_keys, year_starts, year_counts) in enumerate(batches):
            years[y] = _ChunkYear(path, batch if path is None else i, year_keys, year_starts, year_counts)

    def drop(self, seq: int) -> None:
        if self.index.pop(seq, None) is not None:
            self.budget.give_back(self.held.pop(seq, 0))
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

    def rows_by_range(self, year: int, ranges: list[tuple[Key, Key]]) -> Iterator[pa.Table | None]:
        """For each key range [lo, hi] in turn, the rows of `year` in it, in chunk_seq order (None if none).

        With several ranges, the year's rows are first regrouped, one pass over the chunks, into one
        file per range, so each range then reads only its own rows (plain reads, no memory maps: their
        pages would stay counted in RSS)."""
        if len(ranges) == 1:
            yield self._read([self._piece(seq, year, *ranges[0]) for seq in sorted(self.index)])
            return
        paths = [self.directory / f"range-{year}-{i:05d}.arrows" for i in range(len(ranges))]
        sinks: dict[int, tuple] = {}
        try:
            for seq in sorted(self.index):
                cy = self.index[seq].get(year)
                if cy is None:
                    continue
                batch = cy.load()
                for i, (lo, hi) in enumerate(ranges):
                    span = _span(cy, lo, hi)
                    if span is None:
                        continue
                    if i not in sinks:
                        sink = pa.OSFile(str(paths[i]), "wb")
                        sinks[i] = (sink, pa.ipc.new_stream(sink, batch.schema))
                    sinks[i][1].write_batch(batch.slice(span[0], span[1] - span[0]))
        finally:
            for sink, writer in sinks.values():
                writer.close()
                sink.close()
        for i in range(len(ranges)):
            if i not in sinks:
                yield None
                continue
            with pa.OSFile(str(paths[i])) as source:
                table = pa.ipc.open_stream(source).read_all()
            paths[i].unlink()
            yield table.unify_dictionaries().combine_chunks()

    def _piece(self, seq: int, year: int, lo: Key, hi: Key) -> pa.RecordBatch | None:
        cy = self.index[seq].get(year)
        span = _span(cy, lo, hi) if cy is not None else None
        if span is None:
            return None
        return cy.load().slice(span[0], span[1] - span[0])

    @staticmethod
    def _read(pieces: list) -> pa.Table | None:
        pieces = [p for p in pieces if p is not None]
        if not pieces:
            return None
        return pa.Table.from_batches(pieces).unify_dictionaries().combine_chunks()

    def close(self) -> None:
        for seq in list(self.index):
            self.drop(seq)
        shutil.rmtree(self.directory, ignore_errors=True)


def _span(cy: _ChunkYear, lo: Key, hi: Key) -> tuple[int, int] | None:
    """The rows [begin, end) of a chunk's year batch whose keys lie in [lo, hi]."""
    a = bisect.bisect_left(cy.keys, _sortable(lo), key=_sortable)
    b = bisect.bisect_right(cy.keys, _sortable(hi), key=_sortable)
    if a >= b:
        return None
    return int(cy.starts[a]), int(cy.starts[b - 1] + cy.counts[b - 1])


def _sortable(key: Key) -> tuple:
    """Keys ordered as `ranked` orders values: nulls last."""
    return tuple((v is None, v or "") for v in key)
