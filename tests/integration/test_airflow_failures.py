"""Failed tries of a hub DAG task, with real Airflow (`dag.test()`), the real broker and S3: each try's
failure is recorded in the catalog by the DAG's callbacks and `ioxhub status` shows it."""
from __future__ import annotations

import datetime as dt

import pytest

from ioxhub.console import console, print_status
from ioxhub.demo import ensure_keys
from ioxhub.ingest.run import ingest
from ioxhub.producers import publish_dataset
from ioxhub.settings import get_settings
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
