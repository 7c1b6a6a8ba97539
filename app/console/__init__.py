"""Terminal output of the CLI: one place that decides how results look, as rich tables and lines or, for
the listing commands' `--json`, as JSON with stable keys and no secrets (docs/cli-json.md).

Entry points: one `print_*` per command's result; `show` (the table or, with `--json`, `print_json` of the
result or of its `*_json` shape).
"""
from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, Callable

from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.text import Text
from rich.table import Table

from ioxhub.keys import KEYRING_FILE
from ioxhub.signing import iso_utc

if TYPE_CHECKING:  # annotations only: `ioxhub status` need not import the schema checker or the stack
    from ioxhub.contracts.compat import Incompatibility
    from ioxhub.contracts.registry import Registry
    from ioxhub.keys import GeneratedKey
    from ioxhub.provision.plan import ProvisionReport
    from ioxhub.signing import TrustedKey, TrustStore
    from ioxhub.stack.local import Endpoints, ServiceState, UpResult

console = Console()


# ---------------------------------------------------------------------------------------- --json
def show(result: Any, as_json: bool, render: Callable[[Any], None], shape: Callable[[Any], Any] | None = None) -> None:
    """A listing command's result: `render(result)` for people, or with `--json` `shape(result)` (default: the
    result itself) as JSON."""
    if as_json:
        print_json(shape(result) if shape else result)
    else:
        render(result)


def print_json(data: Any) -> None:
    """Machine-readable output (`--json`): times in ISO 8601, paths as strings, sets as sorted lists."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_value) + "\n")


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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


def _print_triggers(triggers: dict | None) -> None:
    """One line: are the ingest DAGs' event triggers running (and when each last fired)."""
    if not triggers:
        return
    fired = ", ".join(f"{kind} {'registered' if w['registered'] else 'NOT registered'}"
                      f" (last fired {(w['last_event'] or 'never')[:19].replace('T', ' ')})"
                      for kind, w in triggers["watchers"].items())
    console.print(f"event triggers: {'live' if triggers['live'] else 'NOT live'}; triggerer "
                  f"{triggers['triggerer']['status']}" + (f"; {fired}" if fired else ""))


def print_follow_event(event: str, data: dict, as_json: bool = False) -> None:
    """One line per event of `ingest --follow` (JSON Lines with `--json`: {"event": ..., **data})."""
    if as_json:
        sys.stdout.write(json.dumps({"event": event, **data}, default=_json_value) + "\n")
        sys.stdout.flush()
        return
    stamp = datetime.now().strftime("%H:%M:%S")
    if event == "batch":
        rows = data.get("observations_harmonized")
        tail = f", {rows:,} observations harmonized" if rows is not None else ""
        console.print(f"{stamp} {data['kind']}: {_events(data['events'])}{tail} ({data.get('seconds', 0):.2f} s)")
    elif event == "derive":
        what = _counts({k: v.get("rows", 0) for k, v in data.get("datasets", {}).items()}) if data.get("changed") else data.get("reason")
        console.print(f"{stamp} derive: {what} ({data.get('seconds', 0):.2f} s)")
    elif event == "retry":
        console.print(f"{stamp} batch failed, nothing committed ({data['error']}); retrying in {data['pause_seconds']:g} s")
    elif event == "waiting":
        console.print(f"{stamp} waiting: {data['holder']} holds the ingest lease")
    else:
        console.print(f"{stamp} stopped: {_counts({k: v for k, v in data.items() if k != 'kind'})}")


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
    if status.get("failures"):
        failed = Table(title="latest failed tries and runs (newest first)")
        for col in ("dag", "task", "run", "try", "outcome", "failed (UTC)", "error"):
            failed.add_column(col, overflow="fold")
        for f in status["failures"]:
            failed.add_row(f["dag_id"] or "-", f.get("task_id") or "-", f.get("run_id") or "-",
                           str(f.get("try_number") or "-"), f["outcome"],
                           f["failed_at"][:19].replace("T", " "), f["error"][:300])
        console.print(failed)
    lag = Table(title="lag per topic (not yet ingested; a lower bound on the local broker)")
    lag.add_column("topic")
    lag.add_column("lag", justify="right")
    lag.add_column("oldest unread (s ago)", justify="right")
    if status.get("lag_error"):
        lag.add_row(f"[red]{status['lag_error']}[/red]", "-", "-")
    for kind, topics in status["lag"].items():
        for topic, n in sorted(topics.items()):
            age = status.get("lag_seconds", {}).get(kind, {}).get(topic)
            lag.add_row(topic, f"{n:,}", "-" if age is None else _age(age))
    console.print(lag)
    _print_triggers(status.get("triggers"))
    _print_freshness(status.get("freshness", []))
    _print_internal_errors(status.get("internal_errors", []))
    _print_expired(status.get("expired", []))
    if not status["staging"]:
        console.print("no release waiting in staging/")
        return
    staging = Table(title="releases waiting in staging/ for chunks or a manifest (publish the file again to "
                          "complete a release cut off at the producer)")
    for col in ("org", "dataset", "release", "events", "bytes", "oldest event (UTC)", "waiting (h)"):
        staging.add_column(col, justify="right" if col in ("events", "bytes", "waiting (h)") else "left")
    for r in status["staging"]:
        oldest = r["oldest"].strftime("%Y-%m-%d %H:%M") if r["oldest"] else "-"
        staging.add_row(r["org"], r["dataset"], r["release"], f"{r['events']:,}", f"{r['bytes']:,}", oldest,
                        "-" if r["age_hours"] is None else f"{r['age_hours']:,.1f}")
    console.print(staging)


