"""Signing keys on disk: private key files per org, the local keyring of public keys, rotation.

Entry points: `generate_org_key` (`ioxhub keys generate`), `retire_key` (`keys retire`), `load_trust_store`
(`keys list`, ingest), `load_signer` (producers), `parse_time_option`. Layout and rotation: docs/signing.md.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ioxhub import names
from ioxhub.errors import IoxhubError
from ioxhub.orgs import OrgsSpec, SigningKey, load_orgs
from ioxhub.settings import get_settings
from ioxhub.signing import KeyFileError, Signer, TrustedKey, TrustStore, iso_utc

KEYRING_FILE = "public-keys.yaml"


@dataclass(frozen=True)
class GeneratedKey:
    org: str
    key_id: str
    path: Path           # the private key file (0600)
    public_key_b64: str
    valid_from: datetime

    def yaml_entry(self) -> str:
        """The entry to paste under the org's `signing_keys` in infra/orgs.yaml."""
        return (f"      - key_id: {self.key_id}\n"
                f"        public_key: {self.public_key_b64}\n"
                f"        valid_from: {iso_utc(self.valid_from)}\n")


def keys_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "keys"


def generate_key(org: str, key_id: str | None, out_dir: Path, *, valid_from: datetime | None = None) -> GeneratedKey:
    """Write a new Ed25519 private key to `<out_dir>/<key_id>.key` (PEM PKCS#8, 0600, directory 0700)."""
    names.check_org(org)
    valid_from = (valid_from or datetime.now(timezone.utc)).replace(microsecond=0)
    key_id = names.check_id(key_id or f"{org.lower()}-{valid_from:%Y%m%d}-{secrets.token_hex(3)}", "key id")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(out_dir, 0o700)
    path = out_dir / f"{key_id}.key"
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path}: a key with id {key_id!r} already exists; choose another --key-id") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return GeneratedKey(org, key_id, path, base64.b64encode(public).decode(), valid_from)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyFileError(f"{path}: private key file not found") from None
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path}: not an Ed25519 private key")
    return key


def add_to_keyring(keyring: Path, generated: GeneratedKey) -> None:
    """Append a public key to the local keyring (rewritten atomically)."""
    doc = _read_keyring_doc(keyring)
    doc.setdefault(generated.org, []).append({"key_id": generated.key_id, "public_key": generated.public_key_b64,
                                              "valid_from": iso_utc(generated.valid_from)})
    _write_keyring(keyring, doc)


def retire_key(key_id: str, at: datetime | None = None, settings=None) -> TrustedKey:
    """Rotation: end a key's validity window in the local keyring at `at` (default: now).

    Records signed with it and stamped at or after `at` are then refused as expired-key; older ones still
    verify. A key declared in infra/orgs.yaml is retired there (its `valid_until`), not here."""
    if settings is None:
        settings = get_settings()
    at = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    if at.tzinfo is None:
        raise KeyFileError(f"retire {key_id}: the time {at.isoformat()} has no timezone")
    keyring = keys_dir(settings.data_dir) / KEYRING_FILE
    doc = _read_keyring_doc(keyring)
    for entries in doc.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("key_id") == key_id:
                entry["valid_until"] = iso_utc(at)
                keys = _keyring_keys(keyring, doc)          # validates the new window before writing it
                _write_keyring(keyring, doc)
                return next(k for k in keys if k.key.key_id == key_id)
    if settings.orgs_file.is_file() and _orgs_declare(settings.orgs_file, key_id):
        raise KeyFileError(f"key {key_id!r} is declared in {settings.orgs_file}: set its valid_until there")
    raise KeyFileError(f"no key {key_id!r} in the local keyring {keyring}")


def _write_keyring(keyring: Path, doc: dict) -> None:
    keyring.parent.mkdir(parents=True, exist_ok=True)
    tmp = keyring.with_suffix(".tmp")
    tmp.write_text("# Local keyring written by `ioxhub keys generate`: public keys only, trusted by ingest on\n"
                   "# this machine in addition to infra/orgs.yaml. Same entry shape as orgs.yaml signing_keys.\n"
                   + yaml.safe_dump({"orgs": doc}, sort_keys=True))
    tmp.replace(keyring)


def load_keyring(keyring: Path) -> list[TrustedKey]:
    """The keys of a local keyring file (none if it does not exist)."""
    return _keyring_keys(keyring, _read_keyring_doc(keyring))


