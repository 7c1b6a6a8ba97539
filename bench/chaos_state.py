"""What a hub holds, reduced to figures two hubs can be compared by (for bench/chaos.py).

`snapshot(store)`: each compared table's row count, order-independent checksum and row identities;
`compare(reference, other)`: what was lost, doubled or differs; `account(store, published)`: every
published event applied, quarantined or staged, and every ingest run reconciled. Method: docs/chaos.md.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field

import fastavro
import numpy as np
import pandas as pd
import pyarrow as pa

from ioxhub.catalog import Catalog
from ioxhub.ingest.markers import release_applied
from ioxhub.ingest.observations import SERIES_KEY
from ioxhub.ingest.policies import TABLES as INSTRUMENT_TABLES, read_instruments
from ioxhub.storage import ObjectStore
from ioxhub.table_files import read_rows
from ioxhub.tables import HARMONIZED, HISTORY, INSTRUMENTS_PREFIX, NAME, identifier_of, object_key, tables_for

# Columns whose values legitimately differ between two runs of the same workload: the producer's
# clock at publishing (the observations' published_at, the policy updates' produced_at) and what the
# curated tables derive from it (coverage: last_published_at; compendium: last_produced_at). Any
# other difference is a mismatch.
RUN_DEPENDENT = ("published_at", "produced_at", "last_published_at", "last_produced_at")

# Row identities: an observation is its dataset and series key (per release in the history).
KEYS = {
    "harmonized/observations": ("org", "dataset") + SERIES_KEY,
    "harmonized/observation_history": ("org", "dataset", "release_id") + SERIES_KEY,
    "harmonized/instruments/instrument_versions": ("event_id",),
}
OBSERVATION_TABLES = ("harmonized/observations", "harmonized/observation_history")
TABLES_PREFIX = "harmonized/tables/"        # the Iceberg tables' files: read through the tables


@dataclass
class TableState:
    rows: int
    checksum: str
    keys: pd.Series | None = None     # key hash -> count
    columns: dict[str, str] = field(default_factory=dict)   # per column checksum: names what differs


@dataclass
class Diff:
    lost: int = 0                     # observations of the reference missing
    duplicated: int = 0               # observations present more often than in the reference
    mismatches: list[str] = field(default_factory=list)


def row_hashes(table: pa.Table, columns: list[str] | tuple[str, ...] | None = None) -> np.ndarray:
    """One uint64 per row over `columns` (default: all but RUN_DEPENDENT), independent of row order,
    column order inside the file and dictionary encoding."""
    names = sorted(columns or [n for n in table.column_names if n not in RUN_DEPENDENT])
    frame = pd.DataFrame({name: _plain(table[name]) for name in names})
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(np.uint64) if len(frame) else np.zeros(0, np.uint64)


def _plain(column: pa.ChunkedArray) -> pd.Series:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return pd.Series([None if v is None else "\x1f".join(map(str, v)) for v in column.to_pylist()], dtype=object)
    series = column.to_pandas()
    return series.astype(object).where(series.notna(), None) if series.dtype == object else series


def _checksum(hashes: np.ndarray) -> str:
    return f"{int(hashes.sum(dtype=np.uint64)):016x}"      # wraps modulo 2**64: order-independent


def table_state(table: pa.Table, keys: tuple[str, ...] | None = None) -> TableState:
    counted = pd.Series(row_hashes(table, keys)).value_counts() if keys else None
    columns = {name: _checksum(row_hashes(table, [name])) for name in table.column_names}
    return TableState(table.num_rows, _checksum(row_hashes(table)), counted, columns)


def _with_path_keys(table: pa.Table, key: str) -> pa.Table:
    parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    for name in ("org", "dataset"):
        table = table.append_column(name, pa.array([parts[name]] * table.num_rows, pa.string()))
    return table


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables([t.cast(pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type)
                                               else f for f in t.schema])) for t in tables], promote_options="default")


def _dataset_tables(store: ObjectStore, catalog: Catalog) -> dict[str, list[pa.Table]]:
    """The current rows of every harmonized dataset's observations and history tables, with org and dataset."""
    groups: dict[str, list[pa.Table]] = {}
    for namespace, name in zip((HARMONIZED, HISTORY), OBSERVATION_TABLES):
        for table in catalog.tables.tables(namespace):
            dataset = table.properties.get(NAME, "")
            if dataset.startswith(INSTRUMENTS_PREFIX) or "." not in dataset:
                continue
            org, dataset_id = dataset.split(".", 1)
            for data_file in catalog.tables.data_files(table):
                rows = store.read_parquet(object_key(data_file.file_path, store.settings.bucket))
                rows = rows.append_column("org", pa.array([org] * rows.num_rows, pa.string()))
                groups.setdefault(name, []).append(rows.append_column("dataset", pa.array([dataset_id] * rows.num_rows,
                                                                                          pa.string())))
    return groups


