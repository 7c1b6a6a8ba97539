"""`ioxhub replay` on the real broker and S3: after a units code-list fix exactly the affected rows change; a
second replay writes nothing; a rule that refuses rows (an areas table without two countries) takes them
out of the current table and the old rule brings them back; replay and ingest keep out of each other's way (the ingest lease)."""
from __future__ import annotations

import dataclasses
import json
import os
import uuid

import pyarrow as pa
import pytest

from app.demo import ensure_keys
from ioxhub.catalog import Catalog
from ioxhub.harmonize import countries, units
from ioxhub.ingest.letters import read_letters
from ioxhub.ingest.lease import Lease, LeaseHeld
from ioxhub.ingest.replay import ReplayError, replay
from ioxhub.ingest.run import ingest
from ioxhub.lineage import events_file
from ioxhub.ingest.markers import release_applied
from ioxhub.storage import ObjectStore, quarantine_rows_key
import hub_tables
from ioxhub_cli import ioxhub
from producers import publish_dataset

pytestmark = pytest.mark.integration

MAPPING = {"indicator": "IND", "ref_area": "AREA", "counterpart_area": "PARTNER", "commodity": "HS",
           "period": "PERIOD", "value": "VALUE", "unit": "UNIT", "title": "Seizures"}
ROWS = ["SEIZ,FRA,,3825,2023,1.5,KG", "SEIZ,DEU,,3825,2023,2,T", "SEIZ,ITA,,3825,2024,3,KG",
        "SEIZ,ESP,,3825,2024,4,T", "SEIZ,PRT,,3825,2024,5,KG"]


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys(["WCO"], provisioned_settings)
    return provisioned_settings


def current(store: ObjectStore, dataset_id: str) -> dict[str, tuple]:
    table = hub_tables.current_rows("WCO", dataset_id, settings=store.settings)
    return {r["ref_area"]: (r["value"], r["unit"], r["release_id"]) for r in table.to_pylist()}


def _forget_rules() -> None:
    for cached in (units._code_lists, units._base_units, units.canonical_units, units.canonical_unit,
                   countries._tables, countries._other_areas, countries.harmonize_area, countries.harmonize_country):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()
    for codebook in (units.CODEBOOK, countries.CODEBOOK, countries.AREA_CODEBOOK):
        codebook.reset()


def patch_tonne(monkeypatch, exp10: int) -> None:
    """A units code-list change, test-only: the spelling T scaled by 10^exp10; the caches of the rule cleared."""
    lists = {name: dict(codes) for name, codes in units._code_lists.__wrapped__().items()}
    lists["hub_spellings.csv"]["T"] = lists["hub_spellings.csv"]["T"]._replace(exp10=exp10)
    monkeypatch.setattr(units, "_code_lists", lambda: lists)
    _forget_rules()


def patch_without(monkeypatch, dropped: set[str]) -> None:
    """An areas-table change, test-only: the countries `dropped` no longer known (their rows refused)."""
    codes, names = countries._tables.__wrapped__()
    kept = ({k: v for k, v in codes.items() if v not in dropped}, {k: v for k, v in names.items() if v not in dropped})
    monkeypatch.setattr(countries, "_tables", lambda: kept)
    _forget_rules()


@pytest.fixture
def restore_units(monkeypatch):
    yield
    monkeypatch.undo()           # the tables as they were, then their caches forgotten
    _forget_rules()


