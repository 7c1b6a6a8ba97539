"""Terminal output of the partner kit commands: `ioxhub conformance` and `ioxhub keys jwks`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ioxhub.conformance import Report


def print_conformance(report: Report) -> None:
    """One line per failing record (where: reason: detail), then the summary line."""
    for f in report.findings:
        print(f"{f.where}: {f.reason}: {f.detail}")
    verdict = "all conform" if report.ok else f"{len(report.findings)} problem(s)"
    print(f"{report.records} record(s), {report.conforming} conforming, {report.releases_complete} complete "
          f"release(s): {verdict}")


def conformance_json(report: Report) -> dict:
    return {"ok": report.ok, "records": report.records, "conforming": report.conforming,
            "releases_complete": report.releases_complete,
            "findings": [{"where": f.where, "reason": f.reason, "detail": f.detail, "event_id": f.event_id}
                         for f in report.findings]}


def print_jwks_written(written: dict[str, tuple[Path, int]]) -> None:
    for org, (path, keys) in written.items():
        print(f"{org}: {keys} key(s) -> {path}")


def jwks_written_json(written: dict[str, tuple[Path, int]]) -> list[dict]:
    return [{"org": org, "file": str(path), "keys": keys} for org, (path, keys) in written.items()]
