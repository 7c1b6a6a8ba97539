"""Apply a complete, harmonized release to its dataset's Iceberg tables: duplicates, revisions, history.

`apply_release(store, catalog, org, dataset_id, release_id, spill, manifest, workdir, marker=)` keeps
repeated rows of the release once, lets the newest release win each series key and period (published_at,
then release id; a winning ACTION D row deletes its key), writes each touched year of the observations
table as a new file and commits them in ONE snapshot (summary: release, run, counts; the entry in the
table's properties), then appends the release's rows (D rows included, `deleted` true) to the history
table: that commit is the release's marker (`ioxhub.ingest.markers`). `mark_release`: the marker of a
release without rows. A year is merged one key range at a time: docs/architecture.md, "Bounded memory in
the ingest"."""
from __future__ import annotations

import json
import logging
import re
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.expressions import EqualTo
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from ioxhub.catalog import Catalog
from ioxhub.harmonize import hs
from ioxhub.harmonize.columns import DICT_STRING
from ioxhub.harmonize.dimensions import parse_dimensions
from ioxhub.ingest.background import Background
from ioxhub.ingest.observations import DELETED, HARMONIZED_SCHEMA, SERIES_KEY, with_all_columns
from ioxhub.ingest.spill import Key, ReleaseSpill, _sortable, ranked, row_keys, take_rows, uniform
from ioxhub.storage import ObjectStore
from ioxhub.settings import Settings
from ioxhub.tables import (ENTRY, HARMONIZED, HISTORY, NAME, RELEASE, Tables, Written, entry_of, object_key, table_name,
                           tables_for)

log = logging.getLogger("ioxhub.ingest")
EPOCH_YEAR = 1970
RUN = "ioxhub.run_id"

SLICE_ROWS = 128 * 1024      # rows (new + current) per key range; also the row group size
STRING_COLUMNS = [f.name for f in HARMONIZED_SCHEMA if pa.types.is_string(f.type)]
# Parquet dictionary pages where values repeat (not for the observation values themselves).
DICTIONARY_COLUMNS = STRING_COLUMNS + ["period_start", "period_end", "published_at"]
INTERNAL_SCHEMA = pa.schema([pa.field(f.name, DICT_STRING if pa.types.is_string(f.type) else f.type)
                             for f in HARMONIZED_SCHEMA])
HISTORY_SCHEMA = INTERNAL_SCHEMA.append(pa.field(DELETED, pa.bool_()))     # a release's rows, D rows included
HISTORY_TABLE_SCHEMA = HARMONIZED_SCHEMA.append(pa.field(DELETED, pa.bool_()))   # its table's (plain strings)
# What a D row without a unit matches: its key in every unit (SDMX deletions name the dimensions only).
DELETE_KEY = tuple(k for k in SERIES_KEY if k != "unit")


@dataclass
class ApplyCounts:
    harmonized: int = 0      # rows of the release written (after duplicates)
    duplicates: int = 0      # rows dropped as duplicates inside the release
    revisions: int = 0       # current rows of older releases replaced by this one
    deleted: int = 0         # current rows of older releases deleted by this one's ACTION D rows
    superseded: int = 0      # rows of this release already revised by a newer release (kept in history)
    years: list[int] = field(default_factory=list)


def dataset_name(org: str, dataset_id: str) -> str:
    return f"{org}.{dataset_id}"


def internal(table: pa.Table, schema: pa.Schema = INTERNAL_SCHEMA) -> pa.Table:
    """`schema`'s columns (INTERNAL_SCHEMA: HARMONIZED_SCHEMA's with dictionary-encoded strings; or
    HISTORY_SCHEMA), one chunk per column; columns a table from before they existed lacks are
    added (`with_all_columns`); one without `deleted` gets it false."""
    table = with_all_columns(table)
    if DELETED in schema.names and DELETED not in table.column_names:
        table = table.append_column(DELETED, pa.array(np.zeros(table.num_rows, bool)))
    table = table.select(schema.names)
    if not table.schema.equals(schema):
        table = table.cast(schema)
    return table.unify_dictionaries().combine_chunks()


