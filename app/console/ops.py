"""Terminal output of the operations commands: `replay`, `quarantine list|show|retry`, `status --check`, `maintain`.

Entry points: `print_replay`, `print_letters` / `letters_json`, `print_letter`, `print_retry`, `print_check`,
`print_maintain`
(each command's `--json` prints its result with `app.console.print_json`; docs/cli-json.md).
"""
from __future__ import annotations

from rich.table import Table

from app.console import console, print_json


def print_replay(summary: dict) -> None:
    r, o = summary["releases"], summary["observations"]
    console.print(f"replay {summary['org']}/{summary['dataset']} (run {summary['run_id']}): {r['selected']} release(s) "
                  f"in range, {r['replayed']} replayed, {r['unchanged']} unchanged, {r['skipped']} skipped")
    console.print(f"  rows: {o['added']} added, {o['changed']} changed, {o['removed']} removed; refused "
                  f"{o['refused_before']} -> {o['refused_after']}; events read from raw/ {summary['events']['read']}")
    for release in summary["by_release"]:
        if release["status"] not in ("replayed", "unchanged"):
            console.print(f"  {release['release_id']}: {release['status']}: {release.get('detail', '')}", markup=False)


def letters_json(letters: list[dict]) -> list[dict]:
    """Stable keys, no payload bytes."""
    return [{"id": l["id"], "quarantined_at": l["quarantined_at"], "reason": l["reason"], "org": l.get("org"),
             "topic": l["topic"], "partition": l["partition"], "offset": l["offset"], "event_id": l.get("event_id"),
             "observations": l.get("observations", 0), "detail": l["detail"], "retryable": l["retryable"],
             "retries": len(l.get("retries", [])),
             "last_retry": l["retries"][-1]["outcome"] if l.get("retries") else None} for l in letters]


def print_letters(letters: list[dict]) -> None:
    if not letters:
        console.print("no dead letters match")
        return
    table = Table(title=f"{len(letters)} dead letter(s), newest first")
    for column in ("id", "quarantined at (UTC)", "org", "reason", "retried", "detail"):
        table.add_column(column, overflow="fold")
    for l in letters_json(letters):
        retried = f"{l['retries']}x, {l['last_retry']}" if l["retries"] else ("-" if l["retryable"] else "replay")
        table.add_row(l["id"], l["quarantined_at"].strftime("%Y-%m-%d %H:%M:%S"), l["org"] or "", l["reason"],
                      retried, l["detail"][:160])
    console.print(table)


def print_letter(details: list[dict]) -> None:
    for d in details:
        lines = [f"id:          {d['id']}", f"reason:      {d['reason']}", f"detail:      {d['detail']}",
                 f"quarantined: {d['quarantined_at'].isoformat()}", f"org:         {d.get('org')}",
                 f"event id:    {d.get('event_id')}", f"object:      {d['object']}",
                 f"payload:     {d['payload_bytes']} bytes" if d["payload_bytes"] is not None else "payload:     none (refused observations)"]
        if d.get("release"):
            r = d["release"]
            lines.append(f"release:     {r['release_id']} of {r['org']}/{r['dataset']} ({r['event']})")
        lines.append("headers:")
        lines += [f"  {k}: {v}" for k, v in sorted(d["headers"].items())]
        lines.append("retries:" if d.get("retries") else "retries:     none")
        lines += [f"  {a['at']} run {a['run_id']}: {a['outcome']}" + (f" ({a['reason']}: {a['detail']})" if a.get("reason") else "")
                  for a in d.get("retries", [])]
        if d.get("traceback"):
            lines += ["traceback:", d["traceback"].rstrip()]
        console.print("\n".join(lines), markup=False, highlight=False)


def print_retry(result: dict) -> None:
    outcomes = ", ".join(f"{n} {o}" for o, n in sorted(result["outcomes"].items())) or "nothing"
    console.print(f"quarantine retry (run {result['run_id']}): {result['letters']} event(s): {outcomes}")
    for letter in result["by_letter"]:
        extra = f" ({letter['reason']}: {letter['detail']})" if letter.get("reason") else ""
        console.print(f"  {letter['id']}: {letter['outcome']}{extra}", markup=False)


def print_check(result: dict, as_json: bool) -> None:
    if as_json:
        print_json(result)
    elif result["ok"]:
        console.print("ok")
    else:
        for p in result["problems"]:
            console.print(f"{p['check']}: {p['message']}", markup=False, highlight=False, soft_wrap=True)


def print_maintain(summary: dict) -> None:
    """One line per table maintained: files compacted, snapshots expired and kept, orphans removed."""
    table = Table(title=f"maintain: {len(summary['tables'])} table(s), {summary['problems']} problem(s), "
                        f"{summary['seconds']} s")
    for column in ("table", "compacted", "snapshots expired", "kept", "orphans removed"):
        table.add_column(column, overflow="fold")
    for t in summary["tables"]:
        compacted = f"{t['files_compacted']} files -> {t['partitions_compacted']}" if t["partitions_compacted"] else "-"
        orphans = str(t["orphans_removed"]) + (f" ({t['orphans_fresh']} within grace)" if t["orphans_fresh"] else "")
        table.add_row(t["table"], compacted, str(t["snapshots_expired"]), str(t["snapshots_kept"]), orphans)
    console.print(table)
    for t in summary["tables"]:
        if t["problem"]:
            console.print(f"{t['table']}: {t['problem']}", markup=False)
