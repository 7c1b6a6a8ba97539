"""A dataset's description (consumers/metadata.py), the one the API's dataset document and the portal's dataset
page both show: columns documented, snapshots an as-of may name, provenance. The catalog is a dict store."""
from __future__ import annotations

import json

from consumers import metadata
from ioxhub.catalog import dataset_key
from test_apikeys import DictStore

HARMONIZED = {"name": "WCO.SEIZURES", "kind": "harmonized", "org": "WCO", "dataset_id": "seizures", "snapshot": 2,
              "location": "harmonized/observations/org=WCO/dataset=seizures/", "title": "Hazardous waste seizures",
              "publishers": ["WCO"], "updated_at": "2026-01-02T00:00:00+00:00",
              "columns": ["indicator:large_string", "value:double", "year:int (path)", "odd_one:string"],
              "snapshots": [{"snapshot": 1, "created_at": "2026-01-01T00:00:00+00:00", "rows": 5},
                            {"snapshot": 2, "created_at": "2026-01-02T00:00:00+00:00", "rows": 7}]}
PANEL = {"name": "indicator_panel_annual", "kind": "curated", "snapshot": 2,
         "location": "curated/indicator_panel_annual/snapshot=000002/", "publishers": ["WCO"],
         "columns": ["ref_area:string"],
         "snapshots": [{"snapshot": 1, "created_at": "2026-01-01T00:00:00+00:00", "rows": 3},
                       {"snapshot": 2, "created_at": "2026-01-02T00:00:00+00:00", "rows": 4}]}


def catalog(*entries) -> DictStore:
    store = DictStore()
    for entry in entries:
        store.put_json(dataset_key(entry["name"]), entry)
    return store


def test_columns_are_documented_and_partition_columns_marked():
    assert metadata.columns(HARMONIZED) == [
        {"name": "indicator", "type": "large_string", "partition": False, "doc": metadata.COLUMN_DOCS["indicator"]},
        {"name": "value", "type": "double", "partition": False, "doc": metadata.COLUMN_DOCS["value"]},
        {"name": "year", "type": "int", "partition": True, "doc": metadata.COLUMN_DOCS["year"]},
        {"name": "odd_one", "type": "string", "partition": False, "doc": ""}]
    assert metadata.column_names(HARMONIZED) == ["indicator", "value", "year", "odd_one"]


def test_as_of_may_name_every_curated_snapshot_but_only_a_harmonized_datasets_current_one():
    assert [s["pullable"] for s in metadata.snapshots(PANEL)] == [True, True]
    assert [s["pullable"] for s in metadata.snapshots(HARMONIZED)] == [False, True]


def test_descriptions_and_zones():
    assert metadata.description(HARMONIZED) == "Hazardous waste seizures"
    assert metadata.description(PANEL) == metadata.CURATED_DESCRIPTIONS["indicator_panel_annual"]
    assert "WHO" in metadata.description({"name": "WHO.X", "kind": "harmonized", "org": "WHO", "dataset_id": "x"})
    assert (metadata.dataset_zone(HARMONIZED), metadata.dataset_zone(PANEL)) == ("harmonized", "curated")


def test_provenance_of_a_harmonized_dataset_is_its_releases_in_the_order_applied():
    store = catalog(HARMONIZED)
    prefix = "catalog/releases/org=WCO/dataset=seizures/"
    store.put_json(prefix + "release=r2.json", {"applied_at": "2026-01-02T00:00:00+00:00", "harmonized": 2})
    store.put_json(prefix + "release=r1.json", {"applied_at": "2026-01-01T00:00:00+00:00", "harmonized": 5})
    described = metadata.dataset_metadata("WCO.SEIZURES", store)
    assert [(r["release_id"], r["harmonized"]) for r in described["provenance"]["releases"]] == [("r1", 5), ("r2", 2)]
    assert described["provenance"]["inputs"] == [] and described["description"] == "Hazardous waste seizures"
    assert metadata.dataset_metadata("nope", store) is None


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
