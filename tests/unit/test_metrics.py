"""Metrics textfiles: counters add up over runs, gauges hold the last run, the exposition merges the files."""
from __future__ import annotations

import dataclasses
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ioxhub import metrics, metrics_exporter
from ioxhub.settings import load_settings


@pytest.fixture()
def settings(tmp_path):
    return dataclasses.replace(load_settings({}), data_dir=tmp_path)


def value(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def ingest_summary(consumed: int, applied: int, quarantined: int, seconds: float) -> dict:
    return {"kind": "datasets", "seconds": seconds,
            "events": {"consumed": consumed, "applied": applied, "staged": 0, "duplicate": 0, "quarantined": quarantined}}


def test_counters_add_up_over_runs_and_gauges_keep_the_last(settings):
    for seconds, refused in ((2.5, 3), (1.0, 4)):
        metrics.record_ingest(settings, ingest_summary(10, 9, 1, seconds), consumed_by_org={"WCO": 10},
                              applied_by_org={"WCO": 9}, quarantined=[("WCO", "not-avro", 1)],
                              harmonized=[("WCO", "seizures", 100)], refused=[("WCO", "unknown-country", refused)])
    text = metrics.textfile(settings, "ingest_datasets").read_text()
    assert value(text, "ioxhub_ingest_events_total", kind="datasets", outcome="consumed") == 20
    assert value(text, "ioxhub_ingest_org_events_total", org="WCO", outcome="quarantined") == 2
    assert value(text, "ioxhub_ingest_events_quarantined_total", org="WCO", reason="not-avro") == 2
    assert value(text, "ioxhub_observations_harmonized_total", org="WCO", dataset="seizures") == 200
    assert value(text, "ioxhub_observations_refused_total", org="WCO", reason="unknown-country") == 7
    assert value(text, "ioxhub_runs_total", job="ingest_datasets", outcome="success") == 2
    assert value(text, "ioxhub_run_duration_seconds", job="ingest_datasets") == 1.0
    assert value(text, "ioxhub_run_seconds_total", job="ingest_datasets") == 3.5


def test_exposition_merges_the_jobs_textfiles(settings):
    metrics.record_publish(settings, kind="dataset", org="WHO", rows=5, bytes_sent=300, bytes_read=900,
                           rejected_by_reason={"bad-period": 1}, seconds=0.2)
    metrics.record_failure(settings, "derive_evidence", 4.0)
    metrics.record_derive(settings, {"seconds": 3.0, "datasets": {"impact_did": {"rows": 42, "snapshot": 2}}})
    text = metrics_exporter.exposition(settings, live=False)
    assert value(text, "ioxhub_publish_rows_total", org="WHO", kind="dataset") == 5
    assert value(text, "ioxhub_publish_rows_rejected_total", reason="bad-period") == 1
    assert value(text, "ioxhub_runs_total", job="derive_evidence", outcome="failure") == 1
    assert value(text, "ioxhub_runs_total", job="derive_evidence", outcome="success") == 1
    assert value(text, "ioxhub_curated_rows", dataset="impact_did") == 42
    assert value(text, "ioxhub_run_duration_seconds", job="publish_dataset") == 0.2
    assert {s["name"] for s in metrics_exporter.samples(settings, live=False)} >= {"ioxhub_publish_bytes_total", "ioxhub_curated_rows"}


def test_live_gauges_report_their_source_down_instead_of_failing(settings):
    # The catalog is the Iceberg SQL catalog (here a Postgres nobody listens to) and the bucket.
    down = dataclasses.replace(settings, kafka_bootstrap="127.0.0.1:9", s3_endpoint="127.0.0.1:9",
                               iceberg_catalog_uri="postgresql+psycopg2://hub:unused@127.0.0.1:9/iceberg",
                               orgs_file=settings.orgs_file)
    text = metrics_exporter.exposition(down, timeout=0.5)
    assert value(text, "ioxhub_exporter_errors", source="catalog") == 1
    assert value(text, "ioxhub_exporter_errors", source="kafka") == 1


def test_unknown_metric_or_labels_are_refused():
    u = metrics.Update()
    with pytest.raises(KeyError, match="unknown metric"):
        u.add("ioxhub_nope", 1, job="x")
    with pytest.raises(KeyError, match="takes labels"):
        u.add("ioxhub_runs", 1, job="x")


def test_a_textfile_that_cannot_be_written_does_not_raise(settings, caplog):
    (settings.data_dir / "metrics").write_text("a file where the folder should be")
    metrics.record_failure(settings, "publish_dataset", 1.0)
    assert "could not write" in caplog.text


def test_serve_metrics_answers_on_http_with_the_textfiles(settings):
    metrics.record_failure(settings, "ingest_datasets", 2.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server, thread = metrics_exporter.serve_metrics(port, settings, live=False)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        server.shutdown()
    assert value(text, "ioxhub_runs_total", job="ingest_datasets", outcome="failure") == 1
