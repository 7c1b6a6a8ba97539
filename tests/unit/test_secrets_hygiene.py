"""Secrets hygiene: nothing committed, credentials read only by the settings, secrets masked
wherever settings or clients are printed, and S3/Kafka failures worded without them.

(.env.example documenting every variable docker-compose.yml needs is tests/unit/test_compose.py; the
end-to-end grep of real output and logs is tests/integration/test_secrets_in_output.py.)"""
from __future__ import annotations

import dataclasses
import logging
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import urllib3
from minio.error import S3Error

from ioxhub import kafka as ioxkafka
from ioxhub.s3 import explain, make_client
from ioxhub.settings import PROJECT_ROOT, Settings, load_settings
from ioxhub.stack import seaweedfs

SECRET = "S3cr3t-" + "x" * 24


# ------------------------------------------------------------------------------------------ the repository
SECRET_FILE_NAMES = re.compile(r"(^|/)(\.env|[^/]+\.(key|pem|p12|pfx)|local-stack\.json|kafka-users\.json|"
                               r"simple_auth_manager_passwords\.json\.generated|id_(rsa|ed25519))$")
SECRET_TEXT = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),                           # AWS access key id
    re.compile(r"\bIOX[0-9A-F]{16}\b"),                            # an access key the local stack generated
    # a credential-named variable assigned a long random-looking literal (letters and digits) that is not
    # a placeholder
    re.compile(r"(?i)\b\w*(password|secret|token|api_key)\w*['\"]?\s*[:=]\s*['\"]?(?!changeme|replace)"
               r"(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{20,}={0,2}"),
]


def find_secrets(path: str, text: str) -> list[str]:
    found = [f"{path}: a file of this name holds secrets"] if SECRET_FILE_NAMES.search(path) else []
    for pattern in SECRET_TEXT:
        found += [f"{path}: {m.group(0)[:40]}" for m in pattern.finditer(text)]
    return found


def test_the_scanner_finds_what_it_looks_for():
    pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"
    assert find_secrets("keys/WHO/who-1.key", pem)
    assert find_secrets("ioxhub.toml", "s3_secret_key = 'Zq0v3mT9yL2bN8xR4cW6pA1s'")
    assert find_secrets("notes.md", "IOXHUB_KAFKA_PASSWORD=Zq0v3mT9yL2bN8xR4cW6pA1s")
    assert find_secrets("x.json", '{"s3_access_key": "IOX0123456789ABCDEF"}')
    assert find_secrets(".env", "")
    assert not find_secrets(".env.example", "IOXHUB_KAFKA_PASSWORD=changeme0hub0ingest0password")
    assert not find_secrets("a.py", "secret_key = settings.s3_secret_key")


def tracked_files() -> list[str]:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing committed to scan")
    out = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def test_no_secret_is_committed():
    this = str(Path(__file__).relative_to(PROJECT_ROOT))
    found = []
    for path in tracked_files():
        file = PROJECT_ROOT / path
        if path == this or not file.is_file() or file.stat().st_size > 2_000_000:
            continue
        found += find_secrets(path, file.read_text(errors="replace"))
    assert not found, found


def test_env_and_the_local_data_dir_are_git_ignored():
    tracked_files()
    for name in (".env", ".ioxhub/secrets/local-stack.json", ".ioxhub/keys/WHO/who-1.key"):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=PROJECT_ROOT)
        assert ignored.returncode == 0, f"{name} is not git-ignored: a copy of it could be committed"


# ------------------------------------------------------------------------------------------ where credentials come from
ENV_READ = re.compile(r"(environ(\.get)?\s*[\[(]|getenv\s*\()\s*[\"'](\w+)[\"']")


def test_only_the_settings_read_configuration_from_the_environment():
    readers = {}
    for root in ("ioxhub", "producers", "consumers", "app", "dags"):
        for path in (PROJECT_ROOT / root).rglob("*.py"):
            for match in ENV_READ.finditer(path.read_text()):
                readers.setdefault(match.group(3), []).append(str(path.relative_to(PROJECT_ROOT)))
    credential_like = {name: where for name, where in readers.items()
                       if name.startswith(("IOXHUB_", "AWS_")) or re.search(r"PASSWORD|SECRET|TOKEN|KEY", name)}
    outside = {name: where for name, where in credential_like.items() if set(where) - {"ioxhub/settings.py"}}
    assert not outside, f"configuration read outside ioxhub/settings.py: {outside}"


