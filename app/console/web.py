"""Terminal output of `ioxhub apikeys` and `ioxhub serve` (tables for people; the --json shapes)."""
from __future__ import annotations

from typing import Any

from rich.table import Table

from app.console import console


def print_key_created(created: tuple[str, dict[str, Any]]) -> None:
    key, record = created
    who = f"org {record['org']}" if record["kind"] == "org" else "analyst"
    console.print(f"API key {record['id']} ({record['name']}, {who}) created. The key, shown this once "
                  "(only its hash is stored):")
    console.print(key, markup=False, highlight=False, soft_wrap=True)
    console.print("Use it as `Authorization: Bearer <key>` or `X-API-Key: <key>`, or sign in to the portal with it.")


def key_created_json(created: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    key, record = created
    return {**record, "key": key}


def print_keys(records: list[dict[str, Any]]) -> None:
    if not records:
        console.print("no API keys yet (`ioxhub apikeys create --name N --analyst`)")
        return
    table = Table("id", "name", "kind", "org", "created", "revoked")
    for r in records:
        table.add_row(r["id"], r["name"], r["kind"], r["org"] or "-", r["created_at"], r["revoked_at"] or "-")
    console.print(table)


def print_revoked(records: list[dict[str, Any]]) -> None:
    for r in records:
        console.print(f"API key {r['id']} ({r['name']}) revoked at {r['revoked_at']}; the server refuses it "
                      "within its key cache time (IOXHUB_WEB_KEY_CACHE_SECONDS).")


def print_serving(host: str, port: int) -> None:
    console.print(f"ioxhub web: http://{host}:{port}/  (API: /api/v1, OpenAPI: /openapi.json, SDMX: /sdmx/rest, "
                  "schemas: /schemas/subjects)")
