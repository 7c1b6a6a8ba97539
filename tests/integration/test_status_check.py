"""`ioxhub status --check` as a monitor runs it, on the real broker and S3 (a bucket and consumer group of
its own): "ok" and exit 0 when healthy, else one line per problem and exit 1, the same as --json."""
from __future__ import annotations

import datetime as dt
import json
import os
import uuid

import pytest

from ioxhub.catalog import Catalog
from ioxhub.kafka import make_producer
from ioxhub.keys import generate_org_key, retire_key
from ioxhub.names import policies_topic
from ioxhub.settings import load_settings
from ioxhub.storage import ObjectStore
from ioxhub_cli import ioxhub

pytestmark = pytest.mark.integration


def test_check_is_ok_when_healthy_and_lists_each_problem(provisioned_settings):
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "IOXHUB_BUCKET": f"check-{tag}", "IOXHUB_CONSUMER_GROUP": f"check-{tag}",
           "IOXHUB_S3_ACCESS_KEY": provisioned_settings.s3_admin_access_key,
           "IOXHUB_S3_SECRET_KEY": provisioned_settings.s3_admin_secret_key}
    settings = load_settings({k: v for k, v in env.items() if k.startswith("IOXHUB_")})
    store = ObjectStore(settings)
    store.client.make_bucket(settings.bucket)

    healthy = ioxhub(env, "status", "--check", "--max-lag", str(10 ** 12))
    assert (healthy.returncode, healthy.stdout.strip()) == (0, "ok"), healthy.stderr

    catalog = Catalog(store)
    catalog.record_run("ingest_datasets", "r1", {"events": {"consumed": 10, "quarantined": 5}})
    catalog.record_failure({"dag_id": "ingest_policies", "run_id": "p1", "task_id": "ingest", "try_number": 2,
                            "outcome": "failed", "error": "Traceback...\nStorageError: s3 down",
                            "failed_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    producer = make_producer(provisioned_settings)      # a record the fresh group has not read: lag 1 at least
    producer.send(policies_topic("IMO"), key=b"IMO/check", value=b"not an event").get(timeout=30)
    producer.close()
    key = generate_org_key("IMO", f"IMO-ending-{tag}", settings=provisioned_settings)
    retire_key(key.key_id, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3), settings=provisioned_settings)
    try:
        sick = ioxhub(env, "status", "--check", "--max-lag", "0")
        assert sick.returncode == 1, sick.stderr
        lines = sick.stdout.strip().splitlines()
        checks = [line.split(":", 1)[0] for line in lines]
        assert checks.count("dag-failing") == 1 and checks.count("quarantine-rate") == 1 and "lag" in checks
        assert any(f"IMO-ending-{tag}" in line for line in lines if line.startswith("key-expiring"))
        assert any("StorageError: s3 down" in line for line in lines)
        as_json = ioxhub(env, "status", "--check", "--max-lag", "0", "--json")
        result = json.loads(as_json.stdout)
        assert as_json.returncode == 1 and result["ok"] is False and result["thresholds"]["max_lag"] == 0
        assert [p["check"] for p in result["problems"]] == checks
    finally:
        retire_key(key.key_id, settings=provisioned_settings)      # ends now: no longer "ending soon"
        key.path.unlink(missing_ok=True)


def test_status_without_a_broker_shows_the_rest_and_says_why_lag_is_missing(provisioned_settings):
    """The broker down is a fact to show, not a traceback: runs, staging and freshness still come from S3."""
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "IOXHUB_BUCKET": f"nobroker-{tag}", "IOXHUB_CONSUMER_GROUP": f"nobroker-{tag}",
           "IOXHUB_KAFKA_BOOTSTRAP": "127.0.0.1:9",          # the discard port: nothing listens there
           "IOXHUB_S3_ACCESS_KEY": provisioned_settings.s3_admin_access_key,
           "IOXHUB_S3_SECRET_KEY": provisioned_settings.s3_admin_secret_key}
    settings = load_settings({k: v for k, v in env.items() if k.startswith("IOXHUB_")})
    ObjectStore(settings).client.make_bucket(settings.bucket)
    Catalog(ObjectStore(settings)).record_run("ingest_datasets", "r1", {"events": {"consumed": 3}})

    as_json = ioxhub(env, "status", "--json")
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert status["lag"] == {} and status["lag_seconds"] == {}
    assert status["lag_error"].startswith("cannot read the topics' offsets: ")
    assert "ingest_datasets" in status["runs"]
    text = ioxhub(env, "status")
    assert text.returncode == 0 and "Traceback" not in text.stderr, text.stderr
    assert "cannot read the topics' offsets" in text.stdout and "ingest_datasets" in text.stdout