def _age(seconds: float) -> str:
    """12.3 s, 4.5 min, 6.7 h, 8.9 d."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _print_freshness(datasets: list[dict]) -> None:
    """Per dataset: when its newest snapshot was published (newest applied release / last derivation)."""
    if not datasets:
        return
    table = Table(title="freshness: newest snapshot of each dataset (harmonized: newest applied release; curated: "
                        "last derivation)")
    for col in ("dataset", "updated (UTC)", "age"):
        table.add_column(col, justify="right" if col == "age" else "left")
    for d in datasets:
        when = d["updated_at"].strftime("%Y-%m-%d %H:%M:%S") if d["updated_at"] else "-"
        table.add_row(d["dataset"], when, "-" if d["age_seconds"] is None else _age(d["age_seconds"]))
    console.print(table)


def _print_internal_errors(errors: list[dict]) -> None:
    if not errors:
        return
    table = Table(title="records refused as internal-error (a bug met while handling them; traceback in "
                        "quarantine/errors/)")
    for col in ("when (UTC)", "topic", "partition", "offset", "error"):
        table.add_column(col, justify="right" if col in ("partition", "offset") else "left")
    for e in errors:
        when = e["at"].strftime("%Y-%m-%d %H:%M") if e["at"] else "-"
        table.add_row(when, e["topic"] or "", str(e["partition"]), str(e["offset"]), e["error"][:100])
    console.print(table)


def _print_expired(expired: list[dict]) -> None:
    """Releases quarantined as incomplete-release (they stay listed: their events are dead letters)."""
    if not expired:
        return
    table = Table(title="quarantined/expired: releases still incomplete after the staging max age "
                        "(reason incomplete-release; publish again under a new release id)")
    for col in ("org", "dataset", "release", "events", "first staged (UTC)", "expired (UTC)", "missing"):
        table.add_column(col, justify="right" if col == "events" else "left", overflow="fold")
    for r in expired:
        table.add_row(r["org"], r["dataset"], r["release"], f"{r['events']:,}", r["first_staged_at"][:16].replace("T", " "),
                      r["expired_at"][:16].replace("T", " "), r["missing"])
    console.print(table)


def _periods(cov: dict) -> str:
    """"2015..2025" for whole years of dates, else the first and last labels ("2015-Q1..2025-Q4")."""
    first = cov.get("first_period_start") or cov.get("first_period") or ""
    last = cov.get("last_period_end") or cov.get("last_period") or ""
    if not first:
        return ""
    if len(first) == len(last) == 10 and first.endswith("-01-01") and last.endswith("-12-31"):
        first, last = first[:4], last[:4]
    return f"{first}..{last}"


def print_datasets(datasets: list[dict]) -> None:
    """The catalog in 80 columns: one row per dataset (full name, publishers under it), harmonized then curated."""
    if not datasets:
        console.print("the catalog is empty: publish and ingest first")
        return
    table = Table(title="catalog (times in UTC; ioxhub pull NAME)", box=box.SIMPLE_HEAD, padding=0, show_edge=False)
    table.add_column("dataset / publishers", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("ctry", justify="right")
    table.add_column("periods")
    table.add_column("snap", justify="right")
    table.add_column("updated")
    kinds = {"harmonized": "harmonized (partner data)", "curated": "curated (derived evidence)"}   # <= 31 wide
    order = list(kinds)
    for kind in sorted({d.get("kind", "") for d in datasets}, key=lambda k: (order.index(k) if k in order else 9, k)):
        table.add_row(f"[bold]{kinds.get(kind, kind or 'other')}[/]", end_section=False)
        for d in (d for d in datasets if d.get("kind", "") == kind):
            cov = d.get("coverage", {})
            publishers = d.get("publishers") or ([d["org"]] if d.get("org") else [])
            unknown = d.get("unrecognized_units") or {}      # unit codes kept as published (docs/units.md)
            note = f"\n  [yellow]units kept unrecognized: {_counts(unknown)}[/]" if unknown else ""
            table.add_row(f"{d['name']}\n  [dim]{','.join(publishers)}\n  snapshot id {d.get('snapshot_id', '')}[/]{note}",
                          f"{d.get('rows', 0):,}",
                          str(len(cov["countries"])) if cov.get("countries") else "", _periods(cov),
                          str(d.get("snapshot", "")), d.get("updated_at", "")[:16].replace("T", "\n"))
        table.add_section()
    console.print(table)


def print_snapshots(entry: dict) -> None:
    """One dataset's snapshots kept, oldest first: what `ioxhub pull --as-of` accepts (number, id or time)."""
    console.print(f"[bold]{entry['name']}[/] (table {entry.get('table', '')}): {entry.get('rows', 0):,} rows, "
                  f"snapshot {entry.get('snapshot')} id {entry.get('snapshot_id')}")
    table = Table(title="snapshots kept (times in UTC; ioxhub pull NAME --as-of NUMBER|ID|TIME)", box=box.SIMPLE_HEAD,
                  padding=(0, 1, 0, 0), show_edge=False)
    for col in ("snap", "snapshot id", "created", "operation", "release"):
        table.add_column(col, justify="right" if col == "snap" else "left", overflow="fold")
    for s in entry.get("snapshots", []):
        table.add_row(str(s.get("snapshot", "")), str(s.get("snapshot_id", "")),
                      str(s.get("created_at", ""))[:19].replace("T", " "), s.get("operation", ""),
                      s.get("release_id") or "")
    console.print(table)


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _events(events: dict) -> str:
    """"consumed 19: applied 19, staged 0, duplicate 0, quarantined 0" (every consumed event in one count)."""
    rest = {k: v for k, v in events.items() if k != "consumed"}
    return f"consumed {events.get('consumed', 0):,}: {_counts(rest)}" if events else "none"