def test_secret_settings_are_marked_masked_and_kept_out_of_repr():
    secret_fields = {f.name for f in dataclasses.fields(Settings) if f.metadata["secret"]}
    named_like_secrets = {f.name for f in dataclasses.fields(Settings) if re.search(r"password|secret", f.name)}
    assert named_like_secrets and named_like_secrets <= secret_fields
    env = {f"IOXHUB_{name.upper()}": f"{SECRET}-{name}" for name in secret_fields}
    settings = load_settings({"IOXHUB_DATA_DIR": "/nonexistent-ioxhub", **env})
    assert sorted(settings.secret_values()) == sorted(env.values())
    shown = " ".join(settings.describe().values()) + repr(settings) + str(settings)
    assert SECRET not in shown
    assert all(settings.describe()[name] == "***" for name in secret_fields)


def test_local_stack_secrets_are_generated_owner_only(tmp_path):
    settings = load_settings({"IOXHUB_DATA_DIR": str(tmp_path / "data")})
    first = seaweedfs.load_or_create_secrets(settings)
    assert seaweedfs.load_or_create_secrets(settings) == first             # generated once, then kept
    path = settings.local_secrets_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    other = seaweedfs.load_or_create_secrets(load_settings({"IOXHUB_DATA_DIR": str(tmp_path / "other")}))
    assert other["s3_secret_key"] != first["s3_secret_key"]                # random, not a constant of the code


# ------------------------------------------------------------------------------------------ error messages
def s3_error(code: str) -> S3Error:
    return S3Error(None, code, "server message", "/ioxhub/raw/x", "req-1", "host-1", "ioxhub", "raw/x")


@pytest.mark.parametrize("code,said", [
    ("InvalidAccessKeyId", "does not know access key IOXANALYST (InvalidAccessKeyId): check IOXHUB_S3_ACCESS_KEY"),
    ("SignatureDoesNotMatch", "the secret key does not match access key IOXANALYST (SignatureDoesNotMatch): "
                              "check IOXHUB_S3_SECRET_KEY"),
    ("AccessDenied", "access key IOXANALYST is not allowed to get there (AccessDenied)"),
    ("NoSuchBucket", "the bucket does not exist (NoSuchBucket): run `ioxhub provision`"),
    ("SlowDown", "failed: SlowDown (server message)"),
])
def test_s3_errors_are_one_sentence_without_the_secret(code, said):
    settings = load_settings({"IOXHUB_DATA_DIR": "/nonexistent-ioxhub", "IOXHUB_S3_ENDPOINT": "127.0.0.1:9"})
    client = make_client(settings, access_key="IOXANALYST", secret_key=SECRET)
    message = explain(s3_error(code), "get", "s3://ioxhub/raw/x", client, settings.s3_endpoint)
    assert message.startswith("S3 get s3://ioxhub/raw/x ") and said in message, message
    assert SECRET not in message and "\n" not in message


def test_unreachable_s3_is_named_with_its_endpoint():
    refused = urllib3.exceptions.MaxRetryError(None, "/ioxhub?list-type=2", reason=ConnectionRefusedError(111, "Connection refused"))
    message = explain(refused, "list", "s3://ioxhub/catalog/", None, "127.0.0.1:9")
    assert "cannot reach the S3 server at 127.0.0.1:9 (connection refused)" in message and "IOXHUB_S3_ENDPOINT" in message


def test_kafka_passwords_are_masked_in_kafka_python_debug_logs(caplog):
    settings = load_settings({"IOXHUB_DATA_DIR": "/nonexistent-ioxhub", "IOXHUB_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                              "IOXHUB_KAFKA_USERNAME": "hub", "IOXHUB_KAFKA_PASSWORD": SECRET + "-hub",
                              "IOXHUB_KAFKA_ADMIN_USERNAME": "admin", "IOXHUB_KAFKA_ADMIN_PASSWORD": SECRET + "-admin"})
    config = ioxkafka.common_config(settings, admin=True)
    assert config["sasl_plain_password"] == SECRET + "-admin"           # the client itself gets the real one
    ioxkafka.common_config(settings)
    # What KafkaAdminClient.__init__ logs (kafka-python 3.0.12, kafka/admin/client.py).
    with caplog.at_level(logging.DEBUG, logger="kafka"):
        logging.getLogger("kafka.admin.client").debug("Starting KafkaAdminClient with configuration: %s", config)
        logging.getLogger("kafka.net.connection").debug("sasl: %s / %s", SECRET + "-hub", "other text")
    text = caplog.text
    assert "Starting KafkaAdminClient" in text and "'sasl_plain_password': '***'" in text
    assert SECRET not in text
