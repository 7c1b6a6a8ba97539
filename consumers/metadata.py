"""What the catalog says about a dataset, shaped for readers: the API's dataset document and the portal's
dataset page both come from here.

`dataset_summary(entry)` (a catalog listing line, with its description), `dataset_metadata(name, store)` /
`describe(entry, store)` (columns documented, snapshots and provenance: the partner releases applied, from
which org and when (the snapshot summaries of its table), and for a curated dataset the harmonized inputs of
its latest derivation),
`dataset_zone(entry)`, `column_names(entry)`, `description(entry)`.
"""
from __future__ import annotations

import json
from typing import Any

from ioxhub.catalog import Catalog
from ioxhub.storage import ObjectStore
from ioxhub.tables import ZONE_OF


# What each curated dataset is (consumers/evidence.py derives them; method: docs/evidence.md).
CURATED_DESCRIPTIONS = {
    "instruments_compendium": "Every instrument of every organization: current version, status, themes, related "
                              "indicators and adopting members.",
    "instrument_history": "Every update of every instrument (adopted, revised, entered into force, adopted by a "
                          "member...), in order.",
    "instrument_adoptions": "Each member country's adoption of an instrument, with its date and version.",
    "indicator_panel_annual": "Cross-organization indicator panel by country and year (long: one row per "
                              "indicator, country and year), aggregated from the harmonized observations.",
    "indicator_panel_annual_wide": "The annual panel with one column per indicator.",
    "indicator_panel_quarterly": "Cross-organization indicator panel by country and quarter (long).",
    "indicator_panel_quarterly_wide": "The quarterly panel with one column per indicator.",
    "coverage": "Data coverage per organization, dataset, indicator and frequency: countries, periods, share of "
                "the country x period grid filled.",
    "coverage_by_org": "Data coverage summed per organization.",
    "impact_did": "Impact of each instrument on its related indicators: stacked difference-in-differences "
                  "estimates with 95 % intervals.",
    "impact_event_study": "The effect by year relative to adoption (event study), with 95 % intervals; the "
                          "pre-adoption years check parallel trends.",
    "impact_country_changes": "Each adopting country's change before and after adoption against its controls.",
}

# The columns analysts meet most, documented once (a dataset's own columns not listed here show their type).
COLUMN_DOCS = {
    "indicator": "Indicator code, prefixed by the publishing organization (ORG.CODE).",
    "ref_area": "Reference country, ISO 3166-1 alpha-3.",
    "counterpart_area": "Partner country (ISO 3166-1 alpha-3) of a bilateral flow.",
    "commodity": "Commodity code (HS 2022) when the indicator is broken down by product.",
    "freq": "Frequency: A annual, Q quarterly, M monthly, W weekly, D daily.",
    "period": "Period in SDMX notation (2021, 2021-Q3, 2021-07...).",
    "period_start": "First day of the period.",
    "period_end": "Last day of the period.",
    "year": "Calendar year of the period.",
    "value": "Observed value, in `unit` (multipliers applied).",
    "unit": "Unit of measure after harmonization (docs/units.md).",
    "obs_status": "SDMX observation status flag (A normal, E estimated, P provisional...).",
    "org": "Publishing organization.",
    "dataset_id": "The publishing organization's dataset id.",
    "release_id": "Release that last set this value (the snapshots' release ids).",
    "published_at": "When the release was published.",
    "instrument_id": "Instrument id (see the instruments compendium).",
    "country": "Member country, ISO 3166-1 alpha-3.",
    "adoption_date": "Date the member adopted the instrument.",
    "scale": "level: effect in the unit; log: effect in log points (read as %).",
    "primary": "True for the scale the estimate is read on (flows: log; rates, shares, indices: level).",
    "estimate": "Point estimate of the effect.",
    "se": "Standard error.",
    "ci_low": "Lower bound of the 95 % interval.",
    "ci_high": "Upper bound of the 95 % interval.",
    "p_value": "Two-sided p-value (Welch-Satterthwaite t).",
    "pct_estimate": "Effect in % (log scale: 100 (exp(b) - 1)).",
    "rel_year": "Year relative to adoption (-1 is the reference).",
    "n_obs": "Number of observations behind the row.",
}


def dataset_zone(entry: dict[str, Any]) -> str:
    """The zone a dataset's files live in (its table's namespace's: harmonized/ or curated/)."""
    namespace = str(entry.get("table", "")).split(".", 1)[0]
    return ZONE_OF.get(namespace) or entry.get("kind", "")


def column_names(entry: dict[str, Any]) -> list[str]:
    return [str(c).split(":", 1)[0] for c in entry.get("columns", [])]