def _p(p: float) -> str:
    return "" if p != p else "<0.001" if p < 0.001 else f"{p:.3f}"


def _estimate(row: dict) -> tuple[str, str]:
    """(effect, 95 % interval) of one impact_did row: % on the log scale, the unit on the level scale."""
    if row["scale"] == "log":
        return (f"{row['pct_estimate']:+.1f}%",
                f"{row['pct_ci_low']:+.1f} .. {row['pct_ci_high']:+.1f}%")
    unit = {"HOURS": "h", "PERCENT": "pp"}.get(row["unit"], f" {row['unit']}")
    return f"{row['estimate']:+.2f}{unit}", f"{row['ci_low']:+.2f} .. {row['ci_high']:+.2f}{unit}"


def print_impact(rows: list[dict]) -> None:
    """The headline impact estimates, one line per instrument x indicator, 80 columns wide."""
    rows = sorted(rows, key=lambda r: (r["instrument_id"], r["indicator"]))
    estimated = [r for r in rows if r["estimate"] == r["estimate"]]       # NaN: no estimate
    table = Table(title="headline impact estimates (difference-in-differences)", box=box.SIMPLE_HEAD,
                  show_edge=False, padding=(0, 1), pad_edge=False)
    table.add_column("instrument / indicator", no_wrap=True)
    table.add_column("effect", justify="right", no_wrap=True)
    table.add_column("95% interval", justify="right", no_wrap=True)
    table.add_column("p", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    previous = None
    for row in estimated:
        if row["instrument_id"] != previous:
            table.add_row(f"[bold]{row['instrument_id']}[/]")
            previous = row["instrument_id"]
        effect, interval = _estimate(row)
        p = row["p_value"]
        table.add_row(f"  {row['indicator']}", effect, interval, _p(p),
                      f"{row['n_treated_countries']}/{row['n_control_countries']}")
    if estimated:
        console.print(table)
        console.print(Padding("n: adopting / control countries; log-scale effects in %, level effects in the "
                              "indicator's unit", (0, 0, 0, 2)), style="dim")
    missing: dict[str, list[str]] = {}
    for row in rows:
        if row["estimate"] != row["estimate"]:
            missing.setdefault(row.get("note") or "no estimate", []).append(row["instrument_id"])
    for note, instruments in missing.items():
        console.print(Padding(f"no estimate ({note}): {', '.join(sorted(set(instruments)))}", (0, 0, 0, 2)))


def print_demo(result) -> None:
    """The closing summary of `ioxhub demo` (80 columns)."""
    ingest = result.runs.get("ingest_datasets", {})
    policies = result.runs.get("ingest_policies", {})
    sent = sum(p["rows_sent"] for p in result.published)
    rejected = sum(p["rows_rejected"] for p in result.published)
    harmonized = [d for d in result.datasets if d.get("kind") == "harmonized" and not d["name"].startswith("instruments.")]
    curated = [d["name"] for d in result.datasets if d.get("kind") == "curated"]
    table = Table(title="ioxhub demo: summary", show_header=False, box=box.SIMPLE, show_edge=False)
    table.add_column(no_wrap=True)
    table.add_column()
    table.add_row("files published", f"{len(result.published)}: {sent:,} rows sent, {rejected:,} rejected at the "
                  "source (*.rejects.csv)")
    table.add_row("dataset events", _events(ingest.get("events", {})))
    table.add_row("harmonized rows", f"{sum(d.get('rows', 0) for d in harmonized):,} in {len(harmonized)} datasets "
                  f"(this run: +{ingest.get('observations_harmonized', 0):,}, duplicates dropped "
                  f"{ingest.get('observations_duplicate', 0):,}, revised {ingest.get('revisions_applied', 0):,})")
    refused = {**ingest.get("quarantined_by_reason", {}), **ingest.get("observations_refused_by_reason", {})}
    table.add_row("quarantined", f"{_counts(dict(sorted(refused.items())))} (this run)")
    table.add_row("policy updates", _events(policies.get("events", {})))
    if result.run_counts:
        table.add_row("DAG runs", "started by the events: " + ", ".join(f"{dag} {n}" for dag, n in result.run_counts.items()))
    table.add_row("catalog", f"{len(result.datasets)} datasets, {len(curated)} curated: {', '.join(curated)}")
    table.add_row("seconds", ", ".join(f"{k} {v}" for k, v in result.seconds.items()))
    console.print(table)
    if result.impact:
        print_impact(result.impact)
    if result.report:
        console.print(f"report: {result.report}", soft_wrap=True)   # a long path stays one copyable line
    if result.portal_url:
        console.print(f"Portal: {result.portal_url} (sign in with key {result.portal_key})", soft_wrap=True)


# ---------------------------------------------------------------------------------------- keys
def print_generated_key(g: GeneratedKey) -> None:
    """`ioxhub keys generate` (plain print: no wrapping, so the key copies cleanly)."""
    print(f"private key: {g.path} (owner-only; keep it secret, never commit it)")
    print(f"public key ({g.org}, {g.key_id}): {g.public_key_b64}")
    print(f"trusted on this machine via the local keyring {g.path.parent.parent / KEYRING_FILE}")
    print(f"for other deployments, add under {g.org}'s `signing_keys:` in infra/orgs.yaml:")
    print(g.yaml_entry(), end="")


def print_retired_key(retired: TrustedKey) -> None:
    """`ioxhub keys retire`: the end of the key's validity window."""
    print(f"key {retired.key.key_id} of {retired.org} is valid until {retired.key.valid_until.isoformat()}")


def print_trust_store(store: TrustStore) -> None:
    """`ioxhub keys list`: the keys ingest trusts."""
    table = Table("org", "key id", "valid from", "valid until", "declared in")
    for t in store:
        table.add_row(t.org, t.key.key_id, iso_utc(t.key.valid_from),
                      iso_utc(t.key.valid_until) if t.key.valid_until else "-", t.source)
    Console().print(table)


# ---------------------------------------------------------------------------------------- provision
def print_provision_report(report: ProvisionReport) -> None:
    """`ioxhub provision`: the changes (planned or made), the notes and the one-line summary."""
    out = Console(width=160)
    out.print(Text(f"Kafka: {report.kafka_backend}    Storage: {report.storage_backend}", style="bold"))
    if report.changes:
        table = Table(title="planned changes" if not report.applied else "changes", title_justify="left")
        for column in ("area", "target", "action", "detail"):
            table.add_column(column, overflow="fold")
        for c in report.changes:
            table.add_row(c.area, c.target, c.action, c.detail)
        out.print(table)
    for note in report.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    out.print(Text(report.summary, style="green" if report.applied or not report.changes else "cyan"))


def provision_json(report: ProvisionReport) -> dict:
    """The plan (or what was applied): never a change's payload, which may carry keys."""
    return {"kafka_backend": report.kafka_backend, "storage_backend": report.storage_backend,
            "applied": report.applied, "summary": report.summary,
            "changes": [{"area": c.area, "target": c.target, "action": c.action, "detail": c.detail}
                        for c in report.changes],
            "notes": list(report.notes)}


def trust_store_json(store: TrustStore) -> list[dict]:
    return [{"org": t.org, "key_id": t.key.key_id, "valid_from": iso_utc(t.key.valid_from),
             "valid_until": iso_utc(t.key.valid_until) if t.key.valid_until else None, "declared_in": t.source}
            for t in store]


# ---------------------------------------------------------------------------------------- schemas
def print_schemas(registry: Registry) -> None:
    """`ioxhub schemas list`: every version with its fingerprint and Confluent id."""
    table = Table("schema", "version", "fingerprint (CRC-64-AVRO)", "Confluent id", "record")
    for sv in registry:
        latest = " (latest)" if sv is registry.latest(sv.name) else ""
        table.add_row(sv.name, f"v{sv.version}{latest}", sv.fingerprint_hex, str(sv.confluent_id), sv.full_name)
    for column in table.columns[:4]:
        column.no_wrap = True
    Console().print(table)


def schemas_json(registry: Registry) -> list[dict]:
    return [{"schema": sv.name, "version": sv.version, "latest": sv is registry.latest(sv.name),
             "fingerprint": sv.fingerprint_hex, "confluent_id": sv.confluent_id, "record": sv.full_name,
             "path": sv.path} for sv in registry]


def print_schemas_check(problems: list[Incompatibility], registry: Registry, pairs: int) -> None:
    """`ioxhub schemas check`: every problem, or the all-clear."""
    out = Console()
    if not problems:
        out.print(f"[green]ok[/green]: {len(registry.names())} schemas, {len(list(registry))} versions, {pairs} "
                  "version pairs checked (BACKWARD_TRANSITIVE, no removal of a field without default)")
        return
    for p in problems:
        out.print(f"[red]incompatible[/red]: {p}", highlight=False)
    out.print(f"{len(problems)} incompatibilit{'y' if len(problems) == 1 else 'ies'} in {pairs} version pairs")


def schemas_check_json(problems: list[Incompatibility], registry: Registry, pairs: int) -> dict:
    return {"compatible": not problems, "schemas": len(registry.names()), "versions": len(list(registry)),
            "pairs_checked": pairs,
            "incompatibilities": [{"schema": p.name, "writer_version": p.writer_version,
                                   "reader_version": p.reader_version, "field": p.field, "kind": p.kind,
                                   "why": p.why} for p in problems]}


# ---------------------------------------------------------------------------------------- stack
def print_stack_up(result: UpResult, where: Endpoints) -> None:
    """`ioxhub stack up`: what it did, the endpoints, where the keys are (never their values)."""
    lines = list(result.notes) + [f"{name}: already running" for name in result.already_running]
    lines += [f"{name}: started" for name in result.started]
    lines += [
        f"Kafka bootstrap:  {where.kafka_bootstrap}",
        f"S3 endpoint:      http://{where.s3_endpoint}  (bucket {where.bucket})",
        f"S3 keys:          {where.keys_file}  (hub: s3_access_key/s3_secret_key, admin: s3_admin_*; "
        f"ioxhub commands read them from there)",
        f"data, logs, pids: {where.data_dir}",
    ]
    if where.airflow_url:
        lines += [f"Airflow UI:       {where.airflow_url}  (user admin, password in {where.airflow_passwords_file})"]
    if where.web_url:
        lines += [f"Portal and API:   {where.web_url}  (sign in with an API key: `ioxhub apikeys create`)"]
    print("\n".join(lines))


def print_stack_down(stopped: dict[str, int | None]) -> None:
    print("\n".join(f"{name}: stopped (pid {pid})" if pid else f"{name}: was not running"
                    for name, pid in stopped.items()))


def print_stack_status(states: list[ServiceState]) -> None:
    """`ioxhub stack status`: each service's state, pid, endpoint and health."""
    table = Table("service", "state", "pid", "endpoint", "health")
    for st in states:
        pids = str(st.pid) if st.pid else ", ".join(map(str, st.leftovers)) or "-"
        table.add_row(st.name, st.state, pids, st.endpoint, st.health)
    Console(width=160).print(table)


def stack_status_json(states: list[ServiceState]) -> list[dict]:
    return [{"service": st.name, "state": st.state, "pid": st.pid, "leftover_pids": list(st.leftovers),
             "endpoint": st.endpoint, "health": st.health} for st in states]
