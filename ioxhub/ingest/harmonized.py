"""Apply a complete, harmonized release to the harmonized zone: duplicates, revisions, history, catalog.

`apply_release(store, catalog, org, dataset_id, release_id, spill, manifest, workdir)` keeps repeated rows
of the release once, lets the newest release win each series key and period (published_at, then release
id), keeps the release's rows under harmonized/observation_history/, rewrites each year partition in one
PUT (re-applying a release rewrites the same rows) and publishes the dataset's catalog entry. A year is
merged one key range at a time: docs/architecture.md, "Bounded memory in the ingest".
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ioxhub.catalog import Catalog
from ioxhub.harmonize.columns import DICT_STRING
from ioxhub.ingest.background import Background
from ioxhub.ingest.observations import HARMONIZED_SCHEMA, SERIES_KEY, with_all_columns
from ioxhub.ingest.spill import Key, ReleaseSpill, _sortable, ranked, row_keys, take_rows
from ioxhub.storage import ObjectStore, harmonized_dataset_prefix, harmonized_key, history_key

SLICE_ROWS = 128 * 1024      # rows (new + current) per key range; also the row group size
STRING_COLUMNS = [f.name for f in HARMONIZED_SCHEMA if pa.types.is_string(f.type)]
# Parquet dictionary pages where values repeat (not for the observation values themselves).
DICTIONARY_COLUMNS = STRING_COLUMNS + ["period_start", "period_end", "published_at"]
INTERNAL_SCHEMA = pa.schema([pa.field(f.name, DICT_STRING if pa.types.is_string(f.type) else f.type)
                             for f in HARMONIZED_SCHEMA])


@dataclass
class ApplyCounts:
    harmonized: int = 0      # rows of the release written (after duplicates)
    duplicates: int = 0      # rows dropped as duplicates inside the release
    revisions: int = 0       # current rows of older releases replaced by this one
    superseded: int = 0      # rows of this release already revised by a newer release (kept in history)
    years: list[int] = field(default_factory=list)


def dataset_name(org: str, dataset_id: str) -> str:
    return f"{org}.{dataset_id}"


def internal(table: pa.Table) -> pa.Table:
    """HARMONIZED_SCHEMA's columns with dictionary-encoded strings, one chunk per column."""
    table = with_all_columns(table).select(HARMONIZED_SCHEMA.names)
    if not table.schema.equals(INTERNAL_SCHEMA):
        table = table.cast(INTERNAL_SCHEMA)
    return table.unify_dictionaries().combine_chunks()


def last_positions(table: pa.Table, keys: tuple[str, ...] = SERIES_KEY) -> np.ndarray:
    """The positions of the last row of each key, ascending."""
    n = table.num_rows
    combined = np.zeros(n, np.int64)
    span = 1
    for name in keys:
        if table[name].null_count == n:      # a key column without values tells no row apart
            continue
        ranks, values = ranked(table[name])
        span *= len(values)
        if span >= 1 << 62:      # too many distinct keys for one int64: let Arrow group
            return _last_grouped(table, keys)
        combined = combined * len(values) + ranks
    repeated = pd.Series(combined).duplicated(keep="last").to_numpy()   # a hash table: no sort needed
    return np.flatnonzero(~repeated)


def keep_last(table: pa.Table, keys: tuple[str, ...] = SERIES_KEY) -> pa.Table:
    """One row per key: the last in table order (rows kept in table order)."""
    if table.num_rows == 0:
        return table
    positions = last_positions(table, keys)
    return table if len(positions) == table.num_rows else take_rows(table, positions)


def deduplicated_sorted(table: pa.Table) -> pa.Table:
    """`sort_rows(keep_last(table))` with one gather."""
    positions = last_positions(table)
    ranks = tuple(ranked(table[c])[0][positions] for c in ("period", "ref_area", "indicator"))
    return take_rows(table, positions[np.lexsort(ranks)])


