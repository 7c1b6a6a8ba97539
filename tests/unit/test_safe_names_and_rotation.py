"""Trust without servers: key rotation in the local keyring, and safe names refused by the
producer CLI before anything is sent (the ingest side is in tests/integration/test_trust.py)."""
from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ioxhub import keys, names, signing
from ioxhub.contracts.codec import record_headers
from ioxhub.settings import load_settings

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
VALUE = b"\xc3\x01" + bytes(8) + b"avro body"
TOPIC = "ioxhub.who.datasets"
IOXHUB = [sys.executable, "-m", "app.cli"]


@pytest.fixture
def settings(tmp_path):
    return load_settings({"IOXHUB_DATA_DIR": str(tmp_path / "data")})


# ------------------------------------------------------------------------------------------ rotation
def test_retired_key_verifies_before_its_end_and_is_expired_after(settings):
    old = keys.generate_org_key("WHO", "who-old", settings=settings, valid_from=T0)
    new = keys.generate_org_key("WHO", "who-new", settings=settings, valid_from=T0 + timedelta(days=30))
    retired = keys.retire_key("who-old", T0 + timedelta(days=60), settings=settings)
    assert (retired.org, retired.key.valid_until) == ("WHO", T0 + timedelta(days=60))

    store = keys.load_trust_store(settings)
    signer = keys.load_signer("WHO", old.key_id, settings=settings)
    headers = signer.sign(VALUE, record_headers("WHO", bytes(8), "e1"), TOPIC)
    assert signing.verify(VALUE, headers, TOPIC, store, T0 + timedelta(days=59)).key.key_id == "who-old"
    with pytest.raises(signing.SignatureError) as err:
        signing.verify(VALUE, headers, TOPIC, store, T0 + timedelta(days=60))
    assert err.value.reason == "expired-key" and "who-old" in err.value.detail
    # The key a producer signs with by default is the newest one still valid, never a retired one.
    keys.retire_key("who-new", datetime.now(timezone.utc) + timedelta(days=1), settings=settings)
    assert keys.load_signer("WHO", settings=settings).key_id == new.key_id


def test_retiring_every_key_of_an_org_makes_load_signer_say_so(settings):
    keys.generate_org_key("ICC", "icc-1", settings=settings, valid_from=T0)
    keys.retire_key("icc-1", T0 + timedelta(days=1), settings=settings)
    with pytest.raises(signing.KeyFileError, match="every signing key of ICC .* is retired"):
        keys.load_signer("ICC", settings=settings)


def test_retire_refuses_unknown_keys_and_windows_that_end_before_they_start(settings):
    keys.generate_org_key("WCO", "wco-1", settings=settings, valid_from=T0)
    with pytest.raises(signing.KeyFileError, match="no key 'nope' in the local keyring"):
        keys.retire_key("nope", settings=settings)
    with pytest.raises(signing.KeyFileError, match="valid_until .* is not after valid_from"):
        keys.retire_key("wco-1", T0 - timedelta(days=1), settings=settings)
    assert keys.load_trust_store(settings).get("wco-1").key.valid_until is None   # nothing written


def test_cli_keys_retire(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "IOXHUB_DATA_DIR": str(tmp_path)}
    run = lambda *a: subprocess.run([*IOXHUB, "keys", *a], capture_output=True, text=True, env=env, timeout=60)  # noqa: E731
    assert run("generate", "--org", "IMO", "--key-id", "imo-1", "--valid-from", "2026-01-01T00:00:00Z").returncode == 0
    done = run("retire", "imo-1", "--at", "2026-02-01T00:00:00Z")
    assert done.returncode == 0 and "imo-1 of IMO is valid until 2026-02-01" in done.stdout, done.stderr
    bad = run("retire", "imo-1", "--at", "yesterday")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --at 'yesterday'") and "Traceback" not in bad.stderr


def test_verification_time_is_never_the_producers_choice():
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    backdated_ms = int(T0.timestamp() * 1000)
    assert signing.verification_time(backdated_ms, 0, now) == now                 # CreateTime: the producer's
    assert signing.verification_time(backdated_ms, signing.LOG_APPEND_TIME, now) == T0   # the broker's stamp
    assert signing.verification_time(None, None, now) == now
    assert signing.verification_time(-1, signing.LOG_APPEND_TIME, now) == now
    assert signing.verification_time(None, 0).tzinfo is not None


# ------------------------------------------------------------------------------------------ safe names
BAD_IDS = {
    "dot-dot": "../x",
    "slash": "a/b",
    "backslash": "a\\b",
    "control": "a\x01b",
    "newline": "a\nb",
    "over-long": "x" * (names.MAX_NAME_LENGTH + 1),
}


@pytest.mark.parametrize("value", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_check_id_refuses(value):
    with pytest.raises(names.InvalidName) as err:
        names.check_id(value, "dataset id")
    assert str(err.value).startswith("dataset id ") and "\n" not in str(err.value)


@pytest.mark.parametrize("org", ["../X", "WHO/X", "who", "W\x01HO", "W" * 17, ""])
def test_check_org_refuses(org):
    with pytest.raises(names.InvalidName, match="org id .* is not valid"):
        names.check_org(org)
    with pytest.raises(names.InvalidName):
        names.datasets_topic(org)


def _publish(tmp_path: Path, *options: str) -> subprocess.CompletedProcess:
    csv = tmp_path / "d.csv"
    csv.write_text("indicator,ref_area,period,value,unit\nX.Y,FRA,2024,1,KG\n")
    # Nothing listens on these ports: the names must be refused before any connection is tried.
    env = {"PATH": "/usr/bin:/bin", "IOXHUB_DATA_DIR": str(tmp_path / "data"),
           "IOXHUB_KAFKA_BOOTSTRAP": "127.0.0.1:9", "IOXHUB_S3_ENDPOINT": "127.0.0.1:9"}
    return subprocess.run([*IOXHUB, "publish", "dataset", str(csv), *options], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("option,value,said", [
    ("--dataset", "../x", "dataset id '../x' must not contain '..'"),
    ("--dataset", "a/b", "dataset id 'a/b' must not contain"),
    ("--dataset", "a\x01b", "dataset id 'a\\x01b' contains control characters"),
    ("--dataset", "x" * 101, "is 101 characters long (at most 100)"),
    ("--release-id", "../r1", "release id '../r1' must not contain '..'"),
    ("--release-id", "r\x1b[2J", "release id 'r\\x1b[2J' contains control characters"),
    ("--org", "../WHO", "org id '../WHO' is not valid"),
    ("--org", "W/HO", "org id 'W/HO' is not valid"),
])
def test_publish_cli_refuses_unsafe_names_with_one_error_line(tmp_path, option, value, said):
    given = {"--org": "WHO", "--dataset": "ok_dataset", option: value}
    done = _publish(tmp_path, *[x for kv in given.items() for x in kv])
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and said in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""
