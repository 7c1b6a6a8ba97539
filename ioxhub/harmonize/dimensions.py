"""Extra series-key dimensions -> one canonical text per observation (the harmonized `dimensions` column).

`dimensions_column(strings, columns, n)`: a chunk's dimension columns (name, string-table indexes, -1 =
absent) -> a dictionary<int32, string> array of `NAME=VALUE|NAME=VALUE` texts, names sorted, absent
values left out, "" when there are none; `parse_dimensions(text)` is the inverse. Each distinct
combination is formatted once (numpy finds them). Why a text and not a map: docs/harmonization.md.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

_ESCAPES = (("%", "%25"), ("|", "%7C"), ("=", "%3D"))


def escape(text: str) -> str:
    """A name or value with the separators percent-encoded (`%`, `|`, `=`)."""
    for char, code in _ESCAPES:
        text = text.replace(char, code)
    return text


def unescape(text: str) -> str:
    for char, code in reversed(_ESCAPES):
        text = text.replace(code, char)
    return text


def format_dimensions(pairs: dict[str, str | None]) -> str:
    """The canonical text of one observation's dimensions."""
    return "|".join(f"{escape(k)}={escape(v)}" for k, v in sorted(pairs.items()) if v is not None)


def parse_dimensions(text: str | None) -> dict[str, str]:
    """`NAME=VALUE|...` -> {NAME: VALUE}."""
    if not text:
        return {}
    return dict(tuple(map(unescape, part.split("=", 1))) for part in text.split("|"))


def dimensions_column(strings: Sequence[str] | pa.Array, columns: Sequence[tuple[str, np.ndarray]], n: int
                      ) -> pa.DictionaryArray:
    """The canonical dimensions text of each of `n` rows, dictionary-encoded."""
    if not columns:
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([""], pa.string()))
    columns = sorted(columns, key=lambda c: c[0])
    combined = np.zeros(n, np.int64)
    span = 1
    locals_ = []
    for _, indexes in columns:
        used, local = np.unique(np.asarray(indexes, np.int64), return_inverse=True)
        locals_.append(local)
        span *= len(used)
        if span >= 1 << 62:
            break
        combined = combined * len(used) + local
    if span >= 1 << 62:     # too many combinations for one int64 code
        _, first, inverse = np.unique(np.stack(locals_, axis=1), axis=0, return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    table = strings.to_pylist() if isinstance(strings, pa.Array) else list(strings)
    texts = []
    for row in first.tolist():
        pairs = {name: (table[i] if (i := int(indexes[row])) >= 0 else None) for name, indexes in columns}
        texts.append(format_dimensions(pairs))
    return pa.DictionaryArray.from_arrays(pa.array(inverse.reshape(-1).astype(np.int32)), pa.array(texts, pa.string()))
