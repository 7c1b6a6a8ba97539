"""Derive the shared evidence datasets from the harmonized tables into curated Iceberg tables.

`derive_evidence(settings)` runs the pure derivations of `consumers.derive` on the harmonized
observations and the instrument tables and writes each output with `write_curated`: one Parquet file under
the curated table's data/, then one commit replacing the table's content (its snapshot records the run and
the harmonized inputs read). A run whose inputs have not changed (`last_derivation`) writes nothing. The
derivations read countries only (`country_observations`): aggregates, regions, historic and subnational
areas are left out. Details: docs/evidence.md.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid

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
from ioxhub.ingest.policies import read_instruments
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore
from ioxhub.table_files import METADATA_CLEANUP, ROW_GROUP_ROWS, iceberg_ready, live_files, write_data_file
from ioxhub.tables import CURATED, ENTRY, HARMONIZED, INSTRUMENTS_PREFIX, NAME, Tables, entry_of, identifier_of, object_key, tables_for

log = logging.getLogger("ioxhub.derive")

PANEL_FREQS = {"annual": "A", "quarterly": "Q"}
OBSERVATION_DERIVED = ("indicator_panel_", "coverage", "impact_")
SCOPE = ("Derived from harmonized observations whose ref_area is a country (area_type country) and whose "
         "counterpart_area, when given, is a country: aggregates, regions, historic and subnational areas are left out.")
# Snapshot summary keys of every curated commit a derivation makes.
INPUTS = "ioxhub.inputs"                    # JSON: {harmonized dataset: {snapshot, snapshot_id}} read
FINGERPRINT = "ioxhub.inputs_fingerprint"   # sha256 of INPUTS: "inputs unchanged" is a comparison
DERIVATION = "ioxhub.derivation"            # one id per derivation run ...
OUTPUTS = "ioxhub.outputs"                  # ... and the number of datasets it writes (complete when all are)


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


def _inputs(harmonized: list[dict]) -> tuple[dict[str, dict], str]:
    """The harmonized datasets with their snapshot numbers and ids, and their fingerprint."""
    inputs = {d["name"]: {"snapshot": d["snapshot"], "snapshot_id": d["snapshot_id"]} for d in harmonized}
    return inputs, hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def last_derivation(settings: Settings) -> dict | None:
    """The last derivation as the curated tables' current snapshots record it: `fingerprint`, `inputs`
    ({dataset: {snapshot, snapshot_id}}), `snapshots` ({curated dataset: snapshot number}) and `complete`
    (every dataset it wrote committed); None before the first derivation."""
    runs: dict[str, dict] = {}
    for table in tables_for(settings).tables(CURATED):
        current = table.current_snapshot()
        summary = current.summary.additional_properties if current is not None and current.summary else {}
        if DERIVATION not in summary:
            continue
        run = runs.setdefault(summary[DERIVATION], {
            "fingerprint": summary[FINGERPRINT], "inputs": json.loads(summary[INPUTS]),
            "outputs": int(summary[OUTPUTS]), "snapshots": {}, "at": 0})
        run["snapshots"][table.properties.get(NAME, table.name()[-1])] = current.sequence_number
        run["at"] = max(run["at"], current.timestamp_ms)
    if not runs:
        return None
    last = max(runs.values(), key=lambda r: r["at"])
    return {**last, "complete": len(last["snapshots"]) == last["outputs"]}


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


def _derive(store: ObjectStore, catalog: Catalog, inputs: dict[str, dict], fingerprint: str, outputs: dict[str, pd.DataFrame], *,
            force: bool, run_id: str, started: float) -> dict:
    """The derivation proper: `outputs` receives the frames written."""
    last = last_derivation(store.settings)
    if not force and last and last["complete"] and last["fingerprint"] == fingerprint:
        summary = {"changed": False, "reason": "harmonized inputs unchanged since the last derivation", "datasets": {},
                   "seconds": round(time.monotonic() - started, 3)}
        catalog.record_run("derive_evidence", run_id, summary)
        return summary

    observations = read_observations(store)
    if observations is not None:
        observations = country_observations(observations)
    versions = read_instruments(store.settings, "instrument_versions", store)
    adoptions = read_instruments(store.settings, "adoptions", store)
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

    commit = {"ioxhub.run_id": run_id, INPUTS: json.dumps(inputs, sort_keys=True), FINGERPRINT: fingerprint,
              DERIVATION: uuid.uuid4().hex, OUTPUTS: str(len(outputs))}
    tables = catalog.tables
    written = {}
    for name, frame in outputs.items():
        table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
        written[name] = write_curated(store, tables, name, table, curated_entry(name, frame, table, observations), commit)
    summary = {"changed": True, "datasets": written, "seconds": round(time.monotonic() - started, 3)}
    catalog.record_run("derive_evidence", run_id, summary)
    log.info("derive evidence: %s", summary, extra={"run_id": run_id})
    return summary


def curated_entry(name: str, frame: pd.DataFrame, table: pa.Table, observations: pa.Table | None) -> dict:
    """The catalog entry of a derived dataset (the curated table's ENTRY property)."""
    publishers = sorted(set(frame["org"].dropna().astype(str))) if "org" in frame.columns else \
        (sorted(set(observations["org"].to_pylist())) if observations is not None else [])
    coverage = {}
    if "ref_area" in frame.columns:
        coverage["countries"] = sorted(set(frame["ref_area"].dropna().astype(str)))
    if "period" in frame.columns:
        periods = frame["period"].dropna().astype(str)
        coverage.update(first_period=periods.min() if len(periods) else None,
                        last_period=periods.max() if len(periods) else None)
    return {"kind": "curated", "publishers": publishers, "rows": table.num_rows, "coverage": coverage,
            "schema_version": "curated/v1",
            **({"description": SCOPE} if observations is not None and name.startswith(OBSERVATION_DERIVED) else {}),
            "columns": [f"{f.name}:{f.type}" for f in table.schema]}


def write_curated(store: ObjectStore, tables: Tables, name: str, rows: pa.Table, entry: dict,
                  summary: dict[str, str], row_group_size: int = ROW_GROUP_ROWS) -> dict:
    """Write curated dataset `name`: `rows` as one Parquet object under its table's data/, then ONE commit
    replacing every current data file, with the schema evolved to `rows`', `summary` in the snapshot and
    the NAME and ENTRY (`entry` + the file's bytes) properties. Returns rows, snapshot number and id, bytes."""
    rows = iceberg_ready(rows)
    table = tables.create(*identifier_of(name), rows.schema, properties=METADATA_CLEANUP)
    rows = _typed_like(rows, table)
    path, size = write_data_file(store, table, rows, row_group_size=row_group_size)
    snapshot = tables.commit_files(table, add=[path], remove=live_files(table), schema=rows.schema,
                                   summary=summary, properties={NAME: name, ENTRY: json.dumps(
                                       {**entry, "bytes": size}, sort_keys=True, default=str)})
    return {"rows": rows.num_rows, "snapshot": snapshot.sequence_number, "snapshot_id": snapshot.snapshot_id,
            "bytes": size, "table": ".".join(identifier_of(name))}


def _typed_like(rows: pa.Table, table) -> pa.Table:
    """A column of `rows` with no value at all takes the type the table already gives it (an all-missing
    column is typed string by `iceberg_ready`; an earlier snapshot may have had values of another type)."""
    known = {f.name: f.type for f in table.schema().as_arrow()}
    fields = [f.with_type(known[f.name]) if f.name in known and rows[f.name].null_count == rows.num_rows
              and rows.num_rows and f.type != known[f.name] else f for f in rows.schema]
    schema = pa.schema(fields)
    return rows if schema == rows.schema else rows.cast(schema)
