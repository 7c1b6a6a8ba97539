"""Apply a complete, harmonized release to the harmonized zone: duplicates, revisions, history, catalog.

- Duplicates: rows of one release with the same series key and period (SERIES_KEY) are kept once (the
  last one the publisher sent).
- History: every release's rows are kept as they were, under harmonized/observation_history/.
- Revisions: the current state (harmonized/observations/org=/dataset=/year=/data.parquet) keeps, per
  key, the row of the newest release (published_at, then release id). Re-applying the same release (a
  rerun after a crash) rewrites the same rows: idempotent, nothing counted twice.
- Each year partition is rewritten in one PUT, so readers never see a half-written partition.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.catalog import Catalog
from ioxhub.ingest.observations import HARMONIZED_SCHEMA, SERIES_KEY
from ioxhub.storage import ObjectStore, harmonized_dataset_prefix, harmonized_key, history_key


@dataclass
class ApplyCounts:
    harmonized: int = 0      # rows of the release written (after duplicates)
    duplicates: int = 0      # rows dropped as duplicates inside the release
    revisions: int = 0       # current rows of older releases replaced by this one
    superseded: int = 0      # rows of this release already revised by a newer release (kept in history)
    years: list[int] = field(default_factory=list)


def dataset_name(org: str, dataset_id: str) -> str:
    return f"{org}.{dataset_id}"


def keep_last(table: pa.Table, keys: tuple[str, ...] = SERIES_KEY) -> pa.Table:
    """One row per key: the last in table order (a stable, vectorized group-by on the row position)."""
    if table.num_rows == 0:
        return table
    positioned = table.select(list(keys)).append_column("_pos", pa.array(np.arange(table.num_rows)))
    last = positioned.group_by(list(keys), use_threads=False).aggregate([("_pos", "max")])
    positions = pc.sort_indices(last["_pos_max"])
    return table.take(pc.take(last["_pos_max"], positions))


def merge_current(existing: pa.Table | None, new: pa.Table, release_id: str) -> tuple[pa.Table, int, int]:
    """Merge a release's rows of one partition into its current rows.

    Returns (current rows, revisions = older rows replaced by this release, superseded = rows of this
    release that lose against a newer release).
    """
    if existing is None or existing.num_rows == 0:
        return new, 0, 0
    existing = existing.select(HARMONIZED_SCHEMA.names).cast(HARMONIZED_SCHEMA)
    both = pa.concat_tables([existing, new])
    order = pc.sort_indices(both, sort_keys=[("published_at", "ascending"), ("release_id", "ascending")])
    ordered = both.take(order)
    merged = keep_last(ordered)
    winners = pc.is_in(merged["release_id"], value_set=pa.array([release_id]))
    new_kept = pc.sum(winners).as_py() or 0
    superseded = new.num_rows - new_kept
    # Existing rows not kept and not of this release were replaced by a newer row of this release.
    existing_other = pc.sum(pc.invert(pc.is_in(existing["release_id"], value_set=pa.array([release_id])))).as_py() or 0
    kept_other = merged.num_rows - new_kept
    revisions = existing_other - kept_other
    return merged, revisions, superseded


def apply_release(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, release_id: str,
                  rows: pa.Table, manifest: dict) -> ApplyCounts:
    """Write one complete release (its harmonized rows) to the harmonized zone and the catalog."""
    counts = ApplyCounts()
    deduped = keep_last(rows)
    counts.duplicates = rows.num_rows - deduped.num_rows
    counts.harmonized = deduped.num_rows
    store.put_parquet(history_key(org, dataset_id, release_id), deduped)

    name = dataset_name(org, dataset_id)
    entry = catalog.dataset(name) or {}
    partitions = dict(entry.get("partitions", {}))
    years = pc.year(deduped["period_start"])
    for year in sorted(pc.unique(years).to_pylist()):
        part = deduped.filter(pc.equal(years, year))
        key = harmonized_key(org, dataset_id, year)
        current, revisions, superseded = merge_current(store.read_parquet(key), part, release_id)
        counts.revisions += revisions
        counts.superseded += superseded
        current = current.sort_by([("indicator", "ascending"), ("ref_area", "ascending"), ("period", "ascending")])
        store.put_parquet(key, current)
        partitions[str(year)] = _partition_stats(current)
        counts.years.append(year)

    catalog.publish_snapshot(name, _dataset_entry(org, dataset_id, release_id, manifest, partitions, rows.schema),
                             harmonized_dataset_prefix(org, dataset_id))
    return counts


def _partition_stats(table: pa.Table) -> dict:
    return {
        "rows": table.num_rows,
        "countries": sorted(c for c in pc.unique(table["ref_area"]).to_pylist() if c),
        "indicators": sorted(pc.unique(table["indicator"]).to_pylist()),
        "freqs": sorted(pc.unique(table["freq"]).to_pylist()),
        "first_period": pc.min(table["period"]).as_py(),
        "last_period": pc.max(table["period"]).as_py(),
        "first_start": str(pc.min(table["period_start"]).as_py()),
        "last_end": str(pc.max(table["period_end"]).as_py()),
    }


def _dataset_entry(org: str, dataset_id: str, release_id: str, manifest: dict, partitions: dict,
                   schema: pa.Schema) -> dict:
    parts = partitions.values()
    return {
        "kind": "harmonized",
        "org": org,
        "dataset_id": dataset_id,
        "publishers": [org],
        "title": manifest.get("title"),
        "licence": manifest.get("licence"),
        "source_url": manifest.get("source_url"),
        "schema_version": manifest.get("schema_version"),
        "last_release": release_id,
        "rows": sum(p["rows"] for p in parts),
        "coverage": {
            "countries": sorted({c for p in parts for c in p["countries"]}),
            "indicators": sorted({i for p in parts for i in p["indicators"]}),
            "freqs": sorted({f for p in parts for f in p["freqs"]}),
            "first_period_start": min(p["first_start"] for p in parts),
            "last_period_end": max(p["last_end"] for p in parts),
        },
        "partitions": partitions,
        "columns": [f"{f.name}:{f.type}" for f in schema] + ["org:string (path)", "dataset:string (path)", "year:int (path)"],
    }
