"""The hub DAGs as Airflow parses them carry the retry, backoff and timeout settings and the failure
callbacks (the callbacks' effect with real Airflow: tests/integration/test_airflow_failures.py)."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app import airflow_failures as failures
from ioxhub.settings import Settings, get_settings, reset_settings_cache

DAG_IDS = {"ingest_datasets", "ingest_policies", "derive_evidence", "maintain_tables"}


@pytest.fixture
def dag_bag(monkeypatch):
    """The dags/ folder parsed by Airflow's DagBag with non-default run settings in the environment."""
    from airflow.dag_processing.dagbag import DagBag

    for name, value in {"TASK_RETRIES": "4", "TASK_RETRY_DELAY_SECONDS": "7", "TASK_RETRY_BACKOFF": "3.5",
                        "TASK_MAX_RETRY_DELAY_SECONDS": "333", "TASK_TIMEOUT_MINUTES": "11",
                        "DAGRUN_TIMEOUT_MINUTES": "44"}.items():
        monkeypatch.setenv(f"IOXHUB_{name}", value)
    reset_settings_cache()
    bag = DagBag(str(get_settings().dags_dir))
    yield bag
    monkeypatch.undo()
    reset_settings_cache()


def test_every_task_retries_with_backoff_and_times_out(dag_bag):
    assert not dag_bag.import_errors, dag_bag.import_errors
    assert set(dag_bag.dags) == DAG_IDS
    for dag_id in DAG_IDS:
        dag = dag_bag.dags[dag_id]
        assert dag.dagrun_timeout == timedelta(minutes=44), dag_id
        assert dag.max_active_runs == 1
        assert dag.tasks, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.retries == 4, where
            assert task.retry_delay == timedelta(seconds=7), where
            assert task.retry_exponential_backoff == 3.5, where
            assert task.max_retry_delay == timedelta(seconds=333), where
            assert task.execution_timeout == timedelta(minutes=11), where


def test_every_dag_and_task_records_its_failures(dag_bag):
    for dag_id in DAG_IDS:
        dag = dag_bag.dags[dag_id]
        assert failures.on_run_failure in _callbacks(dag.on_failure_callback), dag_id
        for task in dag.tasks:
            assert failures.on_task_failure in _callbacks(task.on_failure_callback), task.task_id
            assert failures.on_task_retry in _callbacks(task.on_retry_callback), task.task_id


def test_defaults_let_every_try_run_before_the_run_times_out():
    """With the default settings a run that uses all its tries (each up to the task timeout) and waits
    the longest allowed between them still ends before dagrun_timeout fails it."""
    s = Settings()
    assert s.task_retries >= 1 and s.task_retry_backoff > 1
    worst = (s.task_retries + 1) * s.task_timeout_minutes * 60 + s.task_retries * s.task_max_retry_delay_seconds
    assert worst < s.dagrun_timeout_minutes * 60


def _callbacks(value) -> list:
    return value if isinstance(value, list) else [value]
