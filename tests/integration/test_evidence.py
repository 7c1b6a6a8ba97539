"""Evidence datasets end to end with the real broker, the real S3 server and real Airflow.

- the curated impact estimates recover the planted effects of the sample feeds (and no false effect);
- `--as-of` returns the snapshot before a revision (Python and CLI);
- a filtered pull of a curated panel downloads a small part of it (row-group pushdown over ranged GETs).

The session broker and bucket are shared: every test drains first and asserts on its own datasets only.
The sample feeds may already have been published by another test (same release ids: duplicates).
"""
from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import subprocess
import sys
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pycountry
import pytest

from ioxhub.catalog import Catalog
from consumers import pull
from consumers.access import PullError, pull_table
from consumers.evidence import derive_evidence
from app.demo import ensure_keys, publish_samples
from ioxhub.ingest.run import ingest
from producers import publish_dataset
from producers.samples.effects import PLANTED_EFFECTS
from ioxhub.storage import ObjectStore
from ioxhub.table_files import live_files
from ioxhub.tables import identifier_of, object_key, tables_for

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
ORGS = ["WCO", "WHO", "ICAO", "WTO", "UPU", "IMO", "ICC"]
MAPPING = {"indicator": "indicator", "ref_area": "ref_area", "period": "period", "value": "value", "unit": "unit"}
PANEL = "indicator_panel_annual"


@pytest.fixture(scope="module")
def hub(provisioned_settings, airflow_db):
    ensure_keys(ORGS, provisioned_settings)
    return provisioned_settings


def drain():
    ingest("datasets", idle_ms=1500)
    ingest("policies", idle_ms=1500)


def snapshot_of(name: str) -> dict:
    return Catalog(ObjectStore()).dataset(name)


# --- 1. planted effects ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_impact(hub, run_dag, tmp_path_factory):
    """The sample feeds published, ingested and derived through Airflow; the curated impact_did pulled."""
    drain()
    publish_samples(tmp_path_factory.mktemp("samples"), hub)
    for dag_id in ("ingest_datasets", "ingest_policies"):
        state, tasks, _ = run_dag(dag_id, max_records=None, fail_before_commit=False)
        assert state == "success" and tasks["ingest"] == "success", (dag_id, tasks)
    state, tasks, _ = run_dag("derive_evidence", force=True)
    assert state == "success" and tasks == {"derive": "success"}
    return pull("impact_did", where=["primary=True"])


@pytest.mark.parametrize("planted", [e for e in PLANTED_EFFECTS if e.effect != 0],
                         ids=lambda e: f"{e.instrument_id}:{e.indicator}")
def test_curated_impact_recovers_each_planted_effect(sample_impact, planted):
    rows = sample_impact[(sample_impact["instrument_id"] == planted.instrument_id)
                         & (sample_impact["indicator"] == planted.indicator)]
    assert len(rows) == 1, rows                  # one primary estimate, however often the feeds were published
    d = rows.iloc[0]
    assert d["scale"] == planted.scale
    assert abs(d["estimate"] - planted.effect) <= planted.tolerance, (d["estimate"], planted.effect)
    assert d["ci_low"] <= planted.effect <= d["ci_high"]
    assert d["p_value"] < 0.05
    assert d["n_treated_countries"] == len(planted.adopters)   # every adopter has data on both sides
    assert d["n_control_countries"] >= 5
    if planted.scale == "log":
        assert d["pct_estimate"] == pytest.approx(100 * math.expm1(d["estimate"]))


def test_curated_impact_finds_no_effect_where_none_was_planted(sample_impact):
    [null] = [e for e in PLANTED_EFFECTS if e.effect == 0]
    d = sample_impact[(sample_impact["instrument_id"] == null.instrument_id)
                      & (sample_impact["indicator"] == null.indicator)].iloc[0]
    assert d["p_value"] >= 0.05 and d["ci_low"] <= 0 <= d["ci_high"]
    assert abs(d["estimate"]) <= null.tolerance
    assert d["n_treated_countries"] == len(null.adopters)


