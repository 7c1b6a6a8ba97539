"""Command lines, identities and environments of the local servers (no server started)."""
from __future__ import annotations

import json
import stat

import pytest

from ioxhub.settings import load_settings
from ioxhub.stack import airflow, seaweedfs, tansu
from ioxhub.stack.process import StackError

ENV = {"IOXHUB_S3_ENDPOINT": "127.0.0.1:31004", "IOXHUB_S3_MASTER_PORT": "31001", "IOXHUB_S3_VOLUME_PORT": "31002",
       "IOXHUB_S3_FILER_PORT": "31003", "IOXHUB_KAFKA_BOOTSTRAP": "127.0.0.1:31005", "IOXHUB_AIRFLOW_PORT": "31006",
       "IOXHUB_BUCKET": "hubb", "IOXHUB_BROKER_BUCKET": "brok"}


@pytest.fixture
def settings(tmp_path):
    return load_settings({**ENV, "IOXHUB_DATA_DIR": str(tmp_path / "d")})


def test_weed_command_binds_loopback_and_uses_the_settings_ports(settings):
    argv = seaweedfs.command(settings, "/x/weed")
    assert argv[:2] == ["/x/weed", "server"]
    for flag in ("-ip.bind=127.0.0.1", "-master.port=31001", "-volume.port=31002", "-filer.port=31003", "-s3.port=31004",
                 "-volume.max=0", "-master.electionTimeout=1s", "-master.telemetry=false", "-s3.port.iceberg=0",
                 "-s3.port.lance=0", f"-s3.config={settings.data_dir / 'seaweedfs' / 's3.json'}"):
        assert flag in argv
    assert {p.number for p in seaweedfs.ports(settings)} == {31001, 31002, 31003, 31004, 41001, 41002, 41003, 41004}
    assert "/tmp/seaweedfs-s3-grpc-41004.sock" in seaweedfs.unix_sockets(settings)
    assert seaweedfs.spec(settings).extra["remove_after_stop"] == seaweedfs.unix_sockets(settings)


def test_only_loopback_addresses_are_served(settings, tmp_path):
    remote = load_settings({**ENV, "IOXHUB_DATA_DIR": str(tmp_path), "IOXHUB_S3_ENDPOINT": "minio:9000"})
    with pytest.raises(StackError, match="IOXHUB_S3_ENDPOINT='minio:9000'"):
        seaweedfs.command(remote, "/x/weed")


def test_tansu_command_durable_and_memory(settings):
    keys = {"broker_access_key": "AK", "broker_secret_key": "SK"}
    durable = tansu.command(settings, "/x/tansu", "s3")
    assert durable == ["/x/tansu", "broker", "--listener-url", "tcp://127.0.0.1:31005",
                       "--advertised-listener-url", "tcp://127.0.0.1:31005", "--storage-engine", "s3://brok/"]
    assert tansu.command(settings, "/x/tansu", "memory")[-1] == "memory://tansu/"
    env = tansu.environment(settings, "s3", keys)
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("AK", "SK")
    assert env["AWS_ENDPOINT"] == "http://127.0.0.1:31004" and env["AWS_ALLOW_HTTP"] == "true"
    assert "AWS_ACCESS_KEY_ID" not in tansu.environment(settings, "memory", None)


def test_identities_scope_hub_and_broker_to_their_bucket():
    keys = {k: k.upper() for k in seaweedfs.SECRET_KEYS}
    doc = {i["name"]: i for i in seaweedfs.s3_identities(keys, "hubb", "brok")["identities"]}
    assert set(doc) == {"admin", "hub", "broker"}
    assert "Admin" in doc["admin"]["actions"]
    assert sorted(doc["hub"]["actions"]) == ["List:hubb", "Read:hubb", "Tagging:hubb", "Write:hubb"]
    assert sorted(doc["broker"]["actions"]) == ["List:brok", "Read:brok", "Write:brok"]
    assert doc["hub"]["credentials"] == [{"accessKey": "S3_ACCESS_KEY", "secretKey": "S3_SECRET_KEY"}]


def test_secrets_are_generated_once_owner_only_and_reused(settings):
    first = seaweedfs.load_or_create_secrets(settings)
    path = settings.local_secrets_file
    assert set(first) == set(seaweedfs.SECRET_KEYS) and len(set(first.values())) == 6
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert seaweedfs.load_or_create_secrets(settings) == first
    reloaded = load_settings({**ENV, "IOXHUB_DATA_DIR": str(settings.data_dir)})
    assert (reloaded.s3_access_key, reloaded.s3_admin_secret_key) == (first["s3_access_key"], first["s3_admin_secret_key"])


def test_a_damaged_secrets_file_is_named(settings):
    path = settings.local_secrets_file
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"s3_access_key": "x"}))
    with pytest.raises(StackError, match=rf"{path}: missing s3_secret_key"):
        seaweedfs.load_or_create_secrets(settings)


def test_airflow_env_carries_the_stack_settings(settings):
    env = airflow.airflow_env(settings, base={"PATH": "/usr/bin"})
    assert env["AIRFLOW_HOME"] == str(settings.resolved_airflow_home)
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False" and env["AIRFLOW__CORE__PARALLELISM"] == "4"
    assert env["AIRFLOW__API__PORT"] == "31006"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:31006/execution/"
    assert env["IOXHUB_KAFKA_BOOTSTRAP"] == "127.0.0.1:31005" and env["IOXHUB_BUCKET"] == "hubb"
    assert env["PATH"].endswith("/usr/bin") and env["PATH"] != "/usr/bin"
    assert load_settings(env).s3_endpoint == settings.s3_endpoint