def columns(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """Each column: name, type, whether it is a partition (path) column, and what it means when documented."""
    out = []
    for text in entry.get("columns", []):
        name, _, rest = str(text).partition(":")
        partition = rest.endswith(" (path)")
        out.append({"name": name, "type": rest.removesuffix(" (path)"), "partition": partition,
                    "doc": COLUMN_DOCS.get(name, "")})
    return out


# The harmonized policy tables (ioxhub/ingest/policies.py) carry no title of their own.
HARMONIZED_DESCRIPTIONS = {
    "instruments.instruments": "Instruments as the organizations last described them (harmonized policy updates).",
    "instruments.instrument_versions": "Every policy update of every instrument, as received and harmonized.",
    "instruments.adoptions": "Member adoptions of instruments, as received and harmonized.",
}


def description(entry: dict[str, Any]) -> str:
    """A sentence saying what the dataset is (its title, or what the hub knows of the kind)."""
    if entry.get("kind") == "curated":
        return CURATED_DESCRIPTIONS.get(entry["name"], "An evidence dataset derived by the hub.")
    if entry.get("title"):
        return entry["title"]
    return HARMONIZED_DESCRIPTIONS.get(entry["name"]) or \
        f"Harmonized observations of {entry.get('org', 'an organization')} ({entry.get('dataset_id', entry['name'])})."


def dataset_summary(entry: dict[str, Any]) -> dict[str, Any]:
    return {"name": entry["name"], "kind": entry.get("kind"), "zone": dataset_zone(entry),
            "title": entry.get("title"), "description": description(entry), "org": entry.get("org"),
            "publishers": entry.get("publishers", []),
            "licence": entry.get("licence"), "rows": entry.get("rows"), "snapshot": entry.get("snapshot"),
            "snapshot_id": entry.get("snapshot_id"), "table": entry.get("table"), "updated_at": entry.get("updated_at")}


def _releases(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The partner releases applied to a harmonized dataset, from its snapshots kept (each commit that
    applied a release names it in its summary), oldest first."""
    return [{"org": entry.get("org"), "dataset_id": entry.get("dataset_id"), "release_id": s["release_id"],
             "applied_at": s.get("created_at"), "snapshot": s.get("snapshot"), "snapshot_id": s.get("snapshot_id"),
             **{k: s[k] for k in ("observations", "harmonized", "refused", "run_id") if k in s}}
            for s in entry.get("snapshots", []) if s.get("release_id")]


def snapshots(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The dataset's snapshots kept, oldest first (each may be named by `as_of`: number, id or time)."""
    return [{k: s.get(k) for k in ("snapshot", "snapshot_id", "created_at", "operation", "release_id")}
            for s in entry.get("snapshots", [])]


def _inputs(catalog: Catalog, entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The harmonized inputs (and their snapshots) of the derivation that wrote a curated dataset's current
    snapshot, as its snapshot summary records them (consumers.evidence)."""
    current = next((s for s in entry.get("snapshots", []) if s.get("snapshot") == entry.get("snapshot")), {})
    inputs = json.loads(current.get("inputs") or "{}")
    out = []
    for input_name, read in sorted(inputs.items()):
        source = catalog.dataset(input_name) or {}
        used = next((s for s in source.get("snapshots", []) if s.get("snapshot_id") == read.get("snapshot_id")), {})
        out.append({"dataset": input_name, "snapshot": read.get("snapshot"), "org": source.get("org"),
                    "publishers": source.get("publishers", []), "last_release": used.get("last_release"),
                    "created_at": used.get("created_at"), "rows": used.get("rows")})
    return out


def describe(entry: dict[str, Any], store: ObjectStore) -> dict[str, Any]:
    """The whole description of a catalog entry: summary, columns, snapshots, provenance."""
    provenance: dict[str, Any] = {"snapshot": entry.get("snapshot"), "snapshot_id": entry.get("snapshot_id"),
                                  "updated_at": entry.get("updated_at"),
                                  "releases": [], "inputs": []}
    if entry.get("org") and entry.get("dataset_id"):
        provenance["releases"] = _releases(entry)
    if entry.get("kind") == "curated":
        provenance["inputs"] = _inputs(Catalog(store), entry)
    return {**dataset_summary(entry),
            "dataset_id": entry.get("dataset_id"), "source_url": entry.get("source_url"),
            "schema_version": entry.get("schema_version"), "coverage": entry.get("coverage", {}),
            "columns": columns(entry), "snapshots": snapshots(entry), "provenance": provenance}


def dataset_metadata(name: str, store: ObjectStore) -> dict[str, Any] | None:
    """The whole description of dataset `name`, or None when the catalog has no such dataset."""
    entry = Catalog(store).dataset(name)
    return None if entry is None else describe(entry, store)
