"""A pull as a stream of bytes in one of the download formats (the HTTP API's rows endpoint).

`stream_pull(plan, store, fmt, offset, limit, next_cursor)` yields the encoded rows batch by batch as
`consumers.access.iter_pull` reads them, so a large download is never held whole in memory. Formats: csv
and jsonl as `ioxhub pull` writes them (consumers/encode.py), json (an object with the rows and the
paging cursor), parquet (one file written row group by row group). SDMX: consumers/sdmx_out.py.
"""
from __future__ import annotations

import io
import json
import logging
from typing import Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from consumers.access import PullPlan, iter_pull
from consumers.encode import csv_chunks, jsonl_chunks
from ioxhub.storage import ObjectStore

log = logging.getLogger(__name__)
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
               "json": "application/json", "parquet": "application/vnd.apache.parquet"}


class _Drain(io.RawIOBase):
    """A write-only sink whose bytes are taken out as they come (for the Parquet writer)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.chunks = b"".join(self.chunks), []
        return out


def _csv(tables: Iterator[pa.Table], plan: PullPlan) -> Iterator[bytes]:
    return csv_chunks(tables, plan.schema)


def _jsonl(tables: Iterator[pa.Table], plan: PullPlan) -> Iterator[bytes]:
    return jsonl_chunks(tables)


def _parquet(tables: Iterator[pa.Table], plan: PullPlan) -> Iterator[bytes]:
    sink = _Drain()
    schema = plan.schema if plan.schema is not None else pa.schema([])
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for table in tables:
            writer.write_table(table.cast(schema))
            yield sink.take()
    yield sink.take()


def _json(tables: Iterator[pa.Table], plan: PullPlan, next_cursor: Callable[[int], str | None]) -> Iterator[bytes]:
    head = {"dataset": plan.dataset, "snapshot": plan.snapshot, "snapshot_id": plan.snapshot_id, "columns": plan.columns}
    yield json.dumps(head)[:-1].encode() + b', "rows": ['
    count = 0
    for table in tables:
        text = table.to_pandas().to_json(orient="records", date_format="iso")[1:-1]
        if text:
            yield (b"," if count else b"") + text.encode()
        count += table.num_rows
    yield f'], "count": {count}, "next_cursor": {json.dumps(next_cursor(count))}}}'.encode()


def stream_pull(plan: PullPlan, store: ObjectStore, fmt: str, offset: int = 0, limit: int | None = None,
                next_cursor: Callable[[int], str | None] = lambda count: None) -> Iterator[bytes]:
    """The rows of `plan` (after `offset`, at most `limit`) encoded as `fmt`, lazily; `next_cursor(count)`
    gives the json format's cursor of the next page once the rows of this one are counted."""
    tables = iter_pull(plan, store, offset, limit)
    if fmt == "json":
        return _logged(_json(tables, plan, next_cursor), plan)
    return _logged({"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}[fmt](tables, plan), plan)


def _logged(chunks: Iterator[bytes], plan: PullPlan) -> Iterator[bytes]:
    """The chunks, then one log line: what the pull returned and read (pushdown at work, for operators)."""
    yield from chunks
    log.info("web pull: %s snapshot %d: %d rows, read %d of %d bytes", plan.dataset, plan.snapshot, plan.rows,
             plan.bytes_read, plan.dataset_bytes)
