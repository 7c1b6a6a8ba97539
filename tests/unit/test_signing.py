"""Signed events: key generation on disk, the local keyring, sign/verify and every refusal reason."""
from __future__ import annotations

import base64
import stat
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ioxhub import signing
from ioxhub.contracts.codec import legacy_record_headers, record_headers
from ioxhub.keys import generate_key, generate_org_key, load_keyring, load_private_key, load_signer, load_trust_store
from ioxhub.orgs import SigningKey, parse_orgs
from ioxhub.settings import load_settings
from ioxhub.signing import SignatureError, TrustedKey, TrustStore, sign, verify

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
FP = bytes.fromhex("9876c3c049ccbcc4")
VALUE = b"\xc3\x01" + FP + b"avro body"
WCO_TOPIC, WHO_TOPIC = "ioxhub.wco.datasets", "ioxhub.who.datasets"


def keypair():
    private = Ed25519PrivateKey.generate()
    return private, private.public_key().public_bytes_raw()


@pytest.fixture
def keys():
    wco, wco_pub = keypair()
    who, who_pub = keypair()
    old, old_pub = keypair()
    store = TrustStore([
        TrustedKey("WCO", SigningKey("wco-1", wco_pub, T0), "test"),
        TrustedKey("WHO", SigningKey("who-1", who_pub, T0), "test"),
        TrustedKey("WCO", SigningKey("wco-0", old_pub, T0 - timedelta(days=365), T0), "test"),
    ])
    return {"wco": wco, "who": who, "old": old, "store": store}


def signed(private, key_id, org="WCO", topic=WCO_TOPIC, value=VALUE, event_id="e1"):
    return sign(value, record_headers(org, FP, event_id), private, key_id, topic)


def reason_of(value, headers, topic, store, at=NOW) -> str:
    with pytest.raises(SignatureError) as err:
        verify(value, headers, topic, store, at)
    assert err.value.detail
    return err.value.reason


def test_good_record_verifies(keys):
    headers = signed(keys["wco"], "wco-1")
    assert [k for k, _ in headers][-2:] == ["ioxhub-key-id", "ioxhub-signature"]
    assert verify(VALUE, headers, WCO_TOPIC, keys["store"], NOW).org == "WCO"
    # re-signing replaces the old signature headers instead of piling them up
    again = sign(VALUE, headers, keys["wco"], "wco-1", WCO_TOPIC)
    assert len(again) == len(headers)
    verify(VALUE, again, WCO_TOPIC, keys["store"], NOW)


def test_unsigned(keys):
    assert reason_of(VALUE, record_headers("WCO", FP, "e1"), WCO_TOPIC, keys["store"]) == "unsigned"
    no_sig = [h for h in signed(keys["wco"], "wco-1") if h[0] != "ioxhub-signature"]
    assert reason_of(VALUE, no_sig, WCO_TOPIC, keys["store"]) == "unsigned"
    assert reason_of(VALUE, None, WCO_TOPIC, keys["store"]) == "unsigned"


def test_unknown_key(keys):
    stranger, _ = keypair()
    assert reason_of(VALUE, signed(stranger, "wco-9"), WCO_TOPIC, keys["store"]) == "unknown-key"


def test_expired_and_not_yet_valid_key(keys):
    headers = signed(keys["old"], "wco-0")
    assert reason_of(VALUE, headers, WCO_TOPIC, keys["store"], at=NOW) == "expired-key"
    verify(VALUE, headers, WCO_TOPIC, keys["store"], T0 - timedelta(seconds=1))  # signed while it was valid
    assert reason_of(VALUE, signed(keys["wco"], "wco-1"), WCO_TOPIC, keys["store"],
                     at=T0 - timedelta(days=1)) == "expired-key"


def test_bad_signature_on_tampered_value_headers_or_forgery(keys):
    headers = signed(keys["wco"], "wco-1")
    assert reason_of(VALUE + b"x", headers, WCO_TOPIC, keys["store"]) == "bad-signature"
    for name in ("ce_id", "ce_type", "ce_time", "content-type", "ioxhub-schema"):
        swapped = [(k, v + b"2" if k == name else v) for k, v in headers]
        assert reason_of(VALUE, swapped, WCO_TOPIC, keys["store"]) == "bad-signature", name
    forged = signed(keys["who"], "wco-1")  # claims WCO's key id, signed with WHO's private key
    assert reason_of(VALUE, forged, WCO_TOPIC, keys["store"]) == "bad-signature"
    doubled = headers + [("ce_source", b"urn:ioxhub:org:WHO")]
    assert reason_of(VALUE, doubled, WCO_TOPIC, keys["store"]) == "bad-signature"


