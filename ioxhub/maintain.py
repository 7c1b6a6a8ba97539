"""Table maintenance (`ioxhub maintain`, DAG maintain_tables): every Iceberg table of the hub kept lean.

`maintain(settings)` visits each table and, per table: compacts each partition holding several data files
into one file (one commit, summary `ioxhub.maintenance=compact`), expires snapshots older than
IOXHUB_SNAPSHOT_RETENTION_DAYS except the last IOXHUB_SNAPSHOT_KEEP, and deletes the objects under the
table's location that no kept snapshot or metadata file references and that are older than
IOXHUB_ORPHAN_GRACE_HOURS. Harmonized tables are maintained under their ingest lease. Returns counts per
table; a commit conflict is retried once, then reported for the table. Why our own code: docs/maintenance.md.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import pyarrow as pa
from pyiceberg.exceptions import CommitFailedException
from pyiceberg.table import Table

from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.ingest.lease import holding
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore
from ioxhub.table_files import METADATA_CLEANUP, live_files, write_data_file
from ioxhub.tables import CURATED, HARMONIZED, HISTORY, Tables, object_key, tables_for

log = logging.getLogger("ioxhub.maintain")
DAG_ID = "maintain_tables"
COMPACT = {"ioxhub.maintenance": "compact"}
INSTRUMENT_TABLES = ("instrument_versions", "adoptions", "instruments")


@dataclass
class TableCounts:
    table: str
    partitions_compacted: int = 0
    files_compacted: int = 0          # data files replaced by the compacted ones
    snapshots_expired: int = 0
    snapshots_kept: int = 0
    orphans_removed: int = 0
    orphans_fresh: int = 0            # unreferenced but younger than the grace: left for a later run
    problem: str | None = None


class UnknownTable(IoxhubError):
    """`maintain` was asked for a table the catalog does not have."""


def maintain(settings: Settings | None = None, *, only: Iterable[str] = (), run_id: str = "manual",
             now: dt.datetime | None = None) -> dict:
    """Maintain every table of the catalog, or those of `only` ("namespace.table" names, as `ioxhub
    datasets` shows them); see the module docstring. The run is recorded as maintain_tables."""
    started = time.monotonic()
    settings = settings or get_settings()
    store, tables = ObjectStore(settings), tables_for(settings)
    now = now or dt.datetime.now(dt.timezone.utc)
    every = {_name(t): t for ns in (HARMONIZED, HISTORY, CURATED) for t in tables.tables(ns)}
    wanted = set(only) or set(every)
    if unknown := sorted(wanted - set(every)):
        raise UnknownTable(f"no table {', '.join(unknown)} in the catalog (tables are named namespace.table, "
                           f"e.g. {next(iter(sorted(every)), 'curated.indicator_panel_annual')})")
    chosen = [t for name, t in sorted(every.items()) if name in wanted]
    groups: list[tuple[str | None, list[Table]]] = [
        ("datasets", [t for t in chosen if t.name()[-2] in (HARMONIZED, HISTORY) and not _instrument(t)]),
        ("policies", [t for t in chosen if _instrument(t)]),
        (None, [t for t in chosen if t.name()[-2] == CURATED]),   # written by derive_evidence, one run at a time
    ]
    results: list[TableCounts] = []
    for lease_kind, group in groups:
        if not group:
            continue
        if lease_kind is None:
            results += [_maintain_table(tables, store, t, settings, now, run_id, lambda: None) for t in group]
            continue
        try:
            with holding(store, lease_kind, f"maintain {run_id}", settings.ingest_lease_seconds,
                         settings.lock_wait_seconds) as lease:
                results += [_maintain_table(tables, store, t, settings, now, run_id, lease.renew) for t in group]
        except IoxhubError as exc:      # the lease held by a long ingest run, or lost to another run
            done = {r.table for r in results}
            results += [TableCounts(_name(t), problem=str(exc)) for t in group if _name(t) not in done]
    summary = {"run_id": run_id, "tables": [asdict(r) for r in results],
               "totals": {k: sum(getattr(r, k) for r in results) for k in
                          ("partitions_compacted", "files_compacted", "snapshots_expired", "orphans_removed", "orphans_fresh")},
               "problems": sum(1 for r in results if r.problem),
               "settings": {"snapshot_retention_days": settings.snapshot_retention_days,
                            "snapshot_keep": settings.snapshot_keep, "orphan_grace_hours": settings.orphan_grace_hours},
               "seconds": round(time.monotonic() - started, 3)}
    Catalog(store, tables).record_run(DAG_ID, run_id, summary)
    log.info("maintain: %s", summary["totals"], extra={"run_id": run_id})
    return summary


def _name(table: Table) -> str:
    return ".".join(table.name()[-2:])


def _instrument(table: Table) -> bool:
    return table.name()[-2] == HARMONIZED and table.name()[-1] in INSTRUMENT_TABLES


def _maintain_table(tables: Tables, store: ObjectStore, table: Table, settings: Settings, now: dt.datetime,
                    run_id: str, renew: Callable[[], None]) -> TableCounts:
    counts = TableCounts(_name(table))
    problems = []
    steps = (("compact", lambda t: _compact(tables, store, t, run_id, counts, renew)),
             ("expire", lambda t: _expire(t, settings, now, counts, renew)))
    for step, run in steps:
        try:
            _retry_once(tables, table, run)
        except CommitFailedException as exc:
            problems.append(f"{step}: commit conflict twice ({exc}); left for the next run")
        except IoxhubError as exc:     # storage refused or unreachable, the lease lost: this table is left
            problems.append(f"{step}: {exc}")
    if problems:       # a table another writer keeps changing: its orphans wait for a quieter run
        counts.problem = "; ".join(problems)
        return counts
    try:
        _remove_orphans(store, tables.load(*table.name()[-2:]), settings, now, counts)
    except IoxhubError as exc:
        counts.problem = f"orphans: {exc}"
    return counts


def _retry_once(tables: Tables, table: Table, step: Callable[[Table], None]) -> None:
    """Run `step` on the table as loaded now; after a commit conflict, once more on a fresh load."""
    try:
        step(tables.load(*table.name()[-2:]))
    except CommitFailedException:
        step(tables.load(*table.name()[-2:]))


def _compact(tables: Tables, store: ObjectStore, table: Table, run_id: str, counts: TableCounts,
             renew: Callable[[], None]) -> None:
    """Each partition with several current data files rewritten as one (rows identical), all in one commit;
    the table's metadata cleanup properties set when missing."""
    missing = {k: v for k, v in METADATA_CLEANUP.items() if table.properties.get(k) != v}
    if missing:
        with table.transaction() as tx:
            tx.set_properties(missing)
        table = tables.load(*table.name()[-2:])
    by_partition = defaultdict(list)
    for data_file in live_files(table):
        by_partition[(data_file.spec_id, str(data_file.partition))].append(data_file)
    crowded = [files for files in by_partition.values() if len(files) > 1]
    if not crowded:
        return
    added, removed = [], []
    for files in crowded:
        parts = [store.read_parquet(object_key(f.file_path, store.bucket)) for f in files]
        rows = pa.concat_tables([p for p in parts if p is not None], promote_options="permissive")
        added.append(write_data_file(store, table, rows, tag="compact")[0])
        removed += files
    renew()
    tables.commit_files(table, add=added, remove=removed, summary={**COMPACT, "ioxhub.run_id": run_id})
    counts.partitions_compacted, counts.files_compacted = len(crowded), len(removed)