def _keyring_keys(keyring: Path, doc: dict) -> list[TrustedKey]:
    out = []
    for org, entries in doc.items():
        for i, e in enumerate(entries if isinstance(entries, list) else [None]):
            where = f"{keyring}: orgs.{org}[{i}]"
            try:
                names.check_org(org)
                public = base64.b64decode(e["public_key"], validate=True)
                if len(public) != 32:
                    raise ValueError(f"public_key decodes to {len(public)} bytes, not 32")
                valid_from = _parse_time(e["valid_from"])
                valid_until = _parse_time(e["valid_until"]) if e.get("valid_until") else None
                if valid_until is not None and valid_until <= valid_from:
                    raise ValueError(f"valid_until {iso_utc(valid_until)} is not after valid_from {iso_utc(valid_from)}")
                key = SigningKey(names.check_id(e["key_id"], "key_id"), public, valid_from, valid_until)
            except (TypeError, KeyError, ValueError, binascii.Error, IoxhubError) as exc:
                raise KeyFileError(f"{where}: malformed entry ({exc})") from None
            out.append(TrustedKey(org, key, str(keyring)))
    return out


def load_trust_store(settings=None, orgs: OrgsSpec | None = None) -> TrustStore:
    """orgs.yaml keys + the local keyring of `settings.data_dir`."""
    if settings is None:
        settings = get_settings()
    if orgs is None:
        orgs = load_orgs(settings.orgs_file)
    store = TrustStore.from_orgs(orgs)
    for k in load_keyring(keys_dir(settings.data_dir) / KEYRING_FILE):
        store.add(k)
    return store


def load_signer(org: str, key_id: str | None = None, settings=None) -> Signer:
    """The org's signing key under `<data_dir>/keys/<ORG>/`: the given id, else the newest one."""
    if settings is None:
        settings = get_settings()
    org_dir = keys_dir(settings.data_dir) / names.check_org(org)
    if key_id is not None:
        path = org_dir / f"{names.check_id(key_id, 'key id')}.key"
    else:
        files = list(org_dir.glob("*.key")) if org_dir.is_dir() else []
        if not files:
            raise KeyFileError(f"no signing key for {org} in {org_dir}: run `ioxhub keys generate --org {org}`")
        known = {k.key.key_id: k.key for k in load_keyring(keys_dir(settings.data_dir) / KEYRING_FILE)}
        now = datetime.now(timezone.utc)
        # A retired key (validity window closed) would only get the org's records quarantined as expired-key.
        usable = [p for p in files if p.stem not in known or known[p.stem].valid_until is None
                  or known[p.stem].valid_until > now]
        if not usable:
            raise KeyFileError(f"every signing key of {org} in {org_dir} is retired: run `ioxhub keys generate --org {org}`")
        path = max(usable, key=lambda p: (known[p.stem].valid_from if p.stem in known
                                          else datetime.fromtimestamp(p.stat().st_mtime, timezone.utc), p.stem))
    return Signer(org, path.stem, load_private_key(path))


def generate_org_key(org: str, key_id: str | None = None, settings=None, *,
                     valid_from: datetime | None = None) -> GeneratedKey:
    """`ioxhub keys generate`: a new key under `<data_dir>/keys/<ORG>/`, added to the local keyring."""
    if settings is None:
        settings = get_settings()
    base = keys_dir(settings.data_dir)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    generated = generate_key(org, key_id, base / names.check_org(org), valid_from=valid_from)
    keyring = base / KEYRING_FILE
    if any(k.key.key_id == generated.key_id for k in load_keyring(keyring)) or \
            (settings.orgs_file.is_file() and _orgs_declare(settings.orgs_file, generated.key_id)):
        generated.path.unlink()
        raise KeyFileError(f"key id {generated.key_id!r} is already declared; choose another --key-id")
    add_to_keyring(keyring, generated)
    return generated


def _orgs_declare(orgs_file: Path, key_id: str) -> bool:
    return any(k.key_id == key_id for o in load_orgs(orgs_file).orgs for k in o.signing_keys)


def _read_keyring_doc(keyring: Path) -> dict:
    if not keyring.is_file():
        return {}
    try:
        doc = yaml.safe_load(keyring.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KeyFileError(f"{keyring}: cannot read the local keyring ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("orgs", {}), dict):
        raise KeyFileError(f"{keyring}: expected a mapping `orgs: {{ORG: [keys...]}}`")
    return dict(doc.get("orgs") or {})


def _parse_time(value) -> datetime:
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if t.tzinfo is None:
        raise ValueError(f"{value} has no timezone")
    return t


def parse_time_option(text: str | None, option: str = "--valid-from") -> datetime | None:
    """A command-line time (`--valid-from`, `--at`): ISO 8601 with a timezone, or None when not given."""
    if text is None:
        return None
    try:
        return _parse_time(text)
    except ValueError:
        raise KeyFileError(f"{option} {text!r}: expected an ISO 8601 time with a timezone, "
                           "e.g. 2026-01-01T00:00:00Z") from None
