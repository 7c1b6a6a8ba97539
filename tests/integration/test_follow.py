"""`ioxhub ingest --follow` with the real broker and the real S3 server: releases published while it runs
are applied (and its metrics served), a SIGTERM mid-stream loses and doubles nothing, an S3 outage is retried, one run at a time
(the lease), freshness in `ioxhub status`.

Every test first drains what earlier tests left on the shared session broker, so its counts are its own.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest

from app.demo import ensure_keys
from ioxhub.ingest.lease import lease_key
from ioxhub.ingest.run import follow, ingest
from ioxhub.stack import process
from ioxhub.status import hub_status
from ioxhub.storage import ObjectStore
import hub_tables
from producers import publish_dataset

pytestmark = [pytest.mark.integration]
IOXHUB = str(Path(sys.executable).parent / "ioxhub")
MAPPING = {"indicator": "indicator", "ref_area": "ref_area", "period": "period", "value": "value", "unit": "unit"}


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys(["WCO", "WHO"], provisioned_settings)
    ingest("datasets", idle_ms=1000)
    ingest("policies", idle_ms=1000)
    return provisioned_settings


def publish(settings, tmp_path: Path, org: str, dataset: str, years: range, countries=("FRA", "DEU")):
    """A small release of `dataset`; returns its observation count and chunk count."""
    path = tmp_path / f"{dataset}-{uuid.uuid4().hex[:6]}.csv"
    rows = [f"{org}.FOLLOW,{c},{y},{y - 2000},KG" for y in years for c in countries]
    path.write_text("indicator,ref_area,period,value,unit\n" + "\n".join(rows) + "\n")
    sent = publish_dataset(org, dataset, [path], MAPPING, settings=settings, progress=False)
    return sent.rows_sent, sent.chunks


def harmonized_rows(org: str, dataset: str, store: ObjectStore | None = None) -> tuple[int, int]:
    """(rows, distinct (ref_area, period)) of a harmonized dataset."""
    store = store or ObjectStore()
    current = hub_tables.current_rows(org, dataset, settings=store.settings)
    tables = [current] if current is not None else []
    keys = {(a, p) for t in tables for a, p in zip(t["ref_area"].to_pylist(), t["period"].to_pylist())}
    return sum(t.num_rows for t in tables), len(keys)


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := check()):
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {check}")


def test_follow_applies_a_release_published_after_it_started_and_holds_the_lease(hub, tmp_path):
    stop = threading.Event()
    batches: list[dict] = []
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(follow("datasets", stop=stop, on_batch=batches.append)))
    worker.start()
    try:
        store = ObjectStore()                                      # follow holds the lease, polls, nothing to read yet
        wait_for(lambda: (store.get_json(lease_key("datasets")) or {}).get("expires_at", 0) > time.time(), timeout=30)
        busy = ingest("datasets", idle_ms=500)                     # a batch run meanwhile reads nothing
        assert busy["busy"].startswith("follow pid") and busy["events"]["consumed"] == 0
        dataset = f"follow_{uuid.uuid4().hex[:6]}"
        rows, chunks = publish(hub, tmp_path, "WCO", dataset, range(2010, 2020))
        assert wait_for(lambda: harmonized_rows("WCO", dataset)[0] == rows, timeout=30)
    finally:
        stop.set()
        worker.join(60)
    assert not worker.is_alive()
    assert sum(b["events"]["applied"] for b in batches) == chunks + 1          # the chunks and the manifest
    assert result["consumed"] == sum(b["events"]["consumed"] for b in batches) == result["applied"]
    assert ingest("datasets", idle_ms=500)["events"]["consumed"] == 0          # lease released, all committed


def test_sigterm_mid_stream_then_a_batch_run_accounts_for_every_event_once(hub, tmp_path):
    env = {**os.environ, "IOXHUB_FOLLOW_IDLE_MS": "200", "IOXHUB_FOLLOW_BATCH_SECONDS": "0.5"}
    metrics_port = process.free_ports(1)[0]
    proc = subprocess.Popen([IOXHUB, "ingest", "datasets", "--follow", "--json", "--metrics-port", str(metrics_port)],
                            env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    lines: list[dict] = []
    reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stdout))
    reader.start()
    tag = uuid.uuid4().hex[:6]
    published = {}
    try:
        for i in range(6):                                         # releases keep arriving while it stops
            dataset = f"sigterm_{tag}_{i}"
            published[dataset] = publish(hub, tmp_path, "WHO", dataset, range(2000, 2000 + 5 + i),
                                         countries=("FRA", "DEU", "ITA", "ESP"))
            if i == 3:
                wait_for(lambda: any(e["event"] == "batch" for e in list(lines)), timeout=30)
                # the follow process serves the metrics while it runs: its batches' counts are there
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
                    exposition = response.read().decode()
                assert 'ioxhub_ingest_events_total{kind="datasets",outcome="applied"}' in exposition, exposition[:2000]
                proc.send_signal(signal.SIGTERM)
    finally:
        code = proc.wait(60)
        reader.join(10)
    assert code == 0, proc.stderr.read()[-2000:]
    assert lines[-1]["event"] == "stopped"
    followed = [e for e in lines if e["event"] == "batch"]
    after = ingest("datasets", idle_ms=1000)
    consumed = sum(b["events"]["consumed"] for b in followed) + after["events"]["consumed"]
    applied = sum(b["events"]["applied"] for b in followed) + after["events"]["applied"]
    events = sum(chunks + 1 for _, chunks in published.values())
    assert consumed == applied == events                            # nothing lost, nothing read twice
    assert lines[-1]["consumed"] == sum(b["events"]["consumed"] for b in followed)
    for dataset, (rows, _) in published.items():
        assert harmonized_rows("WHO", dataset) == (rows, rows)      # every row once


def test_status_shows_lag_in_seconds_and_freshness_per_dataset(hub, tmp_path):
    dataset = f"fresh_{uuid.uuid4().hex[:6]}"
    publish(hub, tmp_path, "WCO", dataset, range(2015, 2018))
    time.sleep(1.2)
    waiting = hub_status()
    assert waiting["lag"]["datasets"]["ioxhub.wco.datasets"] >= 2
    assert waiting["lag_seconds"]["datasets"]["ioxhub.wco.datasets"] >= 1.0
    assert waiting["lag_seconds"]["datasets"]["ioxhub.who.datasets"] is None
    assert dataset not in {d["dataset"] for d in waiting["freshness"]}

    ingest("datasets", idle_ms=1000)
    status = hub_status()
    assert status["lag"]["datasets"]["ioxhub.wco.datasets"] == 0
    assert status["lag_seconds"]["datasets"]["ioxhub.wco.datasets"] is None
    entry = {d["dataset"]: d for d in status["freshness"]}[f"WCO.{dataset}"]
    assert 0 <= entry["age_seconds"] < 60

    shown = subprocess.run([IOXHUB, "status"], env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert shown.returncode == 0, shown.stderr
    assert "freshness" in shown.stdout and f"WCO.{dataset}" in shown.stdout and "oldest unread" in shown.stdout


def test_conditional_puts_refuse_a_second_creator_and_a_stale_etag(hub):
    store = ObjectStore()
    key = f"catalog/leases/test_{uuid.uuid4().hex[:6]}.json"
    first = store.put_if(key, b"{}", None)
    assert first and store.put_if(key, b'{"b": 1}', None) is None          # exists: a second creator loses
    second = store.put_if(key, b'{"a": 1}', first)
    assert second and second != first
    assert store.put_if(key, b'{"c": 1}', first) is None                    # stale ETag: refused
    assert store.get_with_etag(key) == (b'{"a": 1}', second)


def test_follow_with_derive_updates_the_curated_datasets_after_a_new_release(hub, tmp_path):
    from consumers.evidence import last_derivation

    proc = subprocess.Popen([IOXHUB, "ingest", "datasets", "--follow", "--derive", "--json"], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    store = ObjectStore()
    try:
        wait_for(lambda: (store.get_json(lease_key("datasets")) or {}).get("expires_at", 0) > time.time(), timeout=30)
        dataset = f"derived_{uuid.uuid4().hex[:6]}"
        publish(hub, tmp_path, "WCO", dataset, range(2012, 2016))
        wait_for(lambda: f"WCO.{dataset}" in (last_derivation(hub) or {}).get("inputs", {}), timeout=120)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["event"] for e in events].count("derive") >= 1 and events[-1]["derivations"] >= 1


def test_follow_survives_an_s3_outage_and_applies_what_came_meanwhile_once(tmp_path):
    """A hub of its own (the session's S3 server stays up): SIGKILL SeaweedFS under a running follow process,
    publish, start it again; the batch that met the outage is retried from the committed offsets."""
    from ioxhub.provision.apply import provision
    from ioxhub.settings import reset_settings_cache
    from ioxhub.stack import local, process, seaweedfs
    from ioxhub.stack.airflow import ioxhub_env

    session_env = dict(os.environ)      # up_on_free_ports points this process's environment at the new hub
    try:
        settings = local.up_on_free_ports(local.isolated_env(tmp_path / "data"), broker_storage="memory")
    finally:
        os.environ.clear()
        os.environ.update(session_env)
        reset_settings_cache()
    proc = None
    try:
        provision(settings)
        ensure_keys(["WCO"], settings)
        env = {**local.isolated_env(tmp_path / "data"), **ioxhub_env(settings), "IOXHUB_FOLLOW_IDLE_MS": "200"}
        proc = subprocess.Popen([IOXHUB, "ingest", "datasets", "--follow", "--json"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL, cwd=Path(__file__).parents[2])
        lines: list[dict] = []
        reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in proc.stdout))
        reader.start()
        store = ObjectStore(settings)
        wait_for(lambda: (store.get_json(lease_key("datasets")) or {}).get("expires_at", 0) > time.time(), timeout=30)
        before = publish(settings, tmp_path, "WCO", "outage_before", range(2001, 2006))
        wait_for(lambda: any(e["event"] == "batch" for e in list(lines)), timeout=30)

        pid = process.read_record(settings.data_dir, seaweedfs.NAME).pid
        os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).wait(timeout=10)           # reaped (this process started it)
        during = publish(settings, tmp_path, "WCO", "outage_during", range(2001, 2009))
        wait_for(lambda: any(e["event"] == "retry" for e in list(lines)), timeout=60)
        seaweedfs.stop(settings)
        seaweedfs.start(settings)
        wait_for(lambda: sum(e["events"]["consumed"] for e in list(lines) if e["event"] == "batch")
                 == before[1] + 1 + during[1] + 1, timeout=120)
        rows = {d: harmonized_rows(d[0], d[1], store) for d in (("WCO", "outage_before"), ("WCO", "outage_during"))}
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(60)
            reader.join(10)
        local.down(settings)
    assert code == 0, proc.stderr.read()[-2000:]
    batches = [e for e in lines if e["event"] == "batch"]
    assert sum(b["events"]["applied"] for b in batches) == before[1] + 1 + during[1] + 1
    assert lines[-1]["event"] == "stopped" and lines[-1]["consumed"] == before[1] + 1 + during[1] + 1
    assert rows == {("WCO", "outage_before"): (before[0], before[0]), ("WCO", "outage_during"): (during[0], during[0])}