def snapshot(store: ObjectStore) -> dict[str, TableState]:
    """Every compared table of the hub behind `store`, by name."""
    catalog = Catalog(store)
    tables = tables_for(store.settings)
    groups = _dataset_tables(store, catalog)
    for key in sorted(store.list("harmonized/")) + sorted(store.list("quarantine/observations/")):
        if not key.endswith(".parquet") or key.startswith(TABLES_PREFIX):
            continue
        table = store.read_parquet(key)
        if key.startswith("quarantine/observations/"):
            name, table = "quarantine/observations", _with_path_keys(table, key)
        else:
            name = key.removesuffix(".parquet")
        groups.setdefault(name, []).append(table)
    for name in INSTRUMENT_TABLES:
        if (rows := read_instruments(store.settings, name, store)) is not None:
            groups[f"harmonized/instruments/{name}"] = [rows]
    for entry in catalog.datasets():
        if entry.get("kind") == "curated":
            groups[f"curated/{entry['name']}"] = [read_rows(store, tables.load(*identifier_of(entry["name"])))]
    return {name: table_state(_concat(tables), KEYS.get(name)) for name, tables in sorted(groups.items())}


def compare(reference: dict[str, TableState], other: dict[str, TableState]) -> Diff:
    diff = Diff()
    for name in sorted(set(reference) | set(other)):
        ref, got = reference.get(name), other.get(name)
        if ref is None or got is None:
            diff.mismatches.append(f"{name}: {'missing' if got is None else 'not in the reference'}")
            continue
        if (ref.rows, ref.checksum) != (got.rows, got.checksum):
            differ = [c for c in sorted(set(ref.columns) | set(got.columns))
                      if c not in RUN_DEPENDENT and ref.columns.get(c) != got.columns.get(c)]
            diff.mismatches.append(f"{name}: {got.rows} rows, checksum {got.checksum} (reference {ref.rows} "
                                   f"rows, {ref.checksum}); columns differing: {', '.join(differ)}")
        if name in OBSERVATION_TABLES and ref.keys is not None and got.keys is not None:
            both = pd.concat([ref.keys, got.keys], axis=1, keys=["ref", "got"]).fillna(0)
            delta = both["got"] - both["ref"]
            diff.lost += int(-delta[delta < 0].sum())
            diff.duplicated += int(delta[delta > 0].sum())
    return diff


@dataclass
class Accounting:
    published: int = 0                # events sent by the producers
    applied: int = 0                  # events of releases marked applied / policy updates in instrument_versions
    quarantined: int = 0              # whole events in quarantine/events/
    staged: int = 0                   # events waiting in staging/
    runs: int = 0                     # ingest runs recorded in the catalog
    problems: list[str] = field(default_factory=list)

    @property
    def unaccounted(self) -> int:
        return self.published - self.applied - self.quarantined - self.staged


def account(store: ObjectStore, published: list[dict]) -> Accounting:
    """`published`: one dict per published file (kind, org, dataset_id, release_id, event_ids)."""
    acc = Accounting()
    catalog = Catalog(store)
    quarantined = _quarantined_event_ids(store)
    versions = read_instruments(store.settings, "instrument_versions", store)
    policy_events = set(versions["event_id"].to_pylist()) if versions is not None else set()
    for item in published:
        events = item["event_ids"]
        acc.published += len(events)
        if item["kind"] == "dataset":
            marker = release_applied(catalog, item["org"], item["dataset_id"], item["release_id"])
            if marker is not None and marker.get("chunks") == len(events) - 1:
                acc.applied += len(events)
                continue
            staged = sum(1 for _ in store.list(f"staging/org={item['org']}/dataset={item['dataset_id']}/"
                                                 f"release={item['release_id']}/"))
            acc.staged += staged
            acc.quarantined += sum(1 for e in events if e in quarantined)
            acc.problems.append(f"release {item['release_id']} of {item['org']}/{item['dataset_id']} not applied "
                                f"({staged} events staged)" if marker is None else
                                f"release {item['release_id']}: marker says {marker.get('chunks')} chunks, "
                                f"{len(events) - 1} published")
        else:
            for event in events:
                if event in policy_events:
                    acc.applied += 1
                elif event in quarantined:
                    acc.quarantined += 1
    for key in store.list("catalog/runs/"):
        if not key.startswith("catalog/runs/ingest_") or key.endswith("/latest.json"):
            continue
        acc.runs += 1
        e = store.get_json(key)["events"]
        if e["consumed"] != e["applied"] + e["staged"] + e["duplicate"] + e["quarantined"]:
            acc.problems.append(f"{key}: events do not reconcile: {e}")
    if acc.unaccounted:
        acc.problems.append(f"{acc.unaccounted} of {acc.published} published events neither applied, "
                            f"quarantined nor staged")
    return acc


def _quarantined_event_ids(store: ObjectStore) -> set[str]:
    """Event ids of whole events refused (dead letters without observations)."""
    ids = set()
    for key in store.list("quarantine/events/"):
        for letter in fastavro.reader(io.BytesIO(store.get_bytes(key))):
            if not letter.get("observations") and letter.get("event_id"):
                ids.add(letter["event_id"])
    return ids
