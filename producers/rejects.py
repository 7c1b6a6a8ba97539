"""Rows refused before sending: a columnar table (file, line, field, value, reason) and its CSV file.

Rejects are kept as Arrow tables, not Python objects per row: a badly broken file can reject millions
of rows, and the report must not cost more than the publishing it replaces. The CSV written next to the
input (or at `--rejects PATH`) has the header `file,line,field,value,reason`.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ioxhub.errors import IoxhubError

SCHEMA = pa.schema([
    ("file", pa.string()),
    ("line", pa.int64()),
    ("field", pa.string()),
    ("value", pa.string()),
    ("reason", pa.string()),
])
MAX_VALUE_CHARS = 200


def make(file: str, lines: np.ndarray | Sequence[int], field: str, values: pa.Array | Sequence[str | None],
         reason: str | pa.Array) -> pa.Table:
    """A rejects table for some rows of one file: one field, one reason (or one reason per row)."""
    n = len(lines)
    values = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    values = pc.utf8_slice_codeunits(values, 0, MAX_VALUE_CHARS)
    reasons = reason if isinstance(reason, pa.Array) else pa.array(np.full(n, reason, dtype=object), pa.string())
    return pa.Table.from_arrays([
        pa.array(np.full(n, file, dtype=object), pa.string()),
        pa.array(np.asarray(lines, dtype=np.int64)),
        pa.array(np.full(n, field, dtype=object), pa.string()),
        values,
        reasons,
    ], schema=SCHEMA)


class RejectsWriter:
    """Appends rejects tables to one CSV file, opened on the first reject (no empty file otherwise).

    Also keeps counts by reason and the first few rejects for the closing summary. A rejects file left
    at `path` by an earlier run is removed at once, so the file on disk always describes this run.
    """

    def __init__(self, path: Path, keep_examples: int = 5):
        self.path = path
        self.count = 0
        self.rows = 0                     # distinct rejected rows (a row may fail several fields)
        self.by_reason: Counter[str] = Counter()
        self.examples: list[dict] = []
        self._keep = keep_examples
        self._writer: pacsv.CSVWriter | None = None
        self._sink = None
        path.unlink(missing_ok=True)

    def write(self, table: pa.Table, rows: int | None = None) -> None:
        if table.num_rows == 0:
            return
        if self._writer is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._sink = pa.OSFile(str(self.path), "wb")
            except OSError as exc:
                raise IoxhubError(f"cannot write the rejects file {self.path}: {exc}") from None
            self._writer = pacsv.CSVWriter(self._sink, SCHEMA)
        self._writer.write_table(table)
        self.count += table.num_rows
        self.rows += table.num_rows if rows is None else rows
        self.by_reason.update(dict(zip(*[c.to_pylist() for c in pc.value_counts(table["reason"]).flatten()])))
        if len(self.examples) < self._keep:
            self.examples.extend(table.slice(0, self._keep - len(self.examples)).to_pylist())

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def __enter__(self) -> "RejectsWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