def _expire(table: Table, settings: Settings, now: dt.datetime, counts: TableCounts, renew: Callable[[], None]) -> None:
    """Expire the snapshots older than the retention, never the current one nor the last `snapshot_keep`."""
    snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)
    current = table.current_snapshot()
    keep = {s.snapshot_id for s in snapshots[-settings.snapshot_keep:]} | ({current.snapshot_id} if current else set())
    cutoff = (now - dt.timedelta(days=settings.snapshot_retention_days)).timestamp() * 1000
    expired = [s.snapshot_id for s in snapshots if s.snapshot_id not in keep and s.timestamp_ms < cutoff]
    if expired:
        renew()
        table.maintenance.expire_snapshots().by_ids(expired).commit()
    counts.snapshots_expired = len(expired)
    counts.snapshots_kept = len(snapshots) - len(expired)


def referenced_files(table: Table) -> set[str]:
    """Every path the table still needs: its metadata files (current and the previous versions it lists),
    each kept snapshot's manifest list, manifests and live data/delete files, statistics files."""
    metadata = table.metadata
    paths = {table.metadata_location, *(entry.metadata_file for entry in metadata.metadata_log)}
    paths |= {s.statistics_path for s in metadata.statistics} | {s.statistics_path for s in metadata.partition_statistics}
    for snapshot in metadata.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            paths |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)}
    return paths


def _remove_orphans(store: ObjectStore, table: Table | None, settings: Settings, now: dt.datetime,
                    counts: TableCounts) -> None:
    """Delete the objects under the table's location it does not reference, once older than the grace."""
    if table is None:
        return
    keep = referenced_files(table)
    prefix = object_key(table.location().rstrip("/"), store.bucket) + "/"
    oldest = now - dt.timedelta(hours=settings.orphan_grace_hours)
    for entry in store.entries(prefix):
        if f"s3://{store.bucket}/{entry.key}" in keep:
            continue
        if entry.modified is not None and entry.modified <= oldest:
            store.delete(entry.key)
            counts.orphans_removed += 1
        else:
            counts.orphans_fresh += 1
