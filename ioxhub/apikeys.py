"""API keys of the web application: created, listed and revoked by the hub's admin, checked by the server.

A key is `iox_<id>_<secret>`: the id (public, 12 hex digits) names the record `catalog/apikeys/<id>.json`, so
a check is one lookup; the record holds a per-key salt and HMAC-SHA256(salt, secret), never the secret.
`create_key`, `list_keys`, `revoke_key` (the `ioxhub apikeys` command, hub identity); `KeyStore.identify`
(the server, read-only identity; records cached `cache_seconds`, so a revocation takes effect within them);
`Identity.can_read(zone, org)` (scopes: analysts read curated/ and harmonized/, an org key also its own raw/
and quarantine/). Why a salted HMAC rather than scrypt, and the session tokens: docs/api.md "Authentication".
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from ioxhub.errors import IoxhubError
from ioxhub.names import check_org, org_of_topic
from ioxhub.storage import ObjectStore

PREFIX = "catalog/apikeys/"
KINDS = ("analyst", "org")
SHARED_ZONES = ("curated", "harmonized", "catalog")   # every key
ORG_ZONES = ("raw", "quarantine")                     # an org key, for its own org's objects only
_KEY = re.compile(r"^iox_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class ApiKeyError(IoxhubError, ValueError):
    """A bad name, kind or org for a new key, or an unknown key id to revoke."""


@dataclass(frozen=True)
class Identity:
    """Who a request is from: a key's name, kind ("analyst" or "org") and org (org keys)."""
    name: str
    kind: str
    org: str | None
    key_id: str

    def can_read(self, zone: str, org: str | None = None) -> bool:
        """Whether this identity may read objects of `zone` belonging to `org` (None: no single org)."""
        if zone in SHARED_ZONES:
            return True
        return zone in ORG_ZONES and self.kind == "org" and org is not None and org == self.org


def object_org(key: str) -> str | None:
    """The org an object of raw/ or quarantine/ belongs to (`org=X` in its key, or the org of the topic
    `topic=ioxhub.x.datasets` it came from); None when it belongs to no single org (the dead-letter topic)."""
    for part in key.split("/")[1:-1]:
        name, _, value = part.partition("=")
        if name == "org":
            return value
        if name == "topic":
            return org_of_topic(value)
    return None


def _digest(salt: bytes, secret: str) -> str:
    return hmac.new(salt, secret.encode(), hashlib.sha256).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def create_key(store: ObjectStore, name: str, kind: str, org: str | None = None) -> tuple[str, dict[str, Any]]:
    """A new key: returns the key (shown once, stored nowhere) and its record (no secret)."""
    if not _NAME.fullmatch(name or ""):
        raise ApiKeyError(f"key name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    if kind not in KINDS:
        raise ApiKeyError(f"key kind {kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "org":
        check_org(org or "", "--org")
    elif org is not None:
        raise ApiKeyError("an analyst key has no org (use --org ORG for an org key)")
    key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(32), secrets.token_bytes(16)
    record = {"id": key_id, "name": name, "kind": kind, "org": org if kind == "org" else None,
              "created_at": _now(), "revoked_at": None,
              "salt": base64.b64encode(salt).decode(), "hash": _digest(salt, secret)}
    store.put_json(PREFIX + f"{key_id}.json", record)
    return f"iox_{key_id}_{secret}", public(record)


def public(record: dict[str, Any]) -> dict[str, Any]:
    """A key record without its salt and hash (for listings)."""
    return {k: record.get(k) for k in ("id", "name", "kind", "org", "created_at", "revoked_at")}


def list_keys(store: ObjectStore) -> list[dict[str, Any]]:
    records = [store.get_json(k) for k in sorted(store.list(PREFIX)) if k.endswith(".json")]
    return sorted((public(r) for r in records if r), key=lambda r: (r["created_at"], r["id"]))


def revoke_key(store: ObjectStore, key_id_or_name: str) -> list[dict[str, Any]]:
    """Revoke the key with this id (or every active key with this name); returns the revoked records."""
    revoked = []
    for key in sorted(store.list(PREFIX)):
        record = store.get_json(key)
        if record and record.get("revoked_at") is None and key_id_or_name in (record["id"], record["name"]):
            record["revoked_at"] = _now()
            store.put_json(key, record)
            revoked.append(public(record))
    if not revoked:
        raise ApiKeyError(f"no active API key with id or name {key_id_or_name!r} (see `ioxhub apikeys list`)")
    return revoked


def key_id_of(key: str) -> str | None:
    """The id part of a well-formed key (not secret: it names the record), else None."""
    match = _KEY.fullmatch(key or "")
    return match.group(1) if match else None


class KeyStore:
    """The server's view of the keys: `identify(key)` and `identity_of_id(key_id)`, records cached a short while."""

    def __init__(self, store: ObjectStore, cache_seconds: float = 5.0):
        self.store, self.cache_seconds = store, cache_seconds
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._lock = threading.Lock()

    def _record(self, key_id: str) -> dict | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self.cache_seconds:
            return hit[1]
        record = self.store.get_json(PREFIX + f"{key_id}.json")
        with self._lock:
            if len(self._cache) > 10_000:          # unknown ids sent in bulk must not grow it without end
                self._cache.clear()
            self._cache[key_id] = (now, record)
        return record

    def identity_of_id(self, key_id: str) -> Identity | None:
        """The identity of an active key by its id (a signed session names the id), else None."""
        record = self._record(key_id)
        if not record or record.get("revoked_at"):
            return None
        return Identity(record["name"], record["kind"], record.get("org"), record["id"])

    def identify(self, key: str) -> Identity | None:
        """The identity of a valid, active key; None for a malformed, unknown, wrong or revoked one."""
        match = _KEY.fullmatch(key or "")
        if not match:
            return None
        record = self._record(match.group(1))
        if not record or record.get("revoked_at"):
            return None
        expected = record.get("hash", "")
        if not hmac.compare_digest(_digest(base64.b64decode(record["salt"]), match.group(2)), expected):
            return None
        return Identity(record["name"], record["kind"], record.get("org"), record["id"])


def sign_session(secret: bytes, key_id: str, ttl_seconds: int, now: float | None = None) -> str:
    """A session token naming a key id until an expiry, signed with the server's secret (the cookie value)."""
    expires = int((now if now is not None else time.time()) + ttl_seconds)
    payload = f"{key_id}.{expires}"
    return payload + "." + hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def session_key_id(secret: bytes, token: str, now: float | None = None) -> str | None:
    """The key id of a valid, unexpired session token, else None."""
    parts = (token or "").split(".")
    if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    payload = f"{parts[0]}.{parts[1]}"
    good = hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, parts[2]) or int(parts[1]) < (now if now is not None else time.time()):
        return None
    return parts[0]
