"""API keys of the web portal and API (a minimal stand-in until the full key store lands).

`create_key(name, kind, org, settings)` -> the key (printed once; only its SHA-256 is kept, in
`<data_dir>/secrets/apikeys.json`, owner-only); `verify(key, settings)` -> the key's record or None.
A key is `iox_<id>_<secret>`: the id finds the record, the secret is compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings

KINDS = ("analyst", "org")


class ApiKeyError(IoxhubError):
    """A key cannot be created as asked."""


def store_path(settings: Settings) -> Path:
    return settings.data_dir / "secrets" / "apikeys.json"


def _load(settings: Settings) -> dict[str, dict]:
    try:
        return json.loads(store_path(settings).read_text())
    except FileNotFoundError:
        return {}


def _save(settings: Settings, keys: dict[str, dict]) -> None:
    path = store_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out, indent=1)
    tmp.replace(path)


def create_key(name: str, kind: str = "analyst", org: str | None = None, settings: Settings | None = None) -> str:
    """A new key for `name` (an earlier key of that name is replaced); returns the key itself."""
    settings = settings or get_settings()
    if kind not in KINDS or (kind == "org") != bool(org):
        raise ApiKeyError(f"api key {name!r}: kind must be analyst (no org) or org (with --org)")
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
    keys = {k: v for k, v in _load(settings).items() if v["name"] != name}
    keys[key_id] = {"name": name, "kind": kind, "org": org,
                    "sha256": hashlib.sha256(secret.encode()).hexdigest()}
    _save(settings, keys)
    return f"iox_{key_id}_{secret}"


def verify(key: str, settings: Settings | None = None) -> dict | None:
    """The record of a valid key (name, kind, org), or None."""
    _, _, rest = key.partition("iox_")
    key_id, _, secret = rest.partition("_")
    record = _load(settings or get_settings()).get(key_id)
    if not record or not secret:
        return None
    if not hmac.compare_digest(record["sha256"], hashlib.sha256(secret.encode()).hexdigest()):
        return None
    return record
