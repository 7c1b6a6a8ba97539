"""Test data as the hub's writers leave it: an Arrow table committed as a dataset's Iceberg snapshot.

`commit_snapshot(store, name, table, entry, partition_by)` writes one Parquet object per partition value
under the table's location (unique names) and replaces the table's files in one commit, with the dataset's
name and entry in the table's properties (the conventions of docs/tables.md).
"""
from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.storage import ObjectStore
from ioxhub.tables import ENTRY, NAME, RELEASE, identifier_of, object_key, tables_for


def commit_snapshot(store: ObjectStore, name: str, table: pa.Table, entry: dict, partition_by=(),
                    row_group_size: int = 64 * 1024, release_id: str | None = None) -> int:
    """Commit `table` as the new snapshot of dataset `name` (all older files replaced); `partition_by`:
    (column, "identity" | "year") pairs, one file per partition. Returns the snapshot's sequence number."""
    tables = tables_for(store.settings)
    namespace, table_name = identifier_of(name)
    iceberg = tables.create(namespace, table_name, table.schema, partition_by)
    parts = [table]
    if partition_by:
        column, transform = partition_by[0]
        keys = pc.year(table[column]) if transform == "year" else table[column]
        parts = [table.filter(pc.equal(keys, value)) for value in pc.unique(keys).to_pylist()]
    paths = []
    for part in parts:
        path = f"{iceberg.location()}/data/test-{uuid.uuid4().hex}.parquet"
        store.put_parquet(object_key(path, store.settings.bucket), part, row_group_size=row_group_size)
        paths.append(path)
    old = tables.data_files(iceberg)
    summary = {RELEASE: release_id} if release_id else {}
    snapshot = tables.commit_files(iceberg, add=paths, remove=old, summary=summary,
                                   properties={NAME: name, ENTRY: json.dumps({**entry, "rows": table.num_rows})},
                                   schema=table.schema)
    return snapshot.sequence_number
