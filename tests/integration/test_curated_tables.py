"""Curated datasets and instrument tables as Iceberg tables, on the real broker and S3 server:

- two derivations with different inputs give two snapshots of a curated table (its sequence numbers); a
  pyiceberg scan of the older one still shows the old rows, and each snapshot records the inputs it read;
- a third derivation with the same inputs writes nothing (the fingerprint is read from the tables);
- the instrument tables hold every accepted policy update, one data file each;
- a curated table follows its frames' columns (added, dropped, typed later) and old snapshots still read.

The session stack is shared: other tests' tables and policy updates exist beside this test's.
"""
from __future__ import annotations

import json
import uuid

import pyarrow as pa
import pytest

from app.demo import ensure_keys
from consumers.evidence import FINGERPRINT, INPUTS, derive_evidence, last_derivation, write_curated
from consumers.metadata import dataset_metadata
from ioxhub.ingest.policies import read_instruments
from ioxhub.ingest.run import ingest
from ioxhub.storage import ObjectStore
from ioxhub.table_files import live_files, read_rows
from ioxhub.tables import CURATED, HARMONIZED, tables_for
from producers import publish_policy

pytestmark = pytest.mark.integration

POLICY = """
- instrument_id: {id}
  issuing_org: WCO
  title: An instrument of the curated tables test
  instrument_type: GUIDELINE
  binding: false
  action: ADOPTED
  version: '1'
  effective_date: 2024-01-01
  member_countries: [FRA]
"""


def publish_and_ingest(settings, tmp_path) -> str:
    instrument = f"WCO-CUR-{uuid.uuid4().hex[:8].upper()}"
    path = tmp_path / f"{instrument}.yaml"
    path.write_text(POLICY.format(id=instrument))
    assert publish_policy("WCO", path, settings=settings).rows_sent == 1
    assert ingest("policies", settings, idle_ms=1500)["events"]["applied"] >= 1
    return instrument


def test_curated_snapshots_as_of_and_unchanged_inputs(provisioned_settings, tmp_path):
    hub = provisioned_settings
    ensure_keys(["WCO"], hub)
    ingest("policies", hub, idle_ms=1500)                  # what earlier tests left
    first = publish_and_ingest(hub, tmp_path)
    one = derive_evidence(hub, run_id="curated-one")
    second = publish_and_ingest(hub, tmp_path)
    two = derive_evidence(hub, run_id="curated-two")
    assert one["changed"] and two["changed"]

    tables = tables_for(hub)
    table = tables.load(CURATED, "instrument_history")
    n1, n2 = (run["datasets"]["instrument_history"]["snapshot"] for run in (one, two))
    assert n2 > n1 >= 1 and table.current_snapshot().sequence_number == n2
    old = tables.resolve_as_of(table, str(n1))
    assert old.snapshot_id == one["datasets"]["instrument_history"]["snapshot_id"]
    old_ids = set(table.scan(snapshot_id=old.snapshot_id).to_arrow()["instrument_id"].to_pylist())
    new_ids = set(table.scan().to_arrow()["instrument_id"].to_pylist())
    assert first in old_ids and second not in old_ids and {first, second} <= new_ids
    assert len(live_files(table)) == 1                                # each commit replaces the content

    # each snapshot records the inputs it read: the instrument table's snapshot moved between the two
    read = [json.loads(s.summary[INPUTS]) for s in tables.snapshots(table) if s.number in (n1, n2)]
    versions = tables.load(HARMONIZED, "instrument_versions")
    assert read[0]["instruments.instrument_versions"]["snapshot"] < read[1]["instruments.instrument_versions"]["snapshot"]
    assert read[1]["instruments.instrument_versions"]["snapshot_id"] == versions.current_snapshot().snapshot_id
    provenance = dataset_metadata("instrument_history", ObjectStore(hub))["provenance"]["inputs"]
    assert {"dataset": "instruments.instrument_versions",
            "snapshot": versions.current_snapshot().sequence_number} in [
        {k: i[k] for k in ("dataset", "snapshot")} for i in provenance]

    three = derive_evidence(hub, run_id="curated-three")
    assert not three["changed"] and "unchanged" in three["reason"]
    assert tables.load(CURATED, "instrument_history").current_snapshot().sequence_number == n2
    last = last_derivation(hub)
    assert last["complete"] and last["fingerprint"] == table.current_snapshot().summary[FINGERPRINT]
    assert set(two["datasets"]) == set(last["snapshots"])


def test_instrument_tables_hold_every_accepted_update_in_one_file(provisioned_settings, tmp_path):
    hub = provisioned_settings
    ensure_keys(["WCO"], hub)
    instrument = publish_and_ingest(hub, tmp_path)
    tables = tables_for(hub)
    for name in ("instrument_versions", "instruments"):
        table = tables.load(HARMONIZED, name)
        assert len(live_files(table)) == 1, name
        assert table.properties["ioxhub.name"] == f"instruments.{name}"
        assert json.loads(table.properties["ioxhub.entry"])["rows"] == table.scan().to_arrow().num_rows
        assert instrument in read_instruments(hub, name)["instrument_id"].to_pylist()
    again = ingest("policies", hub, idle_ms=1500)
    assert again["events"]["applied"] == 0


def test_a_curated_table_follows_its_frames_columns_and_keeps_old_snapshots_readable(provisioned_settings):
    """Wide panels gain and lose columns; an all-missing column (Arrow type null) is written as string, and
    takes another type later: each snapshot still reads as it was written."""
    store, tables = ObjectStore(provisioned_settings), tables_for(provisioned_settings)
    name = f"evolving_{uuid.uuid4().hex[:8]}"
    frames = [pa.table({"ref_area": ["FRA", "DEU"], "gdp": pa.nulls(2)}),
              pa.table({"ref_area": ["FRA", "DEU"], "gdp": [1.5, 2.5], "trade": ["x", None]}),
              pa.table({"ref_area": ["FRA"], "trade": ["y"]})]
    ids = [write_curated(store, tables, name, frame, {"kind": "curated"}, {"ioxhub.run_id": "evolve"})["snapshot_id"]
           for frame in frames]
    table = tables.load(CURATED, name)
    assert [f.name for f in table.schema().fields] == ["ref_area", "trade"]
    read = [table.scan(snapshot_id=i).to_arrow() for i in ids]
    assert read[0].column_names == ["ref_area", "gdp"] and read[0]["gdp"].to_pylist() == [None, None]
    assert read[1]["gdp"].to_pylist() == [1.5, 2.5] and read[1]["trade"].to_pylist() == ["x", None]
    assert read[2].to_pylist() == [{"ref_area": "FRA", "trade": "y"}]
    assert read_rows(store, table).to_pylist() == [{"ref_area": "FRA", "trade": "y"}]