def key_codes(table: pa.Table, keys: tuple[str, ...] = SERIES_KEY) -> np.ndarray | None:
    """One int64 per row, equal for rows with equal keys; None when the keys have too many combinations."""
    combined = np.zeros(table.num_rows, np.int64)
    span = 1
    for name in keys:
        if uniform(table[name]):      # a key column with one value (or none) tells no row apart
            continue
        ranks, values = ranked(table[name])
        span *= len(values)
        if span >= 1 << 62:
            return None
        combined = combined * len(values) + ranks
    return combined


def last_positions(table: pa.Table, keys: tuple[str, ...] = SERIES_KEY) -> np.ndarray:
    """The positions of the last row of each key, ascending."""
    combined = key_codes(table, keys)
    if combined is None:         # too many distinct keys for one int64: let Arrow group
        return _last_grouped(table, keys)
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


def merge_current(existing: pa.Table | None, new: pa.Table, release_id: str) -> tuple[pa.Table, int, int, int]:
    """Merge a release's rows of one key range into its current rows.

    Returns (current rows, revisions = older rows replaced by this release, superseded = rows of this
    release that lose against a newer release, deleted = older rows deleted by this release's D rows).
    """
    if DELETED in new.column_names:
        if pc.any(new[DELETED]).as_py():
            return _merge_deleting(existing, new, release_id)
        new = new.drop_columns([DELETED])
    if existing is None or existing.num_rows == 0:
        return new, 0, 0, 0
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
    return merged, existing_other - kept_other, superseded, 0


def _merge_deleting(existing: pa.Table | None, new: pa.Table, release_id: str) -> tuple[pa.Table, int, int, int]:
    """`merge_current` for a release with ACTION D rows: a D row that wins its key (newest, as any row)
    deletes it; one without a unit deletes its key in every unit, but only rows older than itself."""
    n_old = existing.num_rows if existing is not None else 0
    both = internal(pa.concat_tables([internal(t, HISTORY_SCHEMA) for t in (existing, new) if t is not None]),
                    HISTORY_SCHEMA)
    releases, values = ranked(both["release_id"])
    published = both["published_at"].cast(pa.int64()).to_numpy()
    order = np.lexsort((releases, published))           # by published_at, then release id; stable
    both = both.take(pa.array(order))
    mine = releases[order] == values.index(release_id)
    from_existing = order < n_old
    position = np.arange(both.num_rows)
    deleting = both[DELETED].to_numpy(zero_copy_only=False)
    winner = _group_max(both, SERIES_KEY, position)                      # each row's key's last row
    unitless = deleting & both["unit"].is_null().to_numpy(zero_copy_only=False)
    latest_unitless = _group_max(both, DELETE_KEY, np.where(unitless, position, -1))
    deleted_row = deleting[winner] | (position < latest_unitless)
    keep = (position == winner) & ~deleted_row
    lost_other = from_existing & ~mine & ~keep
    deleted = int(np.count_nonzero(lost_other & ~keep[winner]))     # its key is gone, not revised
    superseded = int(np.count_nonzero(~from_existing & ~deleting & ~keep & ~mine[winner]))
    current = both.filter(pa.array(keep)).drop_columns([DELETED])
    return current, int(np.count_nonzero(lost_other)) - deleted, superseded, deleted


def _group_max(table: pa.Table, keys: tuple[str, ...], values: np.ndarray) -> np.ndarray:
    """For each row, the largest of `values` over the rows with its key."""
    codes = key_codes(table, keys)
    if codes is None:
        codes = pd.MultiIndex.from_arrays([ranked(table[k])[0] for k in keys]).factorize()[0]
    return pd.Series(values).groupby(codes).transform("max").to_numpy()

def sort_rows(table: pa.Table) -> pa.Table:
    """Sorted by (indicator, ref_area, period), stable."""
    if table.num_rows < 2:
        return table
    order = np.lexsort(tuple(ranked(table[c])[0] for c in ("period", "ref_area", "indicator")))
    return take_rows(table, order)


