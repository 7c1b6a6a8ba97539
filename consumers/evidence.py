"""Derive the shared evidence datasets from the harmonized zone into curated/ snapshots.

`derive_evidence(settings)` runs the pure derivations of `consumers.derive` on the harmonized
observations and instruments tables and writes each output as a new snapshot
(`curated/<name>/snapshot=<n>/data.parquet`, then the catalog); a run whose inputs have not changed writes
nothing. The derivations read countries only (`country_observations`): aggregates, regions, historic and
subnational areas are left out. Details: docs/evidence.md.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.catalog import Catalog
from ioxhub.ingest.harmonized import EPOCH_YEAR
from consumers.derive.compendium import instrument_history, instruments_compendium
from consumers.derive.coverage import data_coverage
from consumers.derive.impact import instrument_impact
from consumers.derive.panel import indicator_panel, panel_wide
from consumers.observe import DeriveTrace
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore, curated_prefix, instruments_key
from ioxhub.tables import HARMONIZED, INSTRUMENTS_PREFIX, NAME, entry_of, object_key

log = logging.getLogger("ioxhub.derive")

PANEL_FREQS = {"annual": "A", "quarterly": "Q"}
OBSERVATION_DERIVED = ("indicator_panel_", "coverage", "impact_")
SCOPE = ("Derived from harmonized observations whose ref_area is a country (area_type country) and whose "
         "counterpart_area, when given, is a country: aggregates, regions, historic and subnational areas are left out.")
STATE_KEY = "catalog/derive/inputs.json"


def read_observations(store: ObjectStore) -> pa.Table | None:
    """Every current harmonized observation (each harmonized dataset's observations table, current
    snapshot), with org and dataset_id from its entry and year from its partition."""
    tables = []
    catalog = Catalog(store)
    for table in catalog.tables.tables(HARMONIZED):
        entry = entry_of(table)
        if entry.get("kind") != "harmonized" or table.properties.get(NAME, "").startswith(INSTRUMENTS_PREFIX) \
                or not entry.get("dataset_id"):
            continue
        for data_file in catalog.tables.data_files(table):
            part = store.read_parquet(object_key(data_file.file_path, store.settings.bucket))
            n = part.num_rows
            part = part.append_column("org", pa.array([entry["org"]] * n, pa.string()))
            part = part.append_column("dataset_id", pa.array([entry["dataset_id"]] * n, pa.string()))
            part = part.append_column("year", pa.array([EPOCH_YEAR + data_file.partition[0]] * n, pa.int32()))
            tables.append(part)
    return pa.concat_tables(tables, promote_options="default") if tables else None


def country_observations(table: pa.Table) -> pa.Table:
    """The rows whose ref_area is a country and whose counterpart_area is absent or a country (rows
    harmonized before area types existed have no type: countries then, the only areas accepted)."""
    keep = None
    for name in ("area_type", "counterpart_area_type"):
        if name not in table.column_names:
            continue
        column = table[name]
        ok = pc.fill_null(pc.equal(column.cast(pa.string()), "country"), True)
        keep = ok if keep is None else pc.and_(keep, ok)
    return table if keep is None or pc.all(keep).as_py() else table.filter(keep)


def _inputs(harmonized: list[dict]) -> tuple[dict[str, int], str]:
    """The harmonized datasets with their snapshot numbers, and their fingerprint."""
    inputs = {d["name"]: d["snapshot"] for d in harmonized}
    return inputs, hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def derive_evidence(settings: Settings | None = None, *, force: bool = False, run_id: str = "manual") -> dict:
    """Derive every evidence dataset; returns what was written (rows per dataset, snapshot numbers)."""
    started = time.monotonic()
    settings = settings or get_settings()
    store = ObjectStore(settings)
    catalog = Catalog(store)
    harmonized = [d for d in catalog.datasets() if d.get("kind") == "harmonized"]
    inputs, fingerprint = _inputs(harmonized)
    trace = DeriveTrace(harmonized, settings)
    outputs: dict[str, pd.DataFrame] = {}
    try:
        summary = _derive(store, catalog, inputs, fingerprint, outputs, force=force, run_id=run_id, started=started)
    except BaseException as exc:
        trace.fail(exc)
        raise
    trace.complete(summary, outputs)
    return summary


def _derive(store: ObjectStore, catalog: Catalog, inputs: dict[str, int], fingerprint: str, outputs: dict[str, pd.DataFrame], *,
            force: bool, run_id: str, started: float) -> dict:
    """The derivation proper: `outputs` receives the frames written."""
    state = store.get_json(STATE_KEY) or {}
    if not force and state.get("fingerprint") == fingerprint:
        summary = {"changed": False, "reason": "harmonized inputs unchanged since the last derivation", "datasets": {},
                   "seconds": round(time.monotonic() - started, 3)}
        catalog.record_run("derive_evidence", run_id, summary)
        return summary

    observations = read_observations(store)
    if observations is not None:
        observations = country_observations(observations)
    versions = store.read_parquet(instruments_key("instrument_versions"))
    adoptions = store.read_parquet(instruments_key("adoptions"))
    if versions is not None:
        outputs["instruments_compendium"] = instruments_compendium(versions, adoptions).reset_index()
        outputs["instrument_history"] = instrument_history(versions)
    if adoptions is not None:
        outputs["instrument_adoptions"] = adoptions.to_pandas()
    if observations is not None:
        for label, freq in PANEL_FREQS.items():
            long = indicator_panel(observations, freq)
            outputs[f"indicator_panel_{label}"] = long.sort_values(["ref_area", "indicator", "period_start"])
            wide = panel_wide(long)
            wide = wide if "ref_area" in wide.columns else wide.reset_index()
            outputs[f"indicator_panel_{label}_wide"] = wide.sort_values("ref_area")
        outputs.update(data_coverage(observations).tables())
        if versions is not None and adoptions is not None and adoptions.num_rows:
            annual = outputs["indicator_panel_annual"]
            outputs.update(instrument_impact(annual, versions, adoptions).tables())

    written = {}
    for name, frame in outputs.items():
        written[name] = _write_curated(store, catalog, name, frame, observations)
    store.put_json(STATE_KEY, {"fingerprint": fingerprint, "inputs": inputs, "snapshots": {n: w["snapshot"] for n, w in written.items()}})
    summary = {"changed": True, "datasets": written, "seconds": round(time.monotonic() - started, 3)}
    catalog.record_run("derive_evidence", run_id, summary)
    log.info("derive evidence: %s", summary, extra={"run_id": run_id})
    return summary


def _write_curated(store: ObjectStore, catalog: Catalog, name: str, frame: pd.DataFrame,
                   observations: pa.Table | None) -> dict:
    snapshot = catalog.next_snapshot(name)
    location = curated_prefix(name, snapshot)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    size = store.put_parquet(location + "data.parquet", table, row_group_size=64 * 1024)
    publishers = sorted(set(frame["org"].dropna().astype(str))) if "org" in frame.columns else \
        (sorted(set(observations["org"].to_pylist())) if observations is not None else [])
    coverage = {}
    if "ref_area" in frame.columns:
        coverage["countries"] = sorted(set(frame["ref_area"].dropna().astype(str)))
    if "period" in frame.columns:
        periods = frame["period"].dropna().astype(str)
        coverage.update(first_period=periods.min() if len(periods) else None,
                        last_period=periods.max() if len(periods) else None)
    entry = {"kind": "curated", "publishers": publishers, "rows": table.num_rows, "bytes": size,
             "coverage": coverage, "schema_version": "curated/v1",
             **({"description": SCOPE} if observations is not None and name.startswith(OBSERVATION_DERIVED) else {}),
             "columns": [f"{f.name}:{f.type}" for f in table.schema]}
    document = catalog.publish_snapshot(name, entry, location, snapshot=snapshot)
    return {"rows": table.num_rows, "snapshot": document["snapshot"], "location": location}
