"""`ioxhub provision` against the real local stack (SeaweedFS + tansu): idempotent, topics as declared,
and the analyst's storage identity confined to curated/ and the catalog, read-only."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from minio.error import S3Error

from consumers.access import list_datasets
from ioxhub.kafka import make_admin
from ioxhub.orgs import load_orgs
from ioxhub.provision.apply import provision
from ioxhub.s3 import make_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def spec(provisioned_settings):
    return load_orgs(provisioned_settings.orgs_file)


def test_first_run_reported_what_it_did_and_second_run_changes_nothing(first_provision, spec):
    settings, first = first_provision
    assert first.applied
    assert "tansu" in first.kafka_backend and "SeaweedFS" in first.storage_backend
    created = {c.target for c in first.changes if c.area == "kafka topic" and c.action == "create"}
    assert created <= {t.name for t in spec.topics}
    second = provision(settings)
    assert second.changes == [], second.changes
    assert second.summary.startswith("no changes")
    assert any("broker-side authentication and ACLs are unavailable" in n and "loopback only" in n for n in second.notes)
    assert provision(settings, dry_run=True).changes == []


def test_topics_exist_with_their_partitions_and_retention(provisioned_settings, spec):
    admin = make_admin(provisioned_settings)
    try:
        described = {t["name"]: len(t["partitions"]) for t in admin.describe_topics([t.name for t in spec.topics])}
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t.name) for t in spec.topics],
                                         config_filter="all")["topic"]
    finally:
        admin.close()
    for topic in spec.topics:
        assert described[topic.name] == topic.partitions, topic.name
        assert int(configs[topic.name]["retention.ms"]["value"]) == topic.retention_ms, topic.name
    assert described["ioxhub.wco.datasets"] == 12  # the per-org override in infra/orgs.yaml


def test_cli_json_of_the_plan_the_status_the_catalog_and_the_stack(provisioned_settings, spec):
    """`--json` of the listing commands that need the servers: stable keys, the values the hub holds, no secret."""
    def run(*args: str) -> object:
        done = subprocess.run([sys.executable, "-m", "app.cli", *args, "--json"], capture_output=True, text=True,
                              timeout=120, env=dict(os.environ))
        assert done.returncode == 0, done.stdout + done.stderr
        assert not [v for v in provisioned_settings.secret_values() if v in done.stdout], f"{args} printed a secret"
        return json.loads(done.stdout)

    plan = run("provision", "--dry-run")
    assert set(plan) == {"kafka_backend", "storage_backend", "applied", "summary", "changes", "notes"}
    assert (plan["applied"], plan["changes"]) == (False, [])
    assert "tansu" in plan["kafka_backend"] and plan["summary"].startswith("no changes")
    assert any("broker-side authentication and ACLs are unavailable" in n for n in plan["notes"])

    status = run("status")
    assert set(status) == {"runs", "failures", "lag", "lag_seconds", "lag_error", "freshness", "staging", "expired", "internal_errors",
                           "triggers"}
    assert set(status["lag"]["datasets"]) == {o.datasets.name for o in spec.orgs}
    assert set(status["lag"]["policies"]) == {o.policies.name for o in spec.orgs}
    assert all(isinstance(n, int) and n >= 0 for kind in status["lag"].values() for n in kind.values())

    datasets = run("datasets")
    assert datasets == json.loads(json.dumps(list_datasets(provisioned_settings), default=str))

    services = {r["service"]: r for r in run("stack", "status")}
    assert set(services) == {"seaweedfs", "tansu", "airflow", "web"}
    for name in ("seaweedfs", "tansu"):
        assert (services[name]["state"], services[name]["health"]) == ("running", "ok"), services[name]
        assert isinstance(services[name]["pid"], int)
    assert services["tansu"]["endpoint"] == provisioned_settings.kafka_bootstrap


def test_cli_second_run_says_no_changes_and_shows_no_secret(provisioned_settings):
    done = subprocess.run([sys.executable, "-m", "app.cli", "provision"], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "no changes" in done.stdout
    secrets = json.loads(provisioned_settings.local_secrets_file.read_text())
    for name, value in secrets.items():
        if "secret" in name:
            assert value not in done.stdout + done.stderr, name


@pytest.fixture(scope="module")
def analyst(provisioned_settings):
    keys = json.loads(provisioned_settings.local_secrets_file.read_text())
    assert oct(provisioned_settings.local_secrets_file.stat().st_mode & 0o777) == "0o600"
    return make_client(provisioned_settings, access_key=keys["analyst_access_key"],
                       secret_key=keys["analyst_secret_key"], retries=0)


@pytest.fixture(scope="module")
def zone_objects(provisioned_settings):
    """One object per zone, written by the hub identity."""
    hub = make_client(provisioned_settings)
    run = uuid.uuid4().hex[:8]
    keys = {zone: f"{zone}/_provision-test/{run}.txt" for zone in ("raw", "quarantine", "harmonized", "curated", "catalog",
                                                                   "staging")}
    for zone, key in keys.items():
        body = f"{zone} object".encode()
        hub.put_object(provisioned_settings.bucket, key, io.BytesIO(body), len(body))
    yield keys
    for key in keys.values():
        hub.remove_object(provisioned_settings.bucket, key)


def _code(call) -> str:
    try:
        call()
    except S3Error as exc:
        return exc.code
    return "allowed"


def test_analyst_reads_curated_and_catalog(provisioned_settings, analyst, zone_objects):
    bucket = provisioned_settings.bucket
    for zone in ("curated", "catalog"):
        response = analyst.get_object(bucket, zone_objects[zone])
        try:
            assert response.read() == f"{zone} object".encode()
        finally:
            response.close()
            response.release_conn()
        listed = [o.object_name for o in analyst.list_objects(bucket, prefix=f"{zone}/_provision-test/")]
        assert zone_objects[zone] in listed


@pytest.mark.parametrize("zone", ["raw", "quarantine", "staging"])
def test_analyst_is_refused_on_hub_only_zones(provisioned_settings, analyst, zone_objects, zone):
    bucket = provisioned_settings.bucket
    assert _code(lambda: analyst.get_object(bucket, zone_objects[zone]).read()) == "AccessDenied"
    assert _code(lambda: list(analyst.list_objects(bucket, prefix=f"{zone}/"))) == "AccessDenied"


@pytest.mark.parametrize("zone", ["curated", "catalog", "raw", "quarantine"])
def test_analyst_cannot_write_or_delete_anywhere(provisioned_settings, analyst, zone_objects, zone):
    bucket = provisioned_settings.bucket
    assert _code(lambda: analyst.put_object(bucket, f"{zone}/_provision-test/by-analyst.txt",
                                            io.BytesIO(b"x"), 1)) == "AccessDenied"
    assert _code(lambda: analyst.remove_object(bucket, zone_objects.get(zone, f"{zone}/x"))) == "AccessDenied"
    hub = make_client(provisioned_settings)
    assert _code(lambda: hub.stat_object(bucket, f"{zone}/_provision-test/by-analyst.txt")) == "NoSuchKey"


def test_wrong_analyst_secret_is_a_clear_s3_error(provisioned_settings, zone_objects):
    keys = json.loads(provisioned_settings.local_secrets_file.read_text())
    wrong = make_client(provisioned_settings, access_key=keys["analyst_access_key"], secret_key="not-the-secret", retries=0)
    assert _code(lambda: wrong.get_object(provisioned_settings.bucket, zone_objects["curated"]).read()) == "SignatureDoesNotMatch"


@pytest.mark.parametrize("zone", ["raw", "quarantine", "harmonized", "curated", "catalog", "staging"])
def test_the_web_servers_identity_reads_the_served_zones_and_writes_none(provisioned_settings, zone_objects, zone):
    """Role `web` (`ioxhub serve`): it serves each key what that key may read (an org key its own raw/ and
    quarantine/), so it reads those zones and the catalog, never staging/; a bug in the server can still
    never change the data."""
    keys = json.loads(provisioned_settings.local_secrets_file.read_text())
    web = make_client(provisioned_settings, access_key=keys["web_access_key"], secret_key=keys["web_secret_key"], retries=0)
    bucket = provisioned_settings.bucket
    if zone == "staging":
        assert _code(lambda: web.get_object(bucket, zone_objects[zone]).read()) == "AccessDenied"
    else:
        assert web.get_object(bucket, zone_objects[zone]).read() == f"{zone} object".encode()
    assert _code(lambda: web.put_object(bucket, f"{zone}/_provision-test/by-web.txt", io.BytesIO(b"x"), 1)) == "AccessDenied"
    assert _code(lambda: web.remove_object(bucket, zone_objects[zone])) == "AccessDenied"