class LocalParquet:
    """A Parquet file written on local disk, row group by row group."""

    def __init__(self, path: Path, schema: pa.Schema = INTERNAL_SCHEMA):
        self.path = path
        self.schema = schema
        self.writer = pq.ParquetWriter(str(path), schema, compression="zstd", write_statistics=True,
                                       store_schema=False, use_dictionary=DICTIONARY_COLUMNS)
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            self.writer.write_table(internal(table, self.schema), row_group_size=SLICE_ROWS)
            self.rows += table.num_rows

    def upload(self, store: ObjectStore, key: str) -> Written:
        """Upload to `key` (of the hub bucket); returns what a table commit needs of the file."""
        self.writer.close()
        written = Written(f"s3://{store.settings.bucket}/{key}", pq.read_metadata(self.path), self.path.stat().st_size)
        store.put_file(key, self.path, "application/vnd.apache.parquet")
        self.path.unlink()
        return written


class _CurrentPartition:
    """The current rows of one year partition, read key range by key range."""

    def __init__(self, store: ObjectStore, key: str):
        try:
            self.file = pq.ParquetFile(store.open(key), read_dictionary=STRING_COLUMNS)
        except KeyError:        # written before the `dimensions` column (`internal` adds it to each read)
            self.file = pq.ParquetFile(store.open(key), read_dictionary=[c for c in STRING_COLUMNS if c != "dimensions"])
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


class _CurrentFiles:
    """The current rows of one year partition held in any number of files (one, normally)."""

    def __init__(self, store: ObjectStore, keys: list[str]):
        self.parts = [_CurrentPartition(store, key) for key in keys]
        self.counts = sum((p.counts for p in self.parts), Counter())

    def rows(self, lo: Key, hi: Key) -> pa.Table | None:
        found = [t for p in self.parts if (t := p.rows(lo, hi)) is not None]
        if len(found) < 2:
            return found[0] if found else None
        return pa.concat_tables(found).unify_dictionaries().combine_chunks()


class _Stats:
    """Catalog statistics of a partition, accumulated range by range."""

    def __init__(self):
        self.rows = 0
        self.countries: set = set()
        self.other_areas: set = set()            # aggregates, regions, historic and subnational areas
        self.unrecognized: Counter = Counter()   # unit as published -> rows whose unit_status is unrecognized
        self.indicators: set = set()
        self.freqs: set = set()
        self.dimensions: set = set()
        self.commodities = False
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
        self.dimensions |= {name for text in _distinct(table["dimensions"]) for name in parse_dimensions(text)}
        self.commodities = self.commodities or table["commodity"].null_count < table.num_rows
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
            "dimensions": sorted(self.dimensions),
            "commodities": self.commodities,
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


def observations_table(tables: Tables, org: str, dataset_id: str) -> Table:
    """The dataset's observations table (created on first use): partitioned by year(period_start)."""
    return _table(tables, HARMONIZED, org, dataset_id, HARMONIZED_SCHEMA, ("period_start", "year"))


def history_table(tables: Tables, org: str, dataset_id: str) -> Table:
    """The dataset's history table (created on first use): every applied release's rows, by release_id."""
    return _table(tables, HISTORY, org, dataset_id, HISTORY_TABLE_SCHEMA, ("release_id", "identity"))


def _table(tables: Tables, namespace: str, org: str, dataset_id: str, schema: pa.Schema, partition: tuple) -> Table:
    # Loaded first: creating an existing table would still write a metadata file.
    name = table_name(org, dataset_id)
    return tables.load(namespace, name) or tables.create(namespace, name, schema, [partition],
                                                         {NAME: dataset_name(org, dataset_id)})


def observations_location(settings: Settings, org: str, dataset_id: str) -> str:
    """The bucket prefix of the dataset's observations table (its lineage name)."""
    return object_key(tables_for(settings).location(HARMONIZED, table_name(org, dataset_id)), settings.bucket)


def year_files(tables: Tables, table: Table) -> dict[int, list[DataFile]]:
    """The current data files of the observations table by calendar year (Iceberg's year transform counts
    from 1970)."""
    by_year: dict[int, list[DataFile]] = {}
    for data_file in tables.data_files(table):
        by_year.setdefault(EPOCH_YEAR + data_file.partition[0], []).append(data_file)
    return by_year