def _last_grouped(table: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    positioned = table.select(list(keys)).append_column("_pos", pa.array(np.arange(table.num_rows)))
    last = positioned.group_by(list(keys), use_threads=False).aggregate([("_pos", "max")])
    return np.sort(last["_pos_max"].to_numpy())


def merge_current(existing: pa.Table | None, new: pa.Table, release_id: str) -> tuple[pa.Table, int, int]:
    """Merge a release's rows of one key range into its current rows.

    Returns (current rows, revisions = older rows replaced by this release, superseded = rows of this
    release that lose against a newer release).
    """
    if existing is None or existing.num_rows == 0:
        return new, 0, 0
    both = internal(pa.concat_tables([existing, new]))
    releases, values = ranked(both["release_id"])
    published = both["published_at"].cast(pa.int64()).to_numpy()
    order = np.lexsort((releases, published))           # by published_at, then release id; stable
    merged = keep_last(take_rows(both, order))
    mine = values.index(release_id)
    merged_releases, merged_values = ranked(merged["release_id"])
    new_kept = int(np.count_nonzero(merged_releases == merged_values.index(release_id))) \
        if release_id in merged_values else 0
    superseded = new.num_rows - new_kept
    # Existing rows not kept and not of this release were replaced by a newer row of this release.
    existing_other = int(np.count_nonzero(releases[:existing.num_rows] != mine))
    kept_other = merged.num_rows - new_kept
    return merged, existing_other - kept_other, superseded


def sort_rows(table: pa.Table) -> pa.Table:
    """Sorted by (indicator, ref_area, period), stable."""
    if table.num_rows < 2:
        return table
    order = np.lexsort(tuple(ranked(table[c])[0] for c in ("period", "ref_area", "indicator")))
    return take_rows(table, order)


class _ParquetFile:
    """A Parquet file written on local disk, row group by row group."""

    def __init__(self, path: Path):
        self.path = path
        self.writer = pq.ParquetWriter(str(path), INTERNAL_SCHEMA, compression="zstd", write_statistics=True,
                                       store_schema=False, use_dictionary=DICTIONARY_COLUMNS)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(internal(table), row_group_size=SLICE_ROWS)
            self.rows += table.num_rows

    def upload(self, store: ObjectStore, key: str) -> None:
        self.writer.close()
        store.put_file(key, self.path, "application/vnd.apache.parquet")
        self.path.unlink()


class _CurrentPartition:
    """The current rows of one year partition, read key range by key range."""

    def __init__(self, store: ObjectStore, key: str):
        self.file = pq.ParquetFile(store.open(key), read_dictionary=STRING_COLUMNS)
        meta = self.file.metadata
        self.group_starts = np.cumsum([0] + [meta.row_group(i).num_rows for i in range(meta.num_row_groups)])
        keys = self.file.read(columns=["indicator", "ref_area"])
        codes, self.keys = row_keys(keys)
        self.codes = codes
        used, counts = np.unique(codes, return_counts=True)
        self.counts = Counter({self.keys[int(c)]: int(n) for c, n in zip(used, counts)})
        self._cache: dict[int, pa.Table] = {}

    def rows(self, lo: Key, hi: Key) -> pa.Table | None:
        inside = np.array([_sortable(lo) <= _sortable(k) <= _sortable(hi) for k in self.keys], bool)
        positions = np.flatnonzero(inside[self.codes])
        if len(positions) == 0:
            return None
        found = np.searchsorted(self.group_starts, positions, side="right") - 1
        groups = np.arange(found.min(), found.max() + 1)     # contiguous (one group or a few when sorted)
        self._cache = {g: self._cache[g] if g in self._cache else self.file.read_row_group(int(g)) for g in groups}
        table = pa.concat_tables([internal(self._cache[g]) for g in groups]).unify_dictionaries().combine_chunks()
        return table.take(pa.array(positions - self.group_starts[groups[0]]))


class _Stats:
    """Catalog statistics of a partition, accumulated range by range."""

    def __init__(self):
        self.rows = 0
        self.countries: set = set()
        self.other_areas: set = set()            # aggregates, regions, historic and subnational areas
        self.unrecognized: Counter = Counter()   # unit as published -> rows whose unit_status is unrecognized
        self.indicators: set = set()
        self.freqs: set = set()
        self.periods: list = []
        self.starts: list = []
        self.ends: list = []

    def add(self, table: pa.Table) -> None:
        self.rows += table.num_rows
        others = _where(table, "area_type", lambda t: t not in (None, "country"))
        if others is None:
            self.countries |= {c for c in _distinct(table["ref_area"]) if c}
        else:
            self.countries |= {c for c in _distinct(table["ref_area"].filter(pc.invert(others))) if c}
            self.other_areas |= {c for c in _distinct(table["ref_area"].filter(others)) if c}
        unrecognized = _where(table, "unit_status", lambda s: s == "unrecognized")
        if unrecognized is not None:
            counts = table["unit"].filter(unrecognized).cast(pa.string()).value_counts()
            for entry in counts.to_pylist():
                self.unrecognized[entry["values"]] += entry["counts"]
        self.indicators |= set(_distinct(table["indicator"]))
        self.freqs |= set(_distinct(table["freq"]))
        periods = [p for p in _distinct(table["period"]) if p is not None]
        self.periods += [min(periods), max(periods)] if periods else []
        self.starts.append(pc.min(table["period_start"]).as_py())
        self.ends.append(pc.max(table["period_end"]).as_py())

    def result(self) -> dict:
        starts = [s for s in self.starts if s is not None]
        ends = [e for e in self.ends if e is not None]
        return {
            "rows": self.rows,
            "countries": sorted(self.countries),
            "other_areas": sorted(self.other_areas),
            "unrecognized_units": dict(sorted(self.unrecognized.items())),
            "indicators": sorted(self.indicators, key=lambda v: (v is None, v or "")),
            "freqs": sorted(self.freqs, key=lambda v: (v is None, v or "")),
            "first_period": min(self.periods) if self.periods else None,
            "last_period": max(self.periods) if self.periods else None,
            "first_start": str(min(starts) if starts else None),
            "last_end": str(max(ends) if ends else None),
        }


def _where(table: pa.Table, name: str, wanted) -> pa.Array | None:
    """A row mask of the string column `name` whose values satisfy `wanted`, or None when no row does
    (decided on the column's dictionary: no per-row work in the common case)."""
    column = table[name]
    if pa.types.is_dictionary(column.type):
        pieces = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        if not any(wanted(v) for piece in pieces for v in piece.dictionary.to_pylist()):
            return None           # the common case: decided without touching the rows
    if isinstance(column, pa.ChunkedArray):
        column = column.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(column.type) \
            else column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    hits = [i for i, v in enumerate(column.dictionary.to_pylist()) if wanted(v)]
    if not hits:
        return None
    mask = pc.fill_null(pc.is_in(column.indices, value_set=pa.array(hits, column.indices.type)), False)
    return mask if pc.any(mask).as_py() else None


def _distinct(column) -> list:
    """The distinct values of a string column (None included when there are nulls)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.unify_dictionaries().combine_chunks() if pa.types.is_dictionary(column.type) \
            else column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    indices = column.indices
    used = np.flatnonzero(np.bincount(indices.fill_null(0).to_numpy() if indices.null_count else indices.to_numpy(),
                                      minlength=len(column.dictionary)))
    values = set(column.dictionary.take(pa.array(used)).to_pylist()) if len(used) else set()
    return list(values | ({None} if indices.null_count else set()))


def key_ranges(counts: Counter) -> list[tuple[Key, Key]]:
    """Consecutive keys grouped into ranges of at most SLICE_ROWS rows (a bigger key is a range alone)."""
    ranges, first, rows = [], None, 0
    keys = sorted(counts, key=_sortable)
    for i, key in enumerate(keys):
        if first is not None and rows + counts[key] > SLICE_ROWS:
            ranges.append((first, keys[i - 1]))
            first, rows = None, 0
        if first is None:
            first = key
        rows += counts[key]
    if first is not None:
        ranges.append((first, keys[-1]))
    return ranges


def apply_release(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, release_id: str,
                  spill: ReleaseSpill, manifest: dict, workdir: Path) -> ApplyCounts:
    """Write one complete release (its harmonized rows, spilled) to the harmonized zone and the catalog."""
    counts = ApplyCounts()
    name = dataset_name(org, dataset_id)
    entry = catalog.dataset(name) or {}
    partitions = dict(entry.get("partitions", {}))
    present = set(store.list(harmonized_dataset_prefix(org, dataset_id)))
    history = _ParquetFile(workdir / "history.parquet")
    # Parquet encoding and uploads overlap with the next key range: the partitions in one thread, the
    # history in another (they hold the same rows for a new dataset: two encodings, in parallel).
    writes, history_writes = Background("write"), Background("history")
    try:
        for year in spill.years():
            key = harmonized_key(org, dataset_id, year)
            current = _CurrentPartition(store, key) if key in present else None
            wanted = spill.key_counts(year) + (current.counts if current else Counter())
            out, stats = _ParquetFile(workdir / f"year-{year}.parquet"), _Stats()
            ranges = key_ranges(wanted)
            for (lo, hi), new in zip(ranges, spill.rows_by_range(year, ranges)):
                old = current.rows(lo, hi) if current else None
                if new is None:
                    merged = old
                else:
                    deduped = deduplicated_sorted(new)
                    counts.duplicates += new.num_rows - deduped.num_rows
                    counts.harmonized += deduped.num_rows
                    history_writes.submit(history.write, deduped)
                    merged, revisions, superseded = merge_current(old, deduped, release_id)
                    counts.revisions += revisions
                    counts.superseded += superseded
                if old is not None:
                    merged = sort_rows(merged)
                writes.submit(out.write, merged)
                stats.add(merged)
            writes.submit(out.upload, store, key)
            partitions[str(year)] = stats.result()
            counts.years.append(year)
        history_writes.submit(history.upload, store, history_key(org, dataset_id, release_id))
        writes.wait()
        history_writes.wait()
    finally:
        writes.close()
        history_writes.close()

    catalog.publish_snapshot(name, _dataset_entry(org, dataset_id, release_id, manifest, partitions, HARMONIZED_SCHEMA),
                             harmonized_dataset_prefix(org, dataset_id))
    return counts


def _unrecognized_units(parts) -> dict[str, int]:
    """Unit codes kept as published (unit_status unrecognized) -> current rows, over the partitions."""
    total: Counter = Counter()
    for p in parts:
        total.update(p.get("unrecognized_units", {}))
    return dict(sorted(total.items()))


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
            "other_areas": sorted({a for p in parts for a in p.get("other_areas", ())}),
            "indicators": sorted({i for p in parts for i in p["indicators"]}),
            "freqs": sorted({f for p in parts for f in p["freqs"]}),
            "first_period_start": min(p["first_start"] for p in parts),
            "last_period_end": max(p["last_end"] for p in parts),
        },
        "unrecognized_units": _unrecognized_units(parts),
        "partitions": partitions,
        "columns": [f"{f.name}:{f.type}" for f in schema] + ["org:string (path)", "dataset:string (path)", "year:int (path)"],
    }