def test_replay_changes_exactly_the_affected_rows_and_is_idempotent(hub, tmp_path, monkeypatch, restore_units):
    ingest("datasets", idle_ms=1500)
    dataset_id = f"REPLAY-{uuid.uuid4().hex[:6]}"
    csv = tmp_path / "seizures.csv"
    csv.write_text("IND,AREA,PARTNER,HS,PERIOD,VALUE,UNIT\n" + "\n".join(ROWS) + "\n")
    published = publish_dataset("WCO", dataset_id, [csv], MAPPING, settings=hub, max_chunk_observations=2)
    assert published.rows_sent == 5
    ingest("datasets", idle_ms=1500)
    store = ObjectStore(hub)
    before = current(store, dataset_id)
    assert before["DEU"][:2] == (2000.0, "KG") and before["FRA"][:2] == (1.5, "KG")
    snapshot = Catalog(store).dataset(f"WCO.{dataset_id}")["snapshot"]

    done = ioxhub(dict(os.environ), "replay", "--org", "WCO", "--dataset", dataset_id, "--json")   # rules unchanged
    assert done.returncode == 0, done.stderr
    untouched = json.loads(done.stdout)
    assert untouched["releases"] == {"selected": 1, "replayed": 0, "unchanged": 1, "skipped": 0}
    assert untouched["by_release"][0]["status"] == "unchanged"
    assert untouched["raw_objects"] and all(k.startswith("raw/org=WCO/topic=ioxhub.wco.datasets/") for k in untouched["raw_objects"])
    bad = ioxhub(dict(os.environ), "replay", "--org", "WCO", "--dataset", dataset_id, "--since", "yesterday")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --since 'yesterday'") and "Traceback" not in bad.stderr
    assert Catalog(store).dataset(f"WCO.{dataset_id}")["snapshot"] == snapshot

    patch_tonne(monkeypatch, 6)
    fixed = replay("WCO", dataset_id, settings=hub, run_id="replay-test")
    assert fixed["releases"]["replayed"] == 1
    assert fixed["observations"] == {"added": 0, "changed": 2, "removed": 0, "refused_before": 0, "refused_after": 0}
    after = current(store, dataset_id)
    assert {area for area in after if after[area] != before[area]} == {"DEU", "ESP"}
    assert after["DEU"][:2] == (2_000_000.0, "KG") and after["ESP"][:2] == (4_000_000.0, "KG")
    assert len(after) == len(before) == 5
    history = hub_tables.history_rows("WCO", dataset_id, published.release_id)
    assert sorted(history.column("value").to_pylist()) == [1.5, 3.0, 5.0, 2_000_000.0, 4_000_000.0]
    assert Catalog(store).last_runs()["replay"]["run_id"] == "replay-test"
    marker = release_applied(Catalog(store), "WCO", dataset_id, published.release_id)
    assert marker["replays"] == 1 and marker["replay_changed"] == 2 and marker["harmonized"] == 5
    # recorded in lineage: the raw/ objects in, the harmonized dataset with the re-applied release out
    events = [json.loads(line) for line in events_file(hub).read_text().splitlines()]
    done = [e for e in events if e["job"]["name"] == "replay" and e["eventType"] == "COMPLETE"][-1]
    assert done["inputs"] and all(i["name"].startswith("raw/") for i in done["inputs"])
    assert [r["releaseId"] for r in done["outputs"][0]["facets"]["ioxhub_releases"]["releases"]] == [published.release_id]

    snapshot = Catalog(store).dataset(f"WCO.{dataset_id}")["snapshot"]
    again = replay("WCO", dataset_id, settings=hub)
    assert again["releases"]["unchanged"] == 1 and again["releases"]["replayed"] == 0
    assert current(store, dataset_id) == after
    assert Catalog(store).dataset(f"WCO.{dataset_id}")["snapshot"] == snapshot

    monkeypatch.undo()
    patch_without(monkeypatch, {"DEU", "ESP"})    # a rule that refuses the T rows: they leave the current table
    refusing = replay("WCO", dataset_id, settings=hub)
    assert refusing["observations"] == {"added": 0, "changed": 0, "removed": 2, "refused_before": 0, "refused_after": 2}
    assert set(current(store, dataset_id)) == {"FRA", "ITA", "PRT"}
    assert store.read_parquet(quarantine_rows_key("WCO", dataset_id, published.release_id)).num_rows == 2
    assert Catalog(store).dataset(f"WCO.{dataset_id}")["rows"] == 3
    assert refusing["dead_letters"] == 2            # one per chunk event holding a refused row, as the ingest writes
    letters = [l for l in read_letters(store, org="WCO", reason="unknown-country") if l["event_id"] in published.event_ids]
    assert sorted(l["observations"] for l in letters) == [1, 1] and not any(l["retryable"] for l in letters)
    monkeypatch.undo()                      # the tables as they were (T scaled by 10^3): the rows are back
    patch_tonne(monkeypatch, 3)
    back = replay("WCO", dataset_id, settings=hub)
    assert back["observations"] == {"added": 2, "changed": 0, "removed": 0, "refused_before": 2, "refused_after": 0}
    assert current(store, dataset_id) == before
    assert not store.exists(quarantine_rows_key("WCO", dataset_id, published.release_id))


def test_replay_and_ingest_keep_out_of_a_held_lease_and_a_bad_range_is_refused(hub):
    store = ObjectStore(hub)
    live = Lease(store, "datasets", "a live ingest", hub.ingest_lease_seconds)
    assert live.acquire()
    try:
        with pytest.raises(LeaseHeld, match="held by a live ingest"):
            replay("WCO", "ANY", settings=dataclasses.replace(hub, lock_wait_seconds=0.5))
        busy = ingest("datasets", settings=hub, idle_ms=200)
        assert "a live ingest" in busy["busy"] and busy["events"]["consumed"] == 0
    finally:
        live.release()
    with pytest.raises(ReplayError, match="is after --last-offset"):
        replay("WCO", "ANY", settings=hub, first_offset=5, last_offset=1)
    with pytest.raises(ReplayError, match="not in"):
        replay("NOPE", "ANY", settings=hub)
