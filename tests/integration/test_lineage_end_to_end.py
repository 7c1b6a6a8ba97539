"""Lineage and metrics end to end: publish -> ingest (real Airflow) -> derive on the real broker and S3, then the
upstream graph of a curated dataset reaches this test's file and release, and the metrics have its counts.

The session's events file and textfiles are shared with the other tests: every check is on this test's own
dataset (a fresh id), its release and its run ids, or on differences of counters.
"""
from __future__ import annotations

import subprocess
import sys
import json
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.demo import ensure_keys
from consumers.evidence import derive_evidence
from ioxhub import lineage, metrics, metrics_exporter
from ioxhub.ingest.harmonized import dataset_name, observations_location
from ioxhub.ingest.run import InjectedFault, ingest
from ioxhub.names import datasets_topic
from ioxhub.lineage_graph import dataset_graph, sources
from producers import publish_dataset

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
MAPPING = {"indicator": "indicator", "ref_area": "ref_area", "period": "period", "value": "value", "unit": "unit"}


def value(text: str, name: str, **labels) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def runs_of(settings, job: str) -> dict[str, list[dict]]:
    by_run: dict[str, list[dict]] = {}
    for e in lineage.read_events(lineage.events_file(settings)):
        if e["job"]["name"] == job:
            by_run.setdefault(e["run"]["runId"], []).append(e)
    return by_run


def test_lineage_of_a_curated_dataset_reaches_the_file_and_release(provisioned_settings, run_dag, tmp_path):
    hub = provisioned_settings
    ensure_keys(["WCO"], hub)
    ingest("datasets", settings=hub, idle_ms=1500)                   # drain what other tests left
    dataset_id = f"lineage-{uuid.uuid4().hex[:6]}"
    csv = tmp_path / "feed.csv"
    csv.write_text("indicator,ref_area,period,value,unit\n"
                   + "".join(f"WCO.LINEAGE_TEST,FRA,{y},{y - 2000}.5,KG\n" for y in range(2018, 2024))
                   + "WCO.LINEAGE_TEST,Atlantis,2024,1.0,KG\n")
    before = metrics_exporter.exposition(hub, live=False)
    summary = publish_dataset("WCO", dataset_id, [csv], MAPPING, settings=hub, progress=False)
    assert summary.rows_sent == 6 and summary.rows_rejected == 1

    state, tasks, run = run_dag("ingest_datasets", max_records=None, fail_before_commit=False)
    assert state == "success" and tasks["ingest"] == "success"
    derived = derive_evidence(hub, force=True)
    assert "indicator_panel_annual" in derived["datasets"]

    # the graph: curated panel <- derive <- harmonized (this dataset) <- ingest <- topic <- publish <- the file
    tree = dataset_graph("indicator_panel_annual", hub)
    assert tree["version"] == str(derived["datasets"]["indicator_panel_annual"]["snapshot"])
    files, releases = sources(tree)
    assert str(csv.resolve()) in files and summary.release_id in releases
    cli = subprocess.run([sys.executable, "-m", "app.cli", "lineage", "indicator_panel_annual", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert sources(json.loads(cli.stdout)) == (files, releases)

    # the hub's ingest run ran inside the Airflow task: its parent is the task run the provider reported
    ingest_runs = [evs for evs in runs_of(hub, "ingest_datasets").values()
                   if any(o["name"] == observations_location(hub, "WCO", dataset_id) for e in evs for o in e.get("outputs", []))]
    assert len(ingest_runs) == 1
    events = ingest_runs[0]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    parent = events[-1]["run"]["facets"]["parent"]
    assert parent["job"]["name"] == "ingest_datasets.ingest"
    provider = runs_of(hub, "ingest_datasets.ingest").get(parent["run"]["runId"], [])
    assert {e["eventType"] for e in provider} >= {"START", "COMPLETE"}          # the provider's own task events
    (out,) = [o for o in events[-1]["outputs"] if o["name"] == observations_location(hub, "WCO", dataset_id)]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 6
    assert out["facets"]["ioxhub_releases"]["releases"][0]["releaseId"] == summary.release_id

    # the metrics: this run's counts on top of what the session had before
    after = metrics_exporter.exposition(hub)
    for name, labels, delta in (
            ("ioxhub_publish_rows_total", {"org": "WCO", "kind": "dataset"}, 6),
            ("ioxhub_publish_rows_rejected_total", {"org": "WCO", "kind": "dataset", "reason": "unknown-country"}, 1),
            ("ioxhub_observations_harmonized_total", {"org": "WCO", "dataset": dataset_id}, 6),
            ("ioxhub_ingest_events_total", {"kind": "datasets", "outcome": "applied"}, run["events"]["applied"]),
            ("ioxhub_runs_total", {"job": "derive_evidence", "outcome": "success"}, 1)):
        assert value(after, name, **labels) - value(before, name, **labels) == delta, name
    assert value(after, "ioxhub_exporter_errors", source="kafka") == 0
    assert 0 <= value(after, "ioxhub_dataset_freshness_seconds", dataset=dataset_name("WCO", dataset_id)) < 600
    for gauge in ("ioxhub_topic_lag_records", "ioxhub_topic_lag_seconds"):
        assert any(s.name == gauge and s.labels["topic"] == datasets_topic("WCO")
                   for f in text_string_to_metric_families(after) for s in f.samples), gauge
    assert value(after, "ioxhub_topic_lag_seconds", kind="datasets", topic=datasets_topic("WCO")) == 0   # caught up


def test_a_failed_ingest_emits_fail_and_counts_a_failed_run(provisioned_settings):
    hub = provisioned_settings
    before = value(metrics_exporter.exposition(hub, live=False), "ioxhub_runs_total", job="ingest_policies", outcome="failure")
    known = set(runs_of(hub, "ingest_policies"))
    with pytest.raises(InjectedFault):
        ingest("policies", settings=hub, idle_ms=500, fail_before_commit=True)
    (new,) = [evs for run_id, evs in runs_of(hub, "ingest_policies").items() if run_id not in known]
    assert [e["eventType"] for e in new] == ["START", "FAIL"]
    assert "InjectedFault" in new[-1]["run"]["facets"]["errorMessage"]["message"]
    after = value(metrics_exporter.exposition(hub, live=False), "ioxhub_runs_total", job="ingest_policies", outcome="failure")
    assert after == before + 1
