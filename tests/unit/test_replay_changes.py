"""The row comparison replay uses to tell a changed release from an unchanged one."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from ioxhub.ingest.observations import HARMONIZED_SCHEMA
from ioxhub.ingest.replay import row_changes


def rows(*specs) -> pa.Table:
    base = {"release_id": "r", "schema_version": "dataset_chunk/v1", "indicator": "I", "counterpart_area": None,
            "commodity": None, "freq": "A", "period_start": dt.date(2024, 1, 1), "period_end": dt.date(2024, 12, 31),
            "obs_status": None, "published_at": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)}
    return pa.Table.from_pylist([{**base, "ref_area": a, "period": "2024", "value": v, "unit": u} for a, v, u in specs],
                                schema=HARMONIZED_SCHEMA)


def test_added_changed_removed_by_series_key():
    old = rows(("FRA", 1.0, "KG"), ("DEU", 2.0, "KG"), ("ITA", None, "KG"), ("ESP", 4.0, "KG"))
    new = rows(("FRA", 1.0, "KG"), ("DEU", 2000.0, "KG"), ("ITA", None, "KG"), ("PRT", 5.0, "KG"))
    assert row_changes(old, new) == {"added": 1, "changed": 1, "removed": 1}


def test_same_rows_with_null_keys_are_unchanged():
    table = rows(("FRA", 1.0, "KG"), ("DEU", float("nan"), "KG"))
    assert row_changes(table, table.slice(0)) == {"added": 0, "changed": 0, "removed": 0}
    assert row_changes(table, rows()) == {"added": 0, "changed": 0, "removed": 2}
