"""Release markers on the tables: whether a release was applied, read from its dataset's history table.

`ReleaseMarkers(tables)` answers `applied(org, dataset_id, release_id)` (the marker: the counts the
history commit's summary holds, or None) and `half_applied(...)` (the observations commit of a release
whose history commit a crash prevented: its summary, or None), reading each table once per instance (one
per ingest batch). `release_applied(catalog, ...)` is one question. Crash analysis: docs/architecture.md,
"Exactly once".
"""
from __future__ import annotations

from typing import Any

from pyiceberg.expressions import EqualTo
from pyiceberg.table import Table

from ioxhub.tables import HARMONIZED, HISTORY, RELEASE, Tables, table_name


def marker_of(summary: dict[str, str], release_id: str) -> dict[str, Any]:
    """A snapshot summary's `ioxhub.*` values without the prefix, whole numbers as int."""
    marker: dict[str, Any] = {"release_id": release_id}
    for key, value in summary.items():
        if key.startswith("ioxhub."):
            marker[key.removeprefix("ioxhub.")] = int(value) if value.isdigit() else value
    return marker


def _release_summaries(table: Table | None, release_id: str) -> list[dict[str, str]]:
    if table is None:
        return []
    return [dict(s.summary.additional_properties) for s in sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)
            if s.summary is not None and s.summary.additional_properties.get(RELEASE) == release_id]


def _whole_history(table: Table) -> bool:
    """True when no snapshot of `table` was expired (its first kept snapshot has no parent)."""
    kept = sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)
    return not kept or kept[0].parent_snapshot_id is None


class ReleaseMarkers:
    """Release markers of the history tables, each table loaded once (call `forget` after writing it)."""

    def __init__(self, tables: Tables):
        self.tables = tables
        self._loaded: dict[tuple[str, str], Table | None] = {}

    def table(self, namespace: str, org: str, dataset_id: str) -> Table | None:
        key = (namespace, table_name(org, dataset_id))
        if key not in self._loaded:
            self._loaded[key] = self.tables.load(*key)
        return self._loaded[key]

    def forget(self, org: str, dataset_id: str) -> None:
        for namespace in (HARMONIZED, HISTORY):
            self._loaded.pop((namespace, table_name(org, dataset_id)), None)

    def applied(self, org: str, dataset_id: str, release_id: str) -> dict[str, Any] | None:
        """The release's marker when its history commit was made, else None.

        The history commit's summary (kept snapshots) holds the counts; when snapshots of the history
        table were expired, a release with rows is still known by its history data files (partition
        release_id: plan_files prunes to them), its counts then reduced to the rows kept."""
        history = self.table(HISTORY, org, dataset_id)
        if history is None:
            return None
        summaries = _release_summaries(history, release_id)
        if summaries:
            return marker_of(summaries[-1], release_id)
        if _whole_history(history):
            return None
        files = self.tables.data_files(history, row_filter=EqualTo("release_id", release_id))
        if not files:
            return None
        return {"release_id": release_id, "history_rows": sum(f.record_count for f in files)}

    def half_applied(self, org: str, dataset_id: str, release_id: str) -> dict[str, str] | None:
        """The observations commit's summary of a release not in the history (a crash between the two
        commits), or None."""
        if self.applied(org, dataset_id, release_id) is not None:
            return None
        summaries = _release_summaries(self.table(HARMONIZED, org, dataset_id), release_id)
        return summaries[-1] if summaries else None


def release_applied(catalog, org: str, dataset_id: str, release_id: str) -> dict[str, Any] | None:
    """The marker of one release (`ReleaseMarkers.applied`); `catalog`: an `ioxhub.catalog.Catalog`."""
    return ReleaseMarkers(catalog.tables).applied(org, dataset_id, release_id)