def test_signed_with_another_orgs_key(keys):
    headers = signed(keys["who"], "who-1", org="WCO")
    assert reason_of(VALUE, headers, WCO_TOPIC, keys["store"]) == "wrong-org-key"


def test_org_publishing_into_another_orgs_topic(keys):
    # WHO signs correctly for its own topic; the record is then (re)played into WCO's topic
    headers = signed(keys["who"], "who-1", org="WHO", topic=WHO_TOPIC)
    verify(VALUE, headers, WHO_TOPIC, keys["store"], NOW)
    assert reason_of(VALUE, headers, WCO_TOPIC, keys["store"]) == "org-mismatch"
    # signing for WCO's topic directly does not help either
    assert reason_of(VALUE, signed(keys["who"], "who-1", org="WHO", topic=WCO_TOPIC), WCO_TOPIC,
                     keys["store"]) == "org-mismatch"
    no_org = [(k, v) for k, v in signed(keys["wco"], "wco-1") if k != "ce_source"]
    assert reason_of(VALUE, no_org, WCO_TOPIC, keys["store"]) == "org-mismatch"


def test_contract_1_0_headers_still_verify(keys):
    """The retired ioxhub-org / ioxhub-event-id headers (no CloudEvents) verify until contract 2.0."""
    legacy = sign(VALUE, legacy_record_headers("WCO", FP, "e1"), keys["wco"], "wco-1", WCO_TOPIC)
    assert verify(VALUE, legacy, WCO_TOPIC, keys["store"], NOW).org == "WCO"
    swapped = [(k, b"e2" if k == "ioxhub-event-id" else v) for k, v in legacy]
    assert reason_of(VALUE, swapped, WCO_TOPIC, keys["store"]) == "bad-signature"
    as_who = [(k, b"WHO" if k == "ioxhub-org" else v) for k, v in legacy]
    assert reason_of(VALUE, as_who, WCO_TOPIC, keys["store"]) == "org-mismatch"


def test_the_topic_is_covered_by_the_signature(keys):
    # same org owns both topics: moving a record between them breaks the signature
    headers = signed(keys["wco"], "wco-1", topic="ioxhub.wco.datasets")
    assert reason_of(VALUE, headers, "ioxhub.wco.policies", keys["store"]) == "bad-signature"


def test_payload_org_must_match():
    signing.check_payload_org("WCO", "WCO")
    with pytest.raises(SignatureError) as err:
        signing.check_payload_org("WHO", "WCO")
    assert err.value.reason == "org-mismatch"


def test_generate_key_writes_owner_only_files(tmp_path):
    out = tmp_path / "keys" / "WCO"
    g = generate_key("WCO", "wco-test", out)
    assert g.path == out / "wco-test.key"
    assert stat.S_IMODE(g.path.stat().st_mode) == 0o600 and stat.S_IMODE(out.stat().st_mode) == 0o700
    private = load_private_key(g.path)
    assert base64.b64decode(g.public_key_b64) == private.public_key().public_bytes_raw()
    with pytest.raises(signing.KeyFileError, match="already exists"):
        generate_key("WCO", "wco-test", out)
    with pytest.raises(Exception, match="not valid"):
        generate_key("wco", None, out)
    # the printed snippet is valid orgs.yaml
    doc = (f"version: 1\ndead_letter: {{partitions: 1, retention_ms: 1}}\nstorage:\n  zones: [raw]\n"
           f"  roles: {{hub: {{read: '*', write: '*'}}}}\norgs:\n  - id: WCO\n    name: W\n"
           f"    datasets: {{partitions: 1, retention_ms: 1}}\n    policies: {{partitions: 1, retention_ms: 1}}\n"
           f"    signing_keys:\n{g.yaml_entry()}")
    (key,) = parse_orgs(doc).org("WCO").signing_keys
    assert (key.key_id, key.public_key, key.valid_from) == ("wco-test", base64.b64decode(g.public_key_b64), g.valid_from)


