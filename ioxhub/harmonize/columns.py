"""Column plumbing shared by the harmonization rules: harmonize the unique values once, then gather.

The wire format (schemas/dataset_chunk) is dictionary-encoded: a chunk carries a string table and int
index columns (-1 = absent). Every rule therefore works on the *unique* values of a column (a few
hundred per chunk) and expands the result to the observations with `pyarrow.compute.take`, so the cost
per observation is one gather, never a Python call.

- `wire_column(strings, indexes)`: the wire form -> `pa.DictionaryArray` (-1 becomes null).
- `split_unique(values)`: any string-like array -> (unique values, int32 indexes into them, null = absent).
- `Harmonized`: what every vectorized rule returns: the harmonized column(s) and a `reason` column,
  null where the value was harmonized or the input was absent, else the reason string.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = pa.Array | pa.ChunkedArray


class Harmonized(NamedTuple):
    """A harmonized column and why values could not be harmonized.

    `value`: the harmonized values, null where the input was absent or could not be harmonized.
    `reason`: null where harmonized or absent, else the reason (e.g. "unknown-country").
    Rules with several outputs (HS level, period start/end) return their own NamedTuple with the same
    `reason` field.
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


def gather(unique_result: pa.Array, indexes: pa.Array) -> pa.Array:
    """Expand a per-unique-value result to the observations (null index -> null)."""
    return pc.take(unique_result, indexes)


def reasons_array(reasons: Sequence[str | None]) -> pa.Array:
    """Per-unique-value reasons as a string array (null = no problem)."""
    return pa.array(reasons, pa.string())
