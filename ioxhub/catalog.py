"""The hub's catalog: what datasets exist (the Iceberg tables) and what each run did (JSON documents).

`Catalog(store)`: `datasets()`, `dataset(name)`, `describe(table)`, `table_of(name)` read the tables of
`ioxhub.tables` with the store's S3 identity (an entry is the table's `ioxhub.entry` property plus its
name, table and snapshots); release markers are in the tables (`ioxhub.ingest.markers`). Under catalog/
(one PUT each): `runs/<dag_id>/` (`record_run`, `last_runs`, `runs`; `add_counts` sums the counts of several
runs) and `failures/<dag_id>/` (`record_failure`, `recent_failures`).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from pyiceberg.table import Table

from ioxhub.storage import ObjectStore
from ioxhub.tables import CURATED, HARMONIZED, NAME, Tables, entry_of, iceberg_time, identifier_of, tables_for

CATALOG_PREFIX = "catalog/"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Catalog:
    """Datasets and releases from the Iceberg tables (`ioxhub.tables`); runs and failures as JSON documents."""

    def __init__(self, store: ObjectStore, tables: Tables | None = None):
        self.store = store
        self._tables = tables

    @property
    def tables(self) -> Tables:
        if self._tables is None:
            self._tables = tables_for(self.store.identity_settings())
        return self._tables

    # --- datasets ---------------------------------------------------------------------------------
    def table_of(self, name: str) -> Table | None:
        """The Iceberg table of a dataset name (`ORG.dataset_id`, `instruments.<table>` or a curated name)."""
        return self.tables.load(*identifier_of(name))

    def dataset(self, name: str) -> dict[str, Any] | None:
        table = self.table_of(name)
        return None if table is None or table.current_snapshot() is None else self.describe(table)

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset with data that this identity may read (analysts: not the harmonized ones), by name.
        Wrong or unknown S3 keys are a StorageError naming them (the catalog/ zone is listed first)."""
        next(iter(self.store.entries(CATALOG_PREFIX, recursive=False)), None)
        found = [self.describe(t) for ns in (HARMONIZED, CURATED) for t in self.tables.tables(ns)
                 if t.current_snapshot() is not None and NAME in t.properties]
        return sorted(found, key=lambda d: d["name"])

    def describe(self, table: Table) -> dict[str, Any]:
        """A dataset's entry: what its table properties hold (kind, publishers, licence, coverage, columns,
        ...) with its name, table, current snapshot (the table's sequence number) and the snapshots kept."""
        entry = entry_of(table)
        snapshots = [s.as_dict() for s in self.tables.snapshots(table)]
        current = table.current_snapshot()
        namespace, name = table.name()[-2:]
        return {**entry, "name": table.properties[NAME], "table": f"{namespace}.{name}",
                "snapshot": current.sequence_number, "snapshot_id": current.snapshot_id,
                "updated_at": iceberg_time(current), "snapshots": snapshots}

    # --- runs -------------------------------------------------------------------------------------
    def record_run(self, dag_id: str, run_id: str, summary: dict[str, Any]) -> None:
        document = {**summary, "dag_id": dag_id, "run_id": run_id, "finished_at": _now()}
        safe_run = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in run_id)
        self.store.put_json(f"catalog/runs/{dag_id}/{safe_run}.json", document)
        self.store.put_json(f"catalog/runs/{dag_id}/latest.json", document)

    def last_runs(self) -> dict[str, dict[str, Any]]:
        runs = {}
        for key in self.store.list("catalog/runs/"):
            if key.endswith("/latest.json"):
                doc = self.store.get_json(key)
                if doc:
                    runs[doc["dag_id"]] = doc
        return runs

    def runs(self, dag_id: str, since: str = "") -> list[dict[str, Any]]:
        """The recorded runs of `dag_id` that finished at or after `since` (ISO UTC), oldest first."""
        docs = [self.store.get_json(key) for key in self.store.list(f"catalog/runs/{dag_id}/")
                if not key.endswith("/latest.json")]
        return sorted((d for d in docs if d and d.get("finished_at", "") >= since), key=lambda d: d["finished_at"])

    # --- failures ---------------------------------------------------------------------------------
    def record_failure(self, document: dict[str, Any]) -> str:
        """Keep one failed try or run (a document of app.airflow_failures.failure_record); returns its key.
        Keys start with the UTC time, so a listing is in time order."""
        stamp = document["failed_at"].replace("-", "").replace(":", "")
        name = "_".join(_safe(str(document.get(k) or "-")) for k in ("run_id", "task_id", "try_number"))
        key = f"catalog/failures/{_safe(document['dag_id'] or 'unknown')}/{stamp}_{name}.json"
        self.store.put_json(key, document)
        return key

    def recent_failures(self, per_dag: int = 5) -> list[dict[str, Any]]:
        """The latest `per_dag` failures of each DAG, newest first."""
        by_dag: dict[str, list[str]] = {}
        for key in self.store.list("catalog/failures/"):
            by_dag.setdefault(key.split("/")[2], []).append(key)
        keys = [k for ks in by_dag.values() for k in sorted(ks)[-per_dag:]]
        docs = [doc for key in keys if (doc := self.store.get_json(key))]
        return sorted(docs, key=lambda d: d.get("failed_at", ""), reverse=True)


def _safe(name: str) -> str:
    """A run id, task id or DAG id as a piece of an object key."""
    return "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)


def add_counts(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The counts of several runs as one: numbers (also inside nested dicts) added, anything else from the
    last run (so the sum still reconciles: consumed = applied + staged + duplicate + quarantined)."""
    total: dict[str, Any] = {}
    for run in runs:
        for key, value in run.items():
            if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
                total[key] = value
            elif isinstance(value, dict):
                total[key] = add_counts([total.get(key) or {}, value]) if isinstance(total.get(key, {}), dict) else value
            else:
                total[key] = total.get(key, 0) + value
    return total
