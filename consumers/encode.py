"""Rows as text, batch by batch: the csv and jsonl encodings `ioxhub pull` writes and the HTTP API streams
(one implementation, so a download equals the pull byte for byte).

`csv_chunks(tables, schema)` (pyarrow's CSV writer), `jsonl_chunks(tables)` (JSON Lines via pandas): each
yields the bytes of one table after another. The format: docs/api.md "Formats".
"""
from __future__ import annotations

import re
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.csv as pacsv

_PLAIN_NAME = re.compile(r'[^",\r\n]*')


def _options(schema: pa.Schema, header: bool) -> pacsv.WriteOptions:
    # Column names are written bare unless one needs quoting; values as pyarrow's writer prints them
    # (strings always quoted, numbers without a forced `.0`, null as an empty field).
    plain = all(_PLAIN_NAME.fullmatch(name) for name in schema.names)
    return pacsv.WriteOptions(include_header=header, quoting_header="none" if plain else "needed")


def _csv_bytes(table: pa.Table, header: bool) -> bytes:
    sink = pa.BufferOutputStream()
    pacsv.write_csv(table, sink, _options(table.schema, header))
    return sink.getvalue().to_pybytes()


def csv_chunks(tables: Iterable[pa.Table], schema: pa.Schema | None) -> Iterator[bytes]:
    """CSV: the header (from the first table, or `schema` when there is no row), then each table's rows."""
    header = True
    for table in tables:
        if not table.num_rows and not header:
            continue
        yield _csv_bytes(table, header)
        header = False
    if header and schema is not None:              # no row: the header alone
        yield _csv_bytes(schema.empty_table(), True)


def jsonl_chunks(tables: Iterable[pa.Table]) -> Iterator[bytes]:
    """JSON Lines: one object a row (dates and times ISO 8601). pandas' writer: measured as fast as
    pyarrow -> Python objects -> msgspec on these tables (docs/api.md "Load")."""
    for table in tables:
        if not table.num_rows:
            continue
        text = table.to_pandas().to_json(orient="records", lines=True, date_format="iso")
        yield (text if text.endswith("\n") else text + "\n").encode()
