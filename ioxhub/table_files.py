"""Whole-content data files of the hub's Iceberg tables (the curated datasets, the instrument tables, compaction).

`write_data_file` uploads one Parquet object under the table's `data/` with a unique name; `replace_content`
makes a table's content one new file in one commit (its schema evolved to the file's, properties and
summary in the same commit); `live_files` lists a snapshot's data files; `read_rows` reads a table's rows
back as they were written. `iceberg_ready` gives columns Iceberg v2 can hold.
Used by: docs/evidence.md (curated datasets), docs/maintenance.md (compaction).
"""
from __future__ import annotations

import uuid

import pyarrow as pa
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

from ioxhub.storage import ObjectStore
from ioxhub.tables import Tables, object_key

# Old metadata JSON goes with the commits that supersede it (pyiceberg keeps this many previous versions).
METADATA_CLEANUP = {"write.metadata.delete-after-commit.enabled": "true",
                    "write.metadata.previous-versions-max": "20"}
ROW_GROUP_ROWS = 64 * 1024


def iceberg_ready(rows: pa.Table) -> pa.Table:
    """`rows` with types Iceberg v2 has, also inside lists and structs: type null (a column or list with no
    value at all) becomes string, nanosecond timestamps microseconds, dictionaries their value type."""
    schema = pa.schema([field.with_type(_concrete(field.type)) for field in rows.schema])
    return rows if schema == rows.schema else rows.cast(schema, safe=False)


def _concrete(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_null(kind):
        return pa.string()
    if pa.types.is_dictionary(kind):
        return _concrete(kind.value_type)
    if pa.types.is_timestamp(kind) and kind.unit == "ns":
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        value = kind.value_field.with_type(_concrete(kind.value_type))
        return pa.list_(value) if pa.types.is_list(kind) else pa.large_list(value)
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_concrete(f.type)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(_concrete(kind.key_type), kind.item_field.with_type(_concrete(kind.item_type)))
    return kind


def write_data_file(store: ObjectStore, table: Table, rows: pa.Table, tag: str = "",
                    row_group_size: int = ROW_GROUP_ROWS) -> tuple[str, int]:
    """Upload `rows` as a new Parquet object under the table's data/ (never an existing name); returns its
    s3:// path and size. Not part of the table until a commit adds it (else an orphan for `ioxhub maintain`)."""
    name = f"{tag}-{uuid.uuid4().hex}" if tag else uuid.uuid4().hex
    path = f"{table.location().rstrip('/')}/data/{name}.parquet"
    size = store.put_parquet(object_key(path, store.bucket), rows, row_group_size=row_group_size)
    return path, size


def replace_content(tables: Tables, store: ObjectStore, table: Table, rows: pa.Table, *, summary: dict[str, str],
                    properties: dict[str, str] | None = None, tag: str = "",
                    row_group_size: int = ROW_GROUP_ROWS) -> tuple[Snapshot, int]:
    """One commit making `rows` (Iceberg-ready) the table's whole content: a new file added, every current
    data file removed, the schema evolved to `rows`' columns. Returns the new snapshot and the file's size."""
    path, size = write_data_file(store, table, rows, tag, row_group_size)
    snapshot = tables.commit_files(table, add=[path], remove=live_files(table), summary=summary,
                                   properties=properties, schema=rows.schema)
    return snapshot, size


def live_files(table: Table, snapshot: Snapshot | None = None) -> list[DataFile]:
    """Every data file of `snapshot` (default: current), without the pruning of a scan (which leaves out
    files of 0 rows: a replace or a compaction must remove those too)."""
    snapshot = snapshot or table.current_snapshot()
    if snapshot is None:
        return []
    return [entry.data_file for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)]


def read_rows(store: ObjectStore, table: Table | None, snapshot: Snapshot | None = None) -> pa.Table | None:
    """The rows of `snapshot` (default: current) with the column types the writer gave them (the Parquet
    files read as written), or None for a missing table or one without data."""
    if table is None:
        return None
    parts = [store.read_parquet(object_key(f.file_path, store.bucket)) for f in live_files(table, snapshot)]
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
