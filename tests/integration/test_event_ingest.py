"""Event-triggered ingest with real Airflow standalone (scheduler, triggerer, ...), a real broker and a real
S3 server, on a hub of its own: publishing a release starts an ingest run with no manual trigger and its
rows land in harmonized/; a burst of releases published while that run works starts exactly one more run;
`ioxhub status` says the triggers are live. Slow (Airflow standalone, ~1-2 min)."""
from __future__ import annotations

import datetime as dt
import json
import time
import urllib.error

import pytest

from app.demo import ensure_keys
from ioxhub.catalog import Catalog
from ioxhub.ingest.watch import OffsetWatch
from ioxhub.settings import load_settings
from ioxhub.stack.airflow import Api
from ioxhub.storage import ObjectStore
import hub_tables
from ioxhub_cli import cli_env, ioxhub
from producers import publish_dataset
from producers.mapping import ColumnMapping
from producers.samples import generate

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
DAG = "ingest_datasets"
BURST = 4


def _runs(api: Api, since: str) -> list[dict]:
    try:
        return api.get(f"dags/{DAG}/dagRuns", run_after_gte=since, limit=100, order_by="run_after")["dag_runs"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:                       # the DAG is not parsed yet
            return []
        raise


def _queued_events(api: Api) -> int:
    try:
        return api.get(f"dags/{DAG}/assets/queuedEvents")["total_entries"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return 0
        raise


def _until(check, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(1)
    return found


def test_a_release_starts_an_ingest_run_and_a_burst_during_it_one_more(tmp_path):
    env = cli_env(tmp_path / "data", IOXHUB_TRIGGER_POLL_SECONDS="1", IOXHUB_TASK_RETRIES="0")
    try:
        for args in (("stack", "up", "--airflow"), ("provision",)):
            done = ioxhub(env, *args, timeout=600)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        settings = load_settings({k: v for k, v in env.items() if k.startswith("IOXHUB_")})
        ensure_keys(["IMO"], settings)
        samples = tmp_path / "samples"
        [feed] = [f for f in generate(samples).files if f.dataset_id == "IMO-PORT-CALLS"]
        mapping = ColumnMapping.from_file(samples / feed.mapping)

        def publish(suffix: str) -> str:
            dataset_id = f"{feed.dataset_id}-{suffix}"
            publish_dataset(feed.org, dataset_id, [samples / feed.path], mapping, settings=settings, progress=False)
            return dataset_id

        api = Api(settings)
        since = dt.datetime.now(dt.timezone.utc).isoformat()
        first = publish("a")                                       # no trigger call anywhere: the event starts it
        run = _until(lambda: [r for r in _runs(api, since) if r["state"] == "running"], 300, "a run to start")[0]
        assert run["run_type"] == "asset_triggered" and run["triggered_by"] == "asset"

        burst = [publish(f"b{i}") for i in range(BURST)]            # while the first run works
        assert _runs(api, since)[0]["state"] == "running", "the burst came after the first run: nothing to show"
        with OffsetWatch(settings, "datasets") as watch:
            _until(lambda: not watch.snapshot().lag() and not _queued_events(api)
                   and all(r["state"] not in ("queued", "running") for r in _runs(api, since)), 300, "runs to settle")
            time.sleep(5)                                           # a few trigger polls and scheduler loops later:
            runs = _runs(api, since)
            assert not watch.snapshot().lag() and not _queued_events(api)
        assert [(r["run_type"], r["state"]) for r in runs] == [("asset_triggered", "success")] * 2, runs

        store = ObjectStore(settings)
        for dataset_id in [first, *burst]:
            assert hub_tables.rows_count(feed.org, dataset_id, settings) > 0, dataset_id
        recorded = Catalog(store).runs(DAG, since[:19])
        assert sum(r["events"]["applied"] for r in recorded) == sum(r["events"]["consumed"] for r in recorded) > 0

        done = ioxhub(env, "status", "--json", timeout=120)
        assert done.returncode == 0, done.stderr
        triggers = json.loads(done.stdout)["triggers"]
        assert triggers["live"] and triggers["triggerer"]["status"] == "healthy", triggers
        assert triggers["watchers"]["datasets"]["last_event"] and triggers["watchers"]["policies"]["registered"]
    finally:
        down = ioxhub(env, "stack", "down", timeout=180)
        assert down.returncode == 0, down.stderr
