"""What the catalog says about a dataset, shaped for readers (the API's dataset document, the portal's page).

`dataset_summary(entry)` (a catalog listing line), `dataset_metadata(name, store)` (columns, snapshots and
provenance: the partner releases applied, from which org and when, and for a curated dataset the harmonized
inputs of its latest derivation), `dataset_zone(entry)`.
"""
from __future__ import annotations

from typing import Any

from ioxhub.catalog import Catalog
from ioxhub.storage import ObjectStore

DERIVE_STATE_KEY = "catalog/derive/inputs.json"     # written by consumers.evidence


def dataset_zone(entry: dict[str, Any]) -> str:
    """The zone a dataset's objects live in (the first part of its location)."""
    return str(entry.get("location", "")).split("/", 1)[0]


def _columns(entry: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for text in entry.get("columns", []):
        name, _, rest = str(text).partition(":")
        partition = rest.endswith(" (path)")
        out.append({"name": name, "type": rest.removesuffix(" (path)"), "partition": partition})
    return out


def dataset_summary(entry: dict[str, Any]) -> dict[str, Any]:
    return {"name": entry["name"], "kind": entry.get("kind"), "zone": dataset_zone(entry),
            "title": entry.get("title"), "org": entry.get("org"), "publishers": entry.get("publishers", []),
            "licence": entry.get("licence"), "rows": entry.get("rows"), "snapshot": entry.get("snapshot"),
            "updated_at": entry.get("updated_at")}


def _releases(store: ObjectStore, org: str, dataset_id: str) -> list[dict[str, Any]]:
    prefix = f"catalog/releases/org={org}/dataset={dataset_id}/"
    out = []
    for key in sorted(store.list(prefix)):
        doc = store.get_json(key) or {}
        release = key[len(prefix):].removeprefix("release=").removesuffix(".json")
        out.append({"org": org, "dataset_id": dataset_id, "release_id": release,
                    "applied_at": doc.get("applied_at"), "observations": doc.get("observations"),
                    "harmonized": doc.get("harmonized"), "refused": doc.get("refused")})
    return sorted(out, key=lambda r: (r["applied_at"] or "", r["release_id"]))


def dataset_metadata(name: str, store: ObjectStore) -> dict[str, Any] | None:
    """The whole description of dataset `name`, or None when the catalog has no such dataset."""
    catalog = Catalog(store)
    entry = catalog.dataset(name)
    if entry is None:
        return None
    snapshots = [{k: s.get(k) for k in ("snapshot", "created_at", "rows", "last_release")}
                 for s in entry.get("snapshots", [])]
    provenance: dict[str, Any] = {"snapshot": entry.get("snapshot"), "updated_at": entry.get("updated_at"),
                                  "releases": [], "inputs": []}
    if entry.get("org") and entry.get("dataset_id"):
        provenance["releases"] = _releases(store, entry["org"], entry["dataset_id"])
    if entry.get("kind") == "curated":
        state = store.get_json(DERIVE_STATE_KEY) or {}
        if state.get("snapshots", {}).get(name) == entry.get("snapshot"):
            for input_name, snapshot in sorted(state.get("inputs", {}).items()):
                source = catalog.dataset(input_name) or {}
                provenance["inputs"].append({"dataset": input_name, "snapshot": snapshot, "org": source.get("org"),
                                             "publishers": source.get("publishers", []),
                                             "last_release": next((s.get("last_release") for s in source.get("snapshots", [])
                                                                   if s.get("snapshot") == snapshot), None)})
    return {**dataset_summary(entry),
            "dataset_id": entry.get("dataset_id"), "source_url": entry.get("source_url"),
            "schema_version": entry.get("schema_version"), "coverage": entry.get("coverage", {}),
            "columns": _columns(entry), "snapshots": snapshots, "provenance": provenance}
