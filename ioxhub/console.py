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
    for col in ("dag", "finished (UTC)", "events: consumed / applied / staged / dup / quarantined", "rows", "s"):
        runs.add_column(col)
    for dag_id, run in sorted(status["runs"].items()):
        events = run.get("events", {})
        counts = " / ".join(str(events.get(k, "-")) for k in ("consumed", "applied", "staged", "duplicate", "quarantined"))
        rows = run.get("observations_harmonized", sum(d.get("rows", 0) for d in run.get("datasets", {}).values()))
        runs.add_row(dag_id, run.get("finished_at", "")[:19].replace("T", " "), counts, f"{rows:,}",
                     str(run.get("seconds", "")))
    console.print(runs if status["runs"] else "no DAG run recorded yet")
    lag = Table(title="lag per topic (not yet ingested; a lower bound on the local broker)")
    lag.add_column("topic")
    lag.add_column("lag", justify="right")
    for kind, topics in status["lag"].items():
        for topic, n in sorted(topics.items()):
            lag.add_row(topic, f"{n:,}")
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


def print_demo(result) -> None:
    """The closing summary of `ioxhub demo`."""
    ingest = result.runs.get("ingest_datasets", {})
    policies = result.runs.get("ingest_policies", {})
    events = ingest.get("events", {})
    sent = sum(p["rows_sent"] for p in result.published)
    rejected = sum(p["rows_rejected"] for p in result.published)
    table = Table(title="ioxhub demo: summary", show_header=False)
    table.add_row("files published", f"{len(result.published)} ({sent:,} rows sent, {rejected:,} rows rejected "
                  "at the source, see the *.rejects.csv files)")
    table.add_row("dataset events (last ingest run)", ", ".join(f"{k} {v:,}" for k, v in events.items()))
    table.add_row("observations harmonized", f"{ingest.get('observations_harmonized', 0):,} "
                  f"(duplicates dropped {ingest.get('observations_duplicate', 0):,}, "
                  f"revisions applied {ingest.get('revisions_applied', 0):,})")
    refused = {**ingest.get("quarantined_by_reason", {}), **ingest.get("observations_refused_by_reason", {})}
    table.add_row("quarantined by reason", ", ".join(f"{k} {v:,}" for k, v in sorted(refused.items())) or "none")
    table.add_row("policy updates", ", ".join(f"{k} {v:,}" for k, v in policies.get("events", {}).items()))
    table.add_row("datasets in the catalog", f"{len(result.datasets)}: " + ", ".join(d["name"] for d in result.datasets))
    table.add_row("seconds per step", ", ".join(f"{k} {v}" for k, v in result.seconds.items()))
    console.print(table)
    if result.impact:
        impact = Table(title="headline impact estimates (difference-in-differences, primary scale)")
        for col in ("instrument", "indicator", "effect", "95% interval", "p", "adopters / controls"):
            impact.add_column(col)
        for row in sorted(result.impact, key=lambda r: (r["instrument_id"], r["indicator"])):
            if row["estimate"] != row["estimate"]:  # NaN: no estimate (e.g. every country adopted at once)
                impact.add_row(row["instrument_id"], row["indicator"], "-", row.get("note") or "no estimate", "", "")
                continue
            if row["scale"] == "log":
                effect = f"{row['pct_estimate']:+.1f}%"
                ci = f"{row['pct_ci_low']:+.1f}% .. {row['pct_ci_high']:+.1f}%"
            else:
                effect = f"{row['estimate']:+.2f} {row['unit']}"
                ci = f"{row['ci_low']:+.2f} .. {row['ci_high']:+.2f}"
            impact.add_row(row["instrument_id"], row["indicator"], effect, ci,
                           f"{row['p_value']:.3f}" if row["p_value"] == row["p_value"] else "",
                           f"{row['n_treated_countries']} / {row['n_control_countries']}")
        console.print(impact)
    if result.report:
        console.print(f"report: {result.report}")
