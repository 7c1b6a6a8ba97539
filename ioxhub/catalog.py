"""The catalog in the bucket: what datasets exist, which releases were applied, what each run did.

`Catalog(store)`: JSON documents under catalog/ (one PUT each): `datasets/<name>.json` (a harmonized or
curated dataset with its snapshots: `publish_snapshot`, `dataset`, `datasets`), `releases/org=/dataset=/
release=.json` (the idempotency marker: `mark_release_applied`, `release_applied`), `runs/<dag_id>/`
(`record_run`, `last_runs`, `runs`; `add_counts` sums the counts of several runs) and `failures/<dag_id>/` (`record_failure`, `recent_failures`).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ioxhub.storage import ObjectStore

CATALOG_PREFIX = "catalog/"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def dataset_key(name: str) -> str:
    return f"catalog/datasets/{name}.json"


def release_key(org: str, dataset_id: str, release_id: str) -> str:
    return f"catalog/releases/org={org}/dataset={dataset_id}/release={release_id}.json"


class Catalog:
    def __init__(self, store: ObjectStore):
        self.store = store

    # --- datasets ---------------------------------------------------------------------------------
    def dataset(self, name: str) -> dict[str, Any] | None:
        return self.store.get_json(dataset_key(name))

    def datasets(self) -> list[dict[str, Any]]:
        keys = sorted(self.store.list("catalog/datasets/"))
        return [doc for key in keys if (doc := self.store.get_json(key)) is not None]

    def next_snapshot(self, name: str) -> int:
        """The number the next snapshot of `name` gets (to name its objects before publishing it)."""
        return int((self.dataset(name) or {}).get("snapshot", 0)) + 1

    def publish_snapshot(self, name: str, entry: dict[str, Any], location: str,
                         snapshot: int | None = None) -> dict[str, Any]:
        """Record a new snapshot of a dataset (the last write of a change: readers switch to it atomically).

        `entry` holds the descriptive fields (kind, publishers, rows, coverage, ...); the snapshot number
        (default: the next one), its location and the list of earlier snapshots are maintained here.
        """
        previous = self.dataset(name) or {}
        snapshot = snapshot or int(previous.get("snapshot", 0)) + 1
        created = _now()
        snapshots = list(previous.get("snapshots", []))
        snapshots.append({"snapshot": snapshot, "created_at": created, "location": location,
                          "rows": entry.get("rows"), "last_release": entry.get("last_release")})
        document = {**entry, "name": name, "snapshot": snapshot, "updated_at": created, "location": location,
                    "snapshots": snapshots}
        self.store.put_json(dataset_key(name), document)
        return document

    # --- releases ---------------------------------------------------------------------------------
    def release_applied(self, org: str, dataset_id: str, release_id: str) -> dict[str, Any] | None:
        return self.store.get_json(release_key(org, dataset_id, release_id))

    def mark_release_applied(self, org: str, dataset_id: str, release_id: str, summary: dict[str, Any]) -> None:
        self.store.put_json(release_key(org, dataset_id, release_id), {**summary, "applied_at": _now()})

    def applied_releases(self, org: str, dataset_id: str) -> list[dict[str, Any]]:
        prefix = f"catalog/releases/org={org}/dataset={dataset_id}/"
        return [doc for key in sorted(self.store.list(prefix)) if (doc := self.store.get_json(key))]

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