# --- 2. --as-of --------------------------------------------------------------------------------------

def _csv(path, values: dict[tuple[str, int], float], indicator: str):
    path.write_text("indicator,ref_area,period,value,unit\n"
                    + "".join(f"{indicator},{c},{y},{v},NUMBER\n" for (c, y), v in sorted(values.items())))
    return path


def _values(frame: pd.DataFrame) -> dict[int, float]:
    return dict(zip(frame["year"].astype(int), frame["value"].astype(float)))


def test_as_of_returns_the_snapshot_before_a_revision(hub, run_dag, tmp_path):
    tag = uuid.uuid4().hex[:8].upper()
    dataset, indicator = f"asof-{tag.lower()}", f"WCO.ASOF_{tag}"
    first = {(c, y): float(y - 2000 + (c == "DEU")) for c in ("FRA", "DEU") for y in range(2015, 2025)}
    revised = {**first, **{("FRA", y): first[("FRA", y)] * 10 for y in (2023, 2024)}}
    where = ["ref_area=FRA", f"indicator={indicator}"]

    drain()
    publish_dataset("WCO", dataset, [_csv(tmp_path / "r1.csv", first, indicator)], MAPPING, settings=hub,
                    progress=False)
    assert run_dag("ingest_datasets", max_records=None, fail_before_commit=False)[0] == "success"
    assert run_dag("derive_evidence", force=True)[0] == "success"
    before = snapshot_of(PANEL)
    n = before["snapshot"]
    assert _values(pull(PANEL, where)) == {y: v for (c, y), v in first.items() if c == "FRA"}

    time.sleep(1.1)                    # snapshot times have a 1 s resolution: the revision is strictly later
    publish_dataset("WCO", dataset, [_csv(tmp_path / "r2.csv", revised, indicator)], MAPPING, settings=hub,
                    progress=False)
    assert run_dag("ingest_datasets", max_records=None, fail_before_commit=False)[0] == "success"
    assert run_dag("derive_evidence", force=True)[0] == "success"
    after = snapshot_of(PANEL)
    assert after["snapshot"] == n + 1

    new = {y: v for (c, y), v in revised.items() if c == "FRA"}
    old = {y: v for (c, y), v in first.items() if c == "FRA"}
    assert new != old
    assert _values(pull(PANEL, where)) == new
    assert _values(pull(PANEL, where, as_of=str(n))) == old
    assert _values(pull(PANEL, where, as_of=str(n + 1))) == new
    created = {s["snapshot"]: s["created_at"] for s in after["snapshots"]}
    assert _values(pull(PANEL, where, as_of=created[n])) == old                    # ISO date/time
    stamp = dt.datetime.fromisoformat(created[n]).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    assert _values(pull(PANEL, where, as_of=stamp)) == old                          # no zone: UTC
    assert _values(pull(PANEL, where, as_of=created[n + 1])) == new
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert _values(pull(PANEL, where, as_of=today)) == new                          # a date: its end
    first_created = after["snapshots"][0]["created_at"]
    with pytest.raises(PullError, match=re.escape(f"{PANEL} has no snapshot as of 2000-01-01 (first kept: {first_created})")):
        pull(PANEL, where, as_of="2000-01-01")
    with pytest.raises(PullError, match=rf"{PANEL} has no snapshot {n + 2} \(snapshots kept: 1\.\.{n + 1}"):
        pull(PANEL, where, as_of=str(n + 2))

    # the same through the CLI, as an analyst runs it
    cli = [sys.executable, "-m", "app.cli", "pull", PANEL, "--where", where[0], "--where", where[1],
           "--columns", "year,value", "--format", "csv"]
    env = {k: v for k, v in os.environ.items()}
    for as_of, expected in ((str(n), old), (None, new)):
        done = subprocess.run(cli + (["--as-of", as_of] if as_of else []), env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        frame = pd.read_csv(io.StringIO(done.stdout))
        assert list(frame.columns) == ["year", "value"] and _values(frame) == expected
    done = subprocess.run(cli + ["--as-of", "2000-01-01"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"error: {PANEL} has no snapshot as of 2000-01-01 "
                                                f"(first kept: {first_created})"]


# --- 3. pushdown -------------------------------------------------------------------------------------

ROW_GROUP = 64 * 1024     # consumers/evidence.py writes curated Parquet in row groups of this many rows


def test_filtered_pull_reads_a_small_part_of_the_panel(hub, tmp_path):
    """40 indicators x 249 countries x 66 years = 657k panel rows, sorted by country: FRA is < 1 row group."""
    tag = uuid.uuid4().hex[:6].upper()
    countries = sorted(c.alpha_3 for c in pycountry.countries)
    years = np.arange(1960, 2026)
    indicators = [f"WCO.PUSHDOWN_{tag}_{i:02d}" for i in range(40)]
    ind, ctry, year = (a.ravel() for a in np.meshgrid(np.arange(len(indicators)), np.arange(len(countries)), years,
                                                      indexing="ij"))
    rng = np.random.default_rng(7)
    table = pa.table({"indicator": np.asarray(indicators, dtype=object)[ind],
                      "ref_area": np.asarray(countries, dtype=object)[ctry],
                      "period": year.astype(str), "value": rng.lognormal(8, 1, len(ind)).round(2),
                      "unit": np.full(len(ind), "NUMBER", dtype=object)})
    pacsv.write_csv(table, tmp_path / "big.csv")

    drain()
    publish_dataset("WCO", f"pushdown-{tag.lower()}", [tmp_path / "big.csv"], MAPPING, settings=hub, progress=False)
    assert ingest("datasets", idle_ms=1500)["observations_harmonized"] == table.num_rows
    assert derive_evidence(force=True)["datasets"][PANEL]["rows"] >= table.num_rows

    store = ObjectStore()
    files = live_files(tables_for(store.settings).load(*identifier_of(PANEL)))
    assert len(files) == 1                                  # one commit replaces the panel's content
    key = object_key(files[0].file_path, store.bucket)
    whole = store.get_bytes(key)
    meta = pq.ParquetFile(io.BytesIO(whole)).metadata
    ref_area = meta.schema.to_arrow_schema().get_field_index("ref_area")
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    with_fra = [g for g in groups if g.column(ref_area).statistics.min <= "FRA" <= g.column(ref_area).statistics.max]
    # by construction: sorted by country, FRA has fewer rows than a row group -> it lies in 1 or 2 of >= 10
    assert meta.num_row_groups >= 10
    assert all(g.num_rows == ROW_GROUP for g in groups[:-1]) and 1 <= len(with_fra) <= 2

    result = pull_table(PANEL, where=["ref_area=FRA"])
    assert result.dataset_bytes == len(whole) and result.objects_read == 1
    fra_bytes = sum(g.column(i).total_compressed_size for g in with_fra for i in range(g.num_columns))
    assert result.bytes_read <= fra_bytes + meta.serialized_size + 2 * 64 * 1024    # + footer and read-ahead
    assert result.bytes_read < result.dataset_bytes / 4
    print(f"pull ref_area=FRA: read {result.bytes_read:,} of {result.dataset_bytes:,} bytes "
          f"({meta.num_row_groups} row groups, {len(with_fra)} with FRA)")
    # and the rows are exactly those of a full read
    full = pq.read_table(io.BytesIO(whole)).to_pandas()
    expected = full[full["ref_area"] == "FRA"].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.table.to_pandas().reset_index(drop=True), expected)
    mine = expected[expected["indicator"].str.startswith(f"WCO.PUSHDOWN_{tag}_")]
    assert len(mine) == len(indicators) * len(years)
