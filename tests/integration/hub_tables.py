"""Reading a harmonized dataset's tables in tests, through pyiceberg (never through object keys)."""
from __future__ import annotations

import pyarrow as pa
from pyiceberg.expressions import EqualTo

from ioxhub.settings import Settings, get_settings
from ioxhub.tables import HARMONIZED, HISTORY, Tables, table_name, tables_for


def tables(settings: Settings | None = None) -> Tables:
    return tables_for(settings or get_settings())     # each load reads the catalog: other processes' commits seen


def observations(org: str, dataset_id: str, settings: Settings | None = None):
    return tables(settings).load(HARMONIZED, table_name(org, dataset_id))


def history(org: str, dataset_id: str, settings: Settings | None = None):
    return tables(settings).load(HISTORY, table_name(org, dataset_id))


def current_rows(org: str, dataset_id: str, snapshot_id: int | None = None,
                 settings: Settings | None = None) -> pa.Table | None:
    """The observations of the current snapshot (or `snapshot_id`); None when the table has no data."""
    table = observations(org, dataset_id, settings)
    if table is None or table.current_snapshot() is None:
        return None
    return table.scan(snapshot_id=snapshot_id).to_arrow()


def history_rows(org: str, dataset_id: str, release_id: str | None = None,
                 settings: Settings | None = None) -> pa.Table | None:
    table = history(org, dataset_id, settings)
    if table is None or table.current_snapshot() is None:
        return None
    return table.scan(row_filter=EqualTo("release_id", release_id)).to_arrow() if release_id else table.scan().to_arrow()


def rows_count(org: str, dataset_id: str, settings: Settings | None = None) -> int:
    rows = current_rows(org, dataset_id, settings=settings)
    return rows.num_rows if rows is not None else 0


def snapshot_ids(table) -> list[int]:
    return [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)] if table else []
