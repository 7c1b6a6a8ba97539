"""A dataset's description (consumers/metadata.py), the one the API's dataset document and the portal's dataset
page both show: columns documented, snapshots an as-of may name, provenance (from the entry's snapshots)."""
from __future__ import annotations

import json

from consumers import metadata
from test_apikeys import DictStore

HARMONIZED = {"name": "WCO.SEIZURES", "kind": "harmonized", "org": "WCO", "dataset_id": "seizures", "snapshot": 2,
              "snapshot_id": 222, "table": "harmonized.wco__seizures", "title": "Hazardous waste seizures",
              "publishers": ["WCO"], "updated_at": "2026-01-02T00:00:00+00:00",
              "columns": ["indicator:large_string", "value:double", "year:int (path)", "odd_one:string"],
              "snapshots": [{"snapshot": 1, "snapshot_id": 111, "created_at": "2026-01-01T00:00:00+00:00",
                             "operation": "append", "release_id": "r1", "run_id": "run-1", "rows": 5},
                            {"snapshot": 2, "snapshot_id": 222, "created_at": "2026-01-02T00:00:00+00:00",
                             "operation": "overwrite", "release_id": "r2", "rows": 7},
                            {"snapshot": 3, "snapshot_id": 333, "created_at": "2026-01-03T00:00:00+00:00",
                             "operation": "overwrite"}]}          # a commit that applied no release (e.g. a replay)
PANEL = {"name": "indicator_panel_annual", "kind": "curated", "snapshot": 2, "snapshot_id": 22,
         "table": "curated.indicator_panel_annual", "publishers": ["WCO"],
         "columns": ["ref_area:string"],
         "snapshots": [{"snapshot": 1, "created_at": "2026-01-01T00:00:00+00:00", "rows": 3},
                       {"snapshot": 2, "created_at": "2026-01-02T00:00:00+00:00", "rows": 4}]}



def test_columns_are_documented_and_partition_columns_marked():
    assert metadata.columns(HARMONIZED) == [
        {"name": "indicator", "type": "large_string", "partition": False, "doc": metadata.COLUMN_DOCS["indicator"]},
        {"name": "value", "type": "double", "partition": False, "doc": metadata.COLUMN_DOCS["value"]},
        {"name": "year", "type": "int", "partition": True, "doc": metadata.COLUMN_DOCS["year"]},
        {"name": "odd_one", "type": "string", "partition": False, "doc": ""}]
    assert metadata.column_names(HARMONIZED) == ["indicator", "value", "year", "odd_one"]


def test_every_snapshot_kept_is_listed_with_its_number_id_and_release():
    assert metadata.snapshots(HARMONIZED) == [
        {"snapshot": 1, "snapshot_id": 111, "created_at": "2026-01-01T00:00:00+00:00", "operation": "append",
         "release_id": "r1"},
        {"snapshot": 2, "snapshot_id": 222, "created_at": "2026-01-02T00:00:00+00:00", "operation": "overwrite",
         "release_id": "r2"},
        {"snapshot": 3, "snapshot_id": 333, "created_at": "2026-01-03T00:00:00+00:00", "operation": "overwrite",
         "release_id": None}]
    assert [s["snapshot_id"] for s in metadata.snapshots(PANEL)] == [None, None]


def test_descriptions_and_zones():
    assert metadata.description(HARMONIZED) == "Hazardous waste seizures"
    assert metadata.description(PANEL) == metadata.CURATED_DESCRIPTIONS["indicator_panel_annual"]
    assert "WHO" in metadata.description({"name": "WHO.X", "kind": "harmonized", "org": "WHO", "dataset_id": "x"})
    assert (metadata.dataset_zone(HARMONIZED), metadata.dataset_zone(PANEL)) == ("harmonized", "curated")
    assert metadata.dataset_zone({"name": "instruments.adoptions", "kind": "instruments",
                                  "table": "harmonized.adoptions"}) == "harmonized"


def test_provenance_of_a_harmonized_dataset_is_the_releases_its_snapshots_applied():
    described = metadata.describe(HARMONIZED, DictStore())
    assert described["provenance"]["releases"] == [
        {"org": "WCO", "dataset_id": "seizures", "release_id": "r1", "applied_at": "2026-01-01T00:00:00+00:00",
         "snapshot": 1, "snapshot_id": 111, "run_id": "run-1"},
        {"org": "WCO", "dataset_id": "seizures", "release_id": "r2", "applied_at": "2026-01-02T00:00:00+00:00",
         "snapshot": 2, "snapshot_id": 222}]
    assert described["provenance"]["snapshot_id"] == 222 and described["table"] == "harmonized.wco__seizures"
    assert described["provenance"]["inputs"] == [] and described["description"] == "Hazardous waste seizures"


class Datasets:
    """What metadata._inputs asks of a Catalog: a dataset's entry by name."""

    def __init__(self, *entries):
        self.entries = {e["name"]: e for e in entries}

    def dataset(self, name):
        return self.entries.get(name)


def test_provenance_of_a_curated_dataset_is_the_inputs_its_current_snapshot_records():
    harmonized = {**HARMONIZED, "snapshots": [{**s, "snapshot_id": 100 + s["snapshot"]} for s in HARMONIZED["snapshots"]]}
    read = lambda n: json.dumps({"WCO.SEIZURES": {"snapshot": n, "snapshot_id": 100 + n}})
    panel = {**PANEL, "snapshots": [{**PANEL["snapshots"][0], "inputs": read(2)},
                                     {**PANEL["snapshots"][1], "inputs": read(1)}]}
    inputs = metadata._inputs(Datasets(harmonized, panel), panel)
    assert inputs == [{"dataset": "WCO.SEIZURES", "snapshot": 1, "org": "WCO", "publishers": ["WCO"],
                       "last_release": None, "created_at": "2026-01-01T00:00:00+00:00", "rows": 5}]
    assert metadata._inputs(Datasets(harmonized), {**panel, "snapshot": 1})[0]["snapshot"] == 2
    assert metadata._inputs(Datasets(harmonized), {**PANEL}) == []          # written without recorded inputs
