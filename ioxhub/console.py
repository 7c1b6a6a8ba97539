"""Terminal output of the CLI (rich tables): one place that decides how counts and catalogs look."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def print_counts(title: str, counts: dict) -> None:
    flat: dict[str, Any] = {}
    _flatten("", counts, flat)
    table = Table(title=title, show_header=False)
    for key, value in flat.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value))
    console.print(table)


def print_status(status: dict) -> None:
    runs = Table(title="last run of each DAG")
    for col in ("dag", "run", "finished", "consumed", "applied", "staged", "duplicate", "quarantined", "rows", "seconds"):
        runs.add_column(col)
    for dag_id, run in sorted(status["runs"].items()):
        events = run.get("events", {})
        rows = run.get("observations_harmonized", sum(d.get("rows", 0) for d in run.get("datasets", {}).values()))
        runs.add_row(dag_id, run.get("run_id", ""), run.get("finished_at", ""),
                     *(str(events.get(k, "")) for k in ("consumed", "applied", "staged", "duplicate", "quarantined")),
                     f"{rows:,}", str(run.get("seconds", "")))
    console.print(runs if status["runs"] else "no DAG run recorded yet")
    lag = Table(title="lag per topic (records not yet ingested; a lower bound on the local broker)")
    lag.add_column("ingest")
    lag.add_column("topic")
    lag.add_column("lag", justify="right")
    for kind, topics in status["lag"].items():
        for topic, n in sorted(topics.items()):
            lag.add_row(kind, topic, f"{n:,}")
    console.print(lag)


def print_datasets(datasets: list[dict]) -> None:
    table = Table(title="catalog")
    for col in ("name", "kind", "publishers", "rows", "countries", "periods", "snapshot", "updated"):
        table.add_column(col)
    for d in datasets:
        cov = d.get("coverage", {})
        countries = cov.get("countries", [])
        first = cov.get("first_period_start") or cov.get("first_period") or ""
        last = cov.get("last_period_end") or cov.get("last_period") or ""
        table.add_row(d["name"], d.get("kind", ""), ",".join(d.get("publishers", [])), f"{d.get('rows', 0):,}",
                      str(len(countries)) if countries else "", f"{first}..{last}" if first else "",
                      str(d.get("snapshot", "")), d.get("updated_at", ""))
    console.print(table if datasets else "the catalog is empty: publish and ingest first")
