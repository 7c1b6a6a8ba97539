"""Input plumbing shared by the derivations: accept pandas or Arrow, check columns, encode keys as ints.

`arrow_table(...)` / `frame(...)` check the required columns and name the missing ones; `codes` turns a
string column into small integer codes and `group_ids` combines them into one int64 key per row, so
group-bys on big tables never run on Python strings.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.errors import IoxhubError

TableLike = pa.Table | pd.DataFrame


def _check(columns: Iterable[str], required: Sequence[str], name: str) -> None:
    missing = [c for c in required if c not in set(columns)]
    if missing:
        raise IoxhubError(f"{name}: missing column(s) {', '.join(missing)}")


def arrow_table(table: TableLike, required: Sequence[str], name: str) -> pa.Table:
    """`table` as an Arrow table holding (at least) the `required` columns, in that order."""
    if isinstance(table, pd.DataFrame):
        _check(table.columns, required, name)
        table = pa.Table.from_pandas(table[list(required)], preserve_index=False)
    elif isinstance(table, pa.Table):
        _check(table.column_names, required, name)
        table = table.select(list(required))
    else:
        raise IoxhubError(f"{name}: expected a pandas DataFrame or a pyarrow Table, got {type(table).__name__}")
    return table


def frame(table: TableLike, required: Sequence[str], name: str) -> pd.DataFrame:
    """`table` as a pandas DataFrame (a copy of the `required` columns plus any others it has)."""
    if isinstance(table, pa.Table):
        table = table.to_pandas()
    elif not isinstance(table, pd.DataFrame):
        raise IoxhubError(f"{name}: expected a pandas DataFrame or a pyarrow Table, got {type(table).__name__}")
    _check(table.columns, required, name)
    return table.copy()


def codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """(int32 codes, dictionary) of a string-like column; null -> -1. Dictionary columns are reused."""
    if isinstance(column, pa.ChunkedArray):
        column = (column.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(column.type)
                  else column.combine_chunks())
    if pa.types.is_null(column.type):
        column = column.cast(pa.string())
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    dictionary = column.dictionary
    if not pa.types.is_string(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    idx = column.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    return idx, dictionary


def decode(idx: np.ndarray, dictionary: pa.Array) -> pa.Array:
    """Strings for codes from `codes` (-1 -> null)."""
    idx = np.asarray(idx)
    return pc.take(dictionary, pa.array(idx, pa.int32(), mask=idx < 0))


def _compact(combined: np.ndarray, size: int, limit: int) -> tuple[np.ndarray, int]:
    """Dense ids (in key order) for int64 keys in [0, size): a bincount when the range is small, else a hash."""
    if size <= limit:
        present = np.bincount(combined, minlength=size) > 0
        remap = np.cumsum(present) - 1
        return remap[combined], int(present.sum())
    ids, uniques = pd.factorize(combined)
    return ids.astype(np.int64, copy=False), len(uniques)


def group_ids(*keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense group ids (0..n-1) for rows keyed by several non-negative int arrays.

    Keys are combined into one int64 per row; whenever the combined range would exceed a few times the
    row count, it is compacted first (a bincount over the range, or a hash factorize for huge ranges),
    so a multi-column group-by costs a few linear passes and rarely a hash.
    """
    n = len(keys[0])
    limit = max(4 * n, 1 << 20)
    combined = np.zeros(n, dtype=np.int64)
    size = 1
    for key in keys:
        key = np.asarray(key, dtype=np.int64)
        span = int(key.max()) + 1 if n else 1
        if size * span > limit and size > 1:
            combined, size = _compact(combined, size, limit)
        combined = combined * span + key
        size *= span
    return _compact(combined, size, limit)


def latest_per_group(gid: np.ndarray, n_groups: int, order: np.ndarray, *tiebreaks: np.ndarray) -> np.ndarray:
    """Row index of the largest `order` value in each group (gid dense: every id has rows); ties go
    to the largest of each `tiebreaks` array in turn (no NaN), then to the last row."""
    candidates = None                                # None = every row (no gather on the first pass)
    for key in (order, *tiebreaks):
        g, k = (gid, key) if candidates is None else (gid[candidates], key[candidates])
        low = np.iinfo(key.dtype).min if key.dtype.kind in "iu" else -np.inf
        top = np.full(n_groups, low, dtype=key.dtype)
        np.maximum.at(top, g, k)
        hit = np.flatnonzero(k == top[g])
        candidates = hit if candidates is None else candidates[hit]
        if len(candidates) == n_groups:              # one candidate per group: no tie left
            break
    pick = np.full(n_groups, -1, dtype=np.int64)
    np.maximum.at(pick, gid[candidates], candidates)
    return pick


def string_rank(idx: np.ndarray, dictionary: pa.Array) -> np.ndarray:
    """For codes from `codes`, the rank of their string in sorted order (null -> -1)."""
    names = np.asarray(dictionary.to_pylist(), dtype=object)
    ranks = np.append(np.argsort(np.argsort(names, kind="stable")), -1)
    return ranks[idx]


def day_numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Dates or timestamps as int64 days since 1970-01-01 (nulls are not allowed)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if column.null_count:
        raise IoxhubError("date column has null values")
    if pa.types.is_timestamp(column.type):
        column = pc.cast(column, pa.date32())
    elif not pa.types.is_date32(column.type):
        column = column.cast(pa.date32())
    return column.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)


def epoch_ns(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamps as int64 nanoseconds (null -> the minimum int64, i.e. "oldest")."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ns"))
    column = column.cast(pa.timestamp("ns")).cast(pa.int64())
    return column.fill_null(np.iinfo(np.int64).min).to_numpy(zero_copy_only=False)
