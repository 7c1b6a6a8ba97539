"""Column plumbing shared by the harmonization rules: harmonize each distinct value once, then gather.

- `wire_column(strings, indexes)`: a chunk's string table and index column -> `pa.DictionaryArray`.
- `Codebook(fn, ...)`: one per rule, `fn` applied once per distinct text per process; `rows(column)` ->
  `Rows`, then `Rows.strings(field)` (dictionary<int32, string>) / `Rows.plain(field)` gather one field.
Why and how (the cost per observation is a gather, never a Python call): docs/harmonization.md.
"""
from __future__ import annotations

import threading
from typing import Callable, Generic, NamedTuple, Sequence, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = pa.Array | pa.ChunkedArray
DICT_STRING = pa.dictionary(pa.int32(), pa.string())
R = TypeVar("R", bound=tuple)


class Harmonized(NamedTuple):
    """A harmonized column and why values could not be harmonized.

    `value`: the harmonized values, null where the input was absent or could not be harmonized.
    `reason`: null where harmonized or absent, else the reason (e.g. "unknown-country").
    Rules with several outputs (HS level, period start/end) return their own NamedTuple with the same
    `reason` field and `invalid` property.
    """

    value: pa.Array
    reason: pa.Array

    @property
    def invalid(self) -> pa.BooleanArray:
        """True where the input was present but could not be harmonized."""
        return self.reason.is_valid()


def wire_column(strings: Sequence[str] | pa.Array, indexes: Sequence[int] | np.ndarray) -> pa.DictionaryArray:
    """Build a dictionary column from a chunk's string table and one int index column (-1 = absent)."""
    dictionary = strings if isinstance(strings, pa.Array) else pa.array(strings, pa.string())
    idx = np.asarray(indexes, dtype=np.int32)
    return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32(), mask=idx < 0), dictionary)


def split_unique(values: ArrayLike) -> tuple[pa.Array, pa.Array]:
    """Return (dictionary, indexes) for a string-like column; indexes are int32 and null where absent.

    A `DictionaryArray` is used as it is (its dictionary may hold unused or repeated entries: harmless);
    any other array is dictionary-encoded by Arrow's hash kernel.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(values.type) \
            else values.combine_chunks()
    if not pa.types.is_dictionary(values.type):
        if pa.types.is_null(values.type):
            values = values.cast(pa.string())
        values = pc.dictionary_encode(values)
    dictionary = values.dictionary
    if not (pa.types.is_string(dictionary.type) or pa.types.is_large_string(dictionary.type)):
        dictionary = dictionary.cast(pa.string())
    return dictionary, values.indices.cast(pa.int32())


class _State:
    """What a codebook has learnt: results by id, their string fields as codes, cached columns."""

    def __init__(self, codebook: Codebook):
        self.codebook = codebook
        self.ids: dict[str | None, int] = {}
        self.results: list = []
        self.codes: dict[str, dict[str, int]] = {f: {} for f in codebook.string_fields}  # string -> code
        self.code_lists: dict[str, list[int]] = {f: [] for f in codebook.string_fields}  # code per id
        self.columns: dict[str, tuple] = {}
        self.add(None)  # id 0: absent

    def add(self, text: str | None) -> int:
        result = self.codebook.fn(text)
        self.ids[text] = len(self.results)
        self.results.append(result)
        for f in self.codebook.string_fields:
            value, codes = getattr(result, f), self.codes[f]
            self.code_lists[f].append(-1 if value is None else codes.setdefault(value, len(codes)))
        self.columns = {}
        return self.ids[text]

    def column(self, field: str) -> tuple:
        column = self.columns.get(field)
        if column is None:
            with self.codebook.lock:
                if field in self.codebook.plain_fields:
                    column = (pa.array([getattr(r, field) for r in self.results], self.codebook.plain_fields[field]),)
                else:
                    column = (np.array(self.code_lists[field], np.int32),
                              pa.array(list(self.codes[field]), pa.string()))
                self.columns[field] = column
        return column


class Rows(NamedTuple):
    """The result id of each row of a column, and the codebook state the ids refer to."""

    ids: np.ndarray       # int32, one per row
    distinct: np.ndarray  # the distinct ids among them (a superset is fine): decides the fast paths
    state: _State

    def strings(self, field: str, null_where: np.ndarray | None = None) -> pa.DictionaryArray:
        """One string field for the rows, as dictionary<int32, string> (null also where `null_where`)."""
        codes, dictionary = self.state.column(field)
        nulls = codes[self.distinct] < 0
        if nulls.all():
            return pa.nulls(len(self.ids), DICT_STRING)
        rows = codes[self.ids]
        mask = rows < 0 if nulls.any() else None
        if null_where is not None and null_where.any():
            mask = null_where if mask is None else mask | null_where
        return pa.DictionaryArray.from_arrays(pa.array(rows, pa.int32(), mask=mask), dictionary)

    def plain(self, field: str) -> pa.Array:
        """One non-string field for the rows, as a plain array."""
        return pc.take(self.state.column(field)[0], pa.array(self.ids, pa.int32()))

    def numbers(self, field: str) -> np.ndarray:
        """One numeric field (without nulls) for the rows, as numpy."""
        return self.state.column(field)[0].to_numpy()[self.ids]


class Codebook(Generic[R]):
    """The results of one rule for every distinct text seen so far, kept as columns for gathers.

    `rows(values)` gives each row the id of its result: the rule's scalar function `fn` runs once per
    distinct text per process (id 0: absent rows), so a chunk costs one dict look-up per distinct value
    it uses plus numpy gathers; `Rows.strings(field)` / `Rows.plain(field)` expand one field of the
    results (a NamedTuple) to the rows. String fields come out as dictionary<int32, string> sharing one
    dictionary (the distinct harmonized strings) across chunks. Thread-safe; past `max_size` distinct
    texts it starts afresh (ids already handed out keep their state).
    """

    def __init__(self, fn: Callable[[str | None], R], strings: Sequence[str], plain: dict[str, pa.DataType],
                 max_size: int = 100_000):
        self.fn, self.string_fields, self.plain_fields = fn, tuple(strings), dict(plain)
        self.max_size = max_size
        self.lock = threading.Lock()
        self._state = _State(self)

    def reset(self) -> None:
        """Forget every result (the next chunk recomputes what it uses)."""
        with self.lock:
            self._state = _State(self)

    def rows(self, values: ArrayLike) -> Rows:
        """Result ids for the rows of a string or dictionary column (0 where absent)."""
        dictionary, indexes = split_unique(values)
        n = len(dictionary)
        idx = indexes.fill_null(n).to_numpy() if indexes.null_count else indexes.to_numpy()
        used_mask = np.zeros(n + 1, bool)
        used_mask[idx] = True
        used = np.flatnonzero(used_mask[:n])
        texts = (dictionary if len(used) == n else pc.take(dictionary, pa.array(used, pa.int64()))).to_pylist()
        with self.lock:
            if len(self._state.ids) > self.max_size:
                self._state = _State(self)
            state = self._state
            found = [state.ids.get(t, -1) for t in texts]
            if -1 in found:
                found = [i if i >= 0 else state.ids[t] if t in state.ids else state.add(t)
                         for i, t in zip(found, texts)]
        table = np.zeros(n + 1, np.int32)
        table[used] = found
        distinct = np.array(found + [0] if indexes.null_count else found, np.int32)
        return Rows(table[idx], distinct, state)