def data_path(location: str, year: int, release_id: str) -> str:
    """A new, unique data file path of a year partition of the table at `location` (an older snapshot's
    file is never overwritten)."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", release_id)
    return f"{location}/data/period_start_year={year}/{tag}-{uuid.uuid4().hex}.parquet"


def history_path(location: str, release_id: str) -> str:
    tag = re.sub(r"[^A-Za-z0-9_.-]", "_", release_id)
    return f"{location}/data/release_id={tag}/{tag}-{uuid.uuid4().hex}.parquet"


def summary_of(marker: dict, release_id: str, run_id: str | None) -> dict[str, str]:
    """A commit's snapshot summary: the release, the run, the marker's counts (as strings)."""
    return {RELEASE: release_id, **({RUN: run_id} if run_id else {}),
            **{f"ioxhub.{k}": str(v) for k, v in marker.items() if v is not None}}


def apply_release(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, release_id: str,
                  spill: ReleaseSpill, manifest: dict, workdir: Path, marker: dict | None = None,
                  run_id: str | None = None, half_applied: dict | None = None,
                  replace_history: bool = False) -> ApplyCounts:
    """Write one complete release (its harmonized rows, spilled) to the dataset's tables: one commit of
    the observations table (every touched year's file replaced, summary: the release, run and `marker`
    counts with this apply's; the entry in the table's properties), then one of its history table.

    `half_applied`: the summary of this release's observations commit when a crash came before its
    history commit: only the history is written (the observations hold the release already; applying it
    again would count its revisions twice). `replace_history`: the release's history files are replaced
    (replay), not added to."""
    tables = catalog.tables
    counts = ApplyCounts()
    name = dataset_name(org, dataset_id)
    observations = None if half_applied else tables.load(HARMONIZED, table_name(org, dataset_id))
    partitions = dict(entry_of(observations).get("partitions", {})) if observations is not None else {}
    current_files = year_files(tables, observations) if observations is not None else {}
    history = LocalParquet(workdir / "history.parquet", HISTORY_SCHEMA)
    added, removed = [], []
    # Parquet encoding and uploads overlap with the next key range: the partitions in one thread, the
    # history in another (they hold the same rows for a new dataset: two encodings, in parallel); the
    # tables a first release creates are created meanwhile in a third.
    writes, history_writes = Background("write"), Background("history")
    creating = ThreadPoolExecutor(1, thread_name_prefix="ioxhub-tables")
    made = creating.submit(_tables_of, tables, org, dataset_id, observations, not half_applied)
    location = tables.location(HARMONIZED, table_name(org, dataset_id))
    try:
        for year in spill.years():
            old_files = current_files.get(year, [])
            current = _CurrentFiles(store, [object_key(f.file_path, tables.settings.bucket) for f in old_files])
            wanted = spill.key_counts(year) + current.counts
            ranges = key_ranges(wanted)
            counts.years.append(year)
            if half_applied:        # the history only
                for new in spill.rows_by_range(year, ranges):
                    deduped = deduplicated_sorted(new)
                    counts.duplicates += new.num_rows - deduped.num_rows
                    counts.harmonized += deduped.num_rows
                    history_writes.submit(history.write, deduped)
                continue
            out, stats = LocalParquet(workdir / f"year-{year}.parquet"), _Stats()
            for (lo, hi), new in zip(ranges, spill.rows_by_range(year, ranges)):
                old = current.rows(lo, hi)
                if new is None:
                    merged = old
                else:
                    deduped = deduplicated_sorted(new)
                    counts.duplicates += new.num_rows - deduped.num_rows
                    counts.harmonized += deduped.num_rows
                    history_writes.submit(history.write, deduped)
                    merged, revisions, superseded, deleted = merge_current(old, deduped, release_id)
                    counts.revisions += revisions
                    counts.superseded += superseded
                    counts.deleted += deleted
                if old is not None:
                    merged = sort_rows(merged)
                writes.submit(out.write, merged)
                stats.add(merged)
            path = data_path(location, year, release_id)
            writes.submit(_upload_into, added, out, store, object_key(path, tables.settings.bucket))
            removed += old_files
            partitions[str(year)] = stats.result()
        history_file = history_path(tables.location(HISTORY, table_name(org, dataset_id)), release_id)
        history_written: list[Written] = []
        history_writes.submit(_upload_into, history_written, history, store, object_key(history_file, tables.settings.bucket))
        writes.wait()
        history_writes.wait()
        observations, histories = made.result()
    finally:
        writes.close()
        history_writes.close()
        creating.shutdown()

    if half_applied:
        summary = {**{k: v for k, v in half_applied.items() if k.startswith("ioxhub.")}, **({RUN: run_id} if run_id else {})}
        counts.revisions, counts.deleted = int(half_applied.get("ioxhub.revisions", 0)), int(half_applied.get("ioxhub.deleted", 0))
        log.warning("ingest: release %s of %s was in the observations table but not in its history (a crash "
                    "between the two commits): history completed", release_id, name)
    else:
        summary = summary_of({**(marker or {}), "harmonized": counts.harmonized, "duplicates": counts.duplicates,
                              "revisions": counts.revisions, "deleted": counts.deleted}, release_id, run_id)
        entry = _dataset_entry(org, dataset_id, release_id, manifest, partitions, HARMONIZED_SCHEMA)
        tables.commit_files(observations, add=added, remove=removed, summary=summary,
                            properties={NAME: name, ENTRY: json.dumps(entry)})
    old_history = tables.data_files(histories, row_filter=EqualTo("release_id", release_id)) if replace_history else []
    tables.commit_files(histories, add=history_written, remove=old_history, summary=summary)
    return counts


def _tables_of(tables: Tables, org: str, dataset_id: str, observations: Table | None,
               with_observations: bool) -> tuple[Table | None, Table]:
    """The dataset's observations table (`observations`, or created) and history table (loaded or created)."""
    if with_observations and observations is None:
        observations = observations_table(tables, org, dataset_id)
    return observations, history_table(tables, org, dataset_id)


