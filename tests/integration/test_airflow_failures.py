"""Failed tries of a hub DAG task, with real Airflow (`dag.test()`), the real broker and S3: each try's
failure is recorded in the catalog by the DAG's callbacks and `ioxhub status` shows it; a try that hangs
on an unresponsive broker ends at the task's execution_timeout."""
from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

from app.console import console, print_status
from app.demo import ensure_keys
from ioxhub.ingest.run import ingest
from producers import publish_dataset
from ioxhub.settings import get_settings, reset_settings_cache
from ioxhub.status import hub_status

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
MAPPING = {"indicator": "indicator", "ref_area": "ref_area", "period": "period", "value": "value", "unit": "unit"}


@pytest.fixture(scope="module")
def hub(provisioned_settings, airflow_db):
    ensure_keys(["WCO"], provisioned_settings)
    return provisioned_settings


def test_each_failed_try_of_the_ingest_is_recorded_and_shown_by_status(hub, run_dag, tmp_path, monkeypatch):
    ingest("datasets", idle_ms=1500)                       # what earlier tests left on the session broker
    csv = tmp_path / "retry.csv"
    csv.write_text("indicator,ref_area,period,value,unit\n" + "".join(f"WCO.RETRY_TEST,FRA,{y},{y},KG\n"
                                                                     for y in range(2018, 2023)))
    publish_dataset("WCO", "retry_test", [csv], MAPPING, settings=hub, progress=False)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()

    state, tasks, _ = run_dag("ingest_datasets", max_records=None, fail_before_commit=True)
    assert (state, tasks["ingest"]) == ("failed", "failed")

    tries = get_settings().task_retries + 1
    assert tries >= 2                                        # tests/conftest.py: one retry
    status = hub_status()
    mine = sorted((f for f in status["failures"] if f["dag_id"] == "ingest_datasets" and f["failed_at"] >= started),
                  key=lambda f: f["try_number"])
    assert [(f["task_id"], f["try_number"], f["outcome"]) for f in mine] == (
        [("ingest", n, "retrying") for n in range(1, tries)] + [("ingest", tries, "failed")])
    assert len({f["run_id"] for f in mine}) == 1 and mine[0]["run_id"].startswith("manual__")
    assert all(f["error"].startswith("InjectedFault: fault injected after the objects were written") for f in mine)

    monkeypatch.setattr(console, "width", 300)               # one line per row
    with console.capture() as printed:
        print_status(status)
    shown = [line for line in printed.get().splitlines() if mine[-1]["run_id"] in line]
    assert len(shown) == tries and all("InjectedFault: fault injected" in line for line in shown)

    # The next run (no fault) reads the uncommitted records again (the release, written before the fault,
    # counts as a duplicate), commits, and records no failure.
    state, tasks, run = run_dag("ingest_datasets", max_records=None, fail_before_commit=False)
    assert state == "success" and run["events"]["duplicate"] >= 2
    after = [f for f in hub_status()["failures"] if f["dag_id"] == "ingest_datasets" and f["failed_at"] >= started]
    assert len(after) == tries


def test_a_hung_broker_is_cut_by_the_task_timeout_and_recorded(hub, airflow_db, monkeypatch):
    """A broker that accepts connections and never answers: each try of the ingest ends at the task's
    execution_timeout (here 3 s) instead of waiting on the broker, and the run fails, recorded."""
    from airflow.dag_processing.dagbag import DagBag

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)                                          # the kernel accepts; nobody ever answers
    try:
        monkeypatch.setenv("IOXHUB_KAFKA_BOOTSTRAP", f"127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setenv("IOXHUB_TASK_TIMEOUT_MINUTES", "0.05")
        reset_settings_cache()
        dag = DagBag(str(get_settings().dags_dir)).dags["ingest_policies"]
        assert dag.task_dict["ingest"].execution_timeout == dt.timedelta(seconds=3)
        started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        clock = time.monotonic()
        run = dag.test(run_conf={"max_records": None, "fail_before_commit": False})
        elapsed = time.monotonic() - clock
    finally:
        silent.close()
        monkeypatch.undo()
        reset_settings_cache()
    assert str(run.state) == "failed"
    mine = sorted((f for f in hub_status()["failures"] if f["dag_id"] == "ingest_policies" and f["failed_at"] >= started),
                  key=lambda f: f["try_number"])
    tries = get_settings().task_retries + 1
    assert [(f["try_number"], f["outcome"]) for f in mine] == (
        [(n, "retrying") for n in range(1, tries)] + [(tries, "failed")])
    assert all(f["error"].startswith("AirflowTaskTimeout") for f in mine), [f["error"] for f in mine]
    assert elapsed < 60, elapsed                               # tries x 3 s, a retry delay, Airflow's own start-up
