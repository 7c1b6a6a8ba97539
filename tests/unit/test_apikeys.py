"""API keys (ioxhub/apikeys.py): the key's form, the salted hash at rest, scopes, session tokens, which org an
object belongs to. The store is a dict-backed stand-in for the bucket's JSON calls (pure logic only)."""
from __future__ import annotations

import json

import pytest

from ioxhub.apikeys import (ApiKeyError, Identity, KeyStore, create_key, key_id_of, list_keys, object_org, revoke_key,
                            session_key_id, sign_session)


class DictStore:
    """The four ObjectStore calls the key functions use, over a dict."""

    def __init__(self):
        self.objects: dict[str, bytes] = {}
        self.gets = 0

    def put_json(self, key, doc):
        self.objects[key] = json.dumps(doc).encode()

    def get_json(self, key):
        self.gets += 1
        return json.loads(self.objects[key]) if key in self.objects else None

    def list(self, prefix):
        return iter(sorted(k for k in self.objects if k.startswith(prefix)))


def test_a_key_is_id_and_secret_and_only_a_salted_hash_is_stored():
    store = DictStore()
    key, record = create_key(store, "jane", "analyst")
    prefix, key_id, secret = key.split("_", 2)
    assert prefix == "iox" and key_id == record["id"] == key_id_of(key) and len(secret) >= 40
    stored = store.objects[f"catalog/apikeys/{key_id}.json"].decode()
    assert secret not in stored and key not in stored and '"hash"' in stored and '"salt"' in stored
    assert "hash" not in record and "salt" not in record
    other, _ = create_key(store, "jane", "analyst")
    docs = [json.loads(v) for v in store.objects.values()]
    assert docs[0]["salt"] != docs[1]["salt"] and other != key


def test_identify_accepts_the_key_only():
    store = DictStore()
    key, record = create_key(store, "who-pipeline", "org", "WHO")
    keys = KeyStore(store, cache_seconds=0)
    assert keys.identify(key) == Identity("who-pipeline", "org", "WHO", record["id"])
    prefix, key_id, secret = key.split("_", 2)
    wrong_secret = f"iox_{key_id}_{'A' * len(secret)}"
    unknown_id = f"iox_{'0' * 12}_{secret}"
    for bad in (wrong_secret, unknown_id, key + "x", key[:-1], "", "Bearer " + key, secret, key.upper()):
        assert keys.identify(bad) is None, bad


def test_revocation_takes_effect_after_the_cache_time():
    store = DictStore()
    key, record = create_key(store, "temp", "analyst")
    cached = KeyStore(store, cache_seconds=3600)
    fresh = KeyStore(store, cache_seconds=0)
    assert cached.identify(key) and fresh.identify(key)
    assert revoke_key(store, "temp")[0]["revoked_at"]
    assert fresh.identify(key) is None and fresh.identity_of_id(record["id"]) is None
    assert cached.identify(key) is not None            # until its cache time ends (seconds in the server)
    with pytest.raises(ApiKeyError, match="no active API key with id or name 'temp'"):
        revoke_key(store, "temp")
    gets = store.gets
    for _ in range(5):
        cached.identify(key)
    assert store.gets == gets                          # the cache spares a GET per request


def test_scopes_of_analyst_and_org_keys():
    analyst = Identity("a", "analyst", None, "1")
    wco = Identity("w", "org", "WCO", "2")
    for zone in ("curated", "harmonized"):
        assert analyst.can_read(zone) and wco.can_read(zone) and analyst.can_read(zone, "WHO")
    for zone in ("raw", "quarantine"):
        assert not analyst.can_read(zone, "WCO") and not analyst.can_read(zone)
        assert wco.can_read(zone, "WCO") and not wco.can_read(zone, "WHO") and not wco.can_read(zone, None)
    assert not wco.can_read("staging", "WCO") and not analyst.can_read("staging")


def test_create_checks_its_input_and_lists_without_secrets():
    store = DictStore()
    with pytest.raises(ApiKeyError, match="key kind 'admin'"):
        create_key(store, "x", "admin")
    with pytest.raises(ApiKeyError, match="an analyst key has no org"):
        create_key(store, "x", "analyst", "WCO")
    with pytest.raises(ValueError, match="--org 'wco' is not valid"):
        create_key(store, "x", "org", "wco")
    with pytest.raises(ApiKeyError, match="key name 'a b'"):
        create_key(store, "a b", "analyst")
    create_key(store, "x", "org", "WCO")
    assert [set(r) for r in list_keys(store)] == [{"id", "name", "kind", "org", "created_at", "revoked_at"}]


def test_session_tokens_are_signed_and_expire():
    secret = b"s" * 32
    token = sign_session(secret, "abcdef012345", 60, now=1000)
    assert session_key_id(secret, token, now=1059) == "abcdef012345"
    assert session_key_id(secret, token, now=1061) is None                       # expired
    assert session_key_id(b"t" * 32, token, now=1000) is None                    # another server's secret
    key_id, expires, mac = token.split(".")
    assert session_key_id(secret, f"{key_id}.{int(expires) + 999}.{mac}", now=1000) is None   # extended by hand
    assert session_key_id(secret, f"ffffffffffff.{expires}.{mac}", now=1000) is None         # another key
    for bad in ("", "a.b", "a.²³.c", "a.1.2.3"):
        assert session_key_id(secret, bad) is None


@pytest.mark.parametrize("key, org", [
    ("raw/org=WCO/topic=ioxhub.wco.datasets/partition=0/offsets=1-2.avro", "WCO"),
    ("quarantine/observations/org=WHO/dataset=d/release=r.parquet", "WHO"),
    ("quarantine/expired_releases/org=ICC/dataset=d/release=r.json", "ICC"),
    ("quarantine/events/topic=ioxhub.icao.datasets/partition=0/offsets=1-2.avro", "ICAO"),
    ("quarantine/errors/topic=ioxhub.upu.policies/partition=0/offset=3.txt", "UPU"),
    ("quarantine/events/topic=ioxhub.deadletter/partition=0/offsets=1-2.avro", None),
    ("curated/x/snapshot=000001/data.parquet", None),
])
def test_object_org(key, org):
    assert object_org(key) == org
