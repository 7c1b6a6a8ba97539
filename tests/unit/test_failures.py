"""The failure document built from an Airflow callback context (the real callbacks run in
tests/integration/test_airflow_failures.py)."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from app.airflow_failures import ERROR_CHARS, failure_record

NOW = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.timezone.utc)
TI = SimpleNamespace(dag_id="ingest_datasets", task_id="ingest", run_id="manual__1", try_number=2, max_tries=3)


def test_task_failure_names_dag_task_run_try_and_exception():
    doc = failure_record({"ti": TI, "run_id": "manual__1", "exception": TimeoutError("poll hung")}, "retrying", NOW)
    assert doc == {"dag_id": "ingest_datasets", "task_id": "ingest", "run_id": "manual__1", "try_number": 2,
                   "max_tries": 3, "outcome": "retrying", "error": "TimeoutError: poll hung",
                   "failed_at": "2026-12-06T09:30:00+00:00"}


def test_run_failure_without_a_task_gives_the_reason():
    context = {"dag": SimpleNamespace(dag_id="derive_evidence"), "run_id": "asset_triggered__x", "reason": "timed_out"}
    doc = failure_record(context, "run-failed", NOW)
    assert (doc["dag_id"], doc["task_id"], doc["run_id"], doc["error"]) == (
        "derive_evidence", None, "asset_triggered__x", "run failed: timed_out")


def test_a_long_exception_text_is_bounded():
    doc = failure_record({"ti": TI, "exception": ValueError("x" * 10_000)}, "failed", NOW)
    assert len(doc["error"]) == ERROR_CHARS and doc["error"].startswith("ValueError: xxx")


def test_a_run_failed_by_its_task_is_left_to_the_task_callback(monkeypatch):
    from app import airflow_failures as failures

    recorded = []
    monkeypatch.setattr(failures, "record", lambda context, outcome: recorded.append((context["reason"], outcome)))
    failures.on_run_failure({"run_id": "r", "reason": "task_failure"})
    failures.on_run_failure({"run_id": "r", "reason": "timed_out"})
    assert recorded == [("timed_out", "run-failed")]


def test_recording_never_raises_when_the_catalog_cannot_be_written(monkeypatch, caplog):
    from app import airflow_failures as failures
    from ioxhub import catalog

    def refuse(self, document):
        raise OSError("S3 unreachable")

    monkeypatch.setattr(catalog.Catalog, "record_failure", refuse)
    monkeypatch.setattr("ioxhub.storage.ObjectStore.__init__", lambda self, *a, **k: None)
    failures.on_task_failure({"ti": TI, "exception": RuntimeError("boom")})
    assert "could not record this failure (failed) in the catalog" in caplog.text