def test_keys_generate_keyring_trust_store_and_signer(tmp_path):
    orgs = tmp_path / "orgs.yaml"
    orgs.write_text("version: 1\ndead_letter: {partitions: 1, retention_ms: 1}\nstorage:\n  zones: [raw]\n"
                    "  roles: {hub: {read: '*', write: '*'}}\norgs:\n  - id: WCO\n    name: W\n"
                    "    datasets: {partitions: 1, retention_ms: 1}\n    policies: {partitions: 1, retention_ms: 1}\n"
                    "  - id: WHO\n    name: H\n"
                    "    datasets: {partitions: 1, retention_ms: 1}\n    policies: {partitions: 1, retention_ms: 1}\n")
    settings = load_settings({"IOXHUB_DATA_DIR": str(tmp_path / "data"), "IOXHUB_ORGS_FILE": str(orgs)})
    first = generate_org_key("WCO", "wco-a", settings=settings, valid_from=T0)
    second = generate_org_key("WCO", None, settings=settings)  # newer: the default signer
    generate_org_key("WHO", "who-a", settings=settings)
    with pytest.raises(signing.KeyFileError, match="already"):
        generate_org_key("WHO", "wco-a", settings=settings)
    assert not (tmp_path / "data" / "keys" / "WHO" / "wco-a.key").exists()

    store = load_trust_store(settings)
    assert {(k.org, k.key.key_id) for k in store} == {("WCO", "wco-a"), ("WCO", second.key_id), ("WHO", "who-a")}
    assert store.get("wco-a").key.public_key == base64.b64decode(first.public_key_b64)

    signer = load_signer("WCO", "wco-a", settings=settings)
    headers = signer.sign(VALUE, record_headers("WCO", FP, "e1"), WCO_TOPIC)
    assert verify(VALUE, headers, WCO_TOPIC, store, datetime.now(timezone.utc)).key.key_id == "wco-a"
    assert load_signer("WCO", settings=settings).key_id == second.key_id
    with pytest.raises(signing.KeyFileError, match="keys generate --org ICC"):
        load_signer("ICC", settings=settings)


def test_conflicting_key_ids_are_refused():
    _, a = keypair()
    _, b = keypair()
    store = TrustStore([TrustedKey("WCO", SigningKey("k", a, T0), "orgs.yaml")])
    store.add(TrustedKey("WCO", SigningKey("k", a, T0), "keyring"))  # the same key twice is fine
    with pytest.raises(signing.KeyFileError, match="already declared differently"):
        store.add(TrustedKey("WHO", SigningKey("k", b, T0), "keyring"))


def test_malformed_keyring_names_the_entry(tmp_path):
    ring = tmp_path / "public-keys.yaml"
    ring.write_text("orgs:\n  WCO:\n    - key_id: k1\n      public_key: not-base64!\n      valid_from: 2026-01-01T00:00:00Z\n")
    with pytest.raises(signing.KeyFileError, match=r"orgs.WCO\[0\]: malformed entry"):
        load_keyring(ring)


def test_cli_keys_generate_and_list(tmp_path):
    import subprocess
    import sys
    env = {"PATH": "/usr/bin:/bin", "IOXHUB_DATA_DIR": str(tmp_path), "COLUMNS": "200"}
    run = lambda *a: subprocess.run([sys.executable, "-m", "app.cli", "keys", *a], capture_output=True,  # noqa: E731
                                    text=True, env=env, timeout=60)
    out = run("generate", "--org", "IMO", "--key-id", "imo-1")
    assert out.returncode == 0, out.stderr
    public = base64.b64decode(out.stdout.split("public key (IMO, imo-1): ")[1].split()[0])
    assert len(public) == 32 and f"public_key: {base64.b64encode(public).decode()}" in out.stdout
    assert stat.S_IMODE((tmp_path / "keys" / "IMO" / "imo-1.key").stat().st_mode) == 0o600
    again = run("generate", "--org", "IMO", "--key-id", "imo-1")
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "Traceback" not in again.stderr
    listed = run("list")
    assert listed.returncode == 0 and "imo-1" in listed.stdout