def _upload_into(written: list, out: LocalParquet, store: ObjectStore, key: str) -> None:
    written.append(out.upload(store, key))


def mark_release(catalog: Catalog, org: str, dataset_id: str, release_id: str, marker: dict,
                 run_id: str | None = None, replace_history: bool = False) -> None:
    """The marker of a release without rows to apply (all refused): a history commit without files
    (`replace_history`: removing the release's files, a replay that now refuses every row)."""
    tables = catalog.tables
    histories = history_table(tables, org, dataset_id)
    old_history = tables.data_files(histories, row_filter=EqualTo("release_id", release_id)) if replace_history else []
    tables.commit_files(histories, remove=old_history,
                        summary=summary_of({**marker, "harmonized": 0, "duplicates": 0, "revisions": 0, "deleted": 0},
                                           release_id, run_id))


def _unrecognized_units(parts) -> dict[str, int]:
    """Unit codes kept as published (unit_status unrecognized) -> current rows, over the partitions."""
    total: Counter = Counter()
    for p in parts:
        total.update(p.get("unrecognized_units", {}))
    return dict(sorted(total.items()))


def _dataset_entry(org: str, dataset_id: str, release_id: str, manifest: dict, partitions: dict,
                   schema: pa.Schema) -> dict:
    parts = partitions.values()
    classification = manifest.get("commodity_classification")
    has_hs = any(p.get("commodities") for p in parts)
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
            "dimensions": sorted({d for p in parts for d in p.get("dimensions", ())}),
            "first_period_start": min(p["first_start"] for p in parts),
            "last_period_end": max(p["last_end"] for p in parts),
        },
        "unrecognized_units": _unrecognized_units(parts),
        # The HS edition of `commodity` (of the last release) and whether its codes were checked against
        # that edition's list (only HS 2022's is shipped); another classification is named as published
        # (its codes are the dimension COMMODITY); null without commodity codes.
        "commodity_classification": classification if classification and not classification.upper().startswith("HS")
        else (classification or hs.DEFAULT_EDITION) if has_hs else None,
        "hs_validated": hs.validated(classification) if has_hs else None,
        "partitions": partitions,
        "columns": [f"{f.name}:{f.type}" for f in schema] + ["org:string (path)", "dataset:string (path)", "year:int (path)"],
    }
