"""Signed events: Ed25519 keys per org, record signatures, and the checks ingest runs first.

What is signed: a length-prefixed concatenation of a version tag, the topic, the org, the schema
fingerprint and event id headers, the key id, and the BLAKE3 digest (32 bytes) of the record value (the
framed Avro bytes). Hash-then-sign, as minisign does for large files: Ed25519 alone hashes the whole
message twice with SHA-512 (~50 ms per 1M observations of ~1 MB chunks, the largest single cost after
parsing when publishing), BLAKE3 once at ~7 GB/s; the signature still covers every byte of the
value, since changing any byte changes the digest (BLAKE3 is collision-resistant). Covering the
topic stops a valid record of org A from being replayed into org B's topic; covering the identifying
headers stops them from being swapped. Two headers are added: `ioxhub-key-id` and `ioxhub-signature`
(the raw 64-byte signature).

`verify` raises `SignatureError` with one of these reasons, checked in this order:
  unsigned        no key id or no signature header
  org-mismatch    the record's org header is missing, or differs from the owner of the topic
  unknown-key     the key id is in no trust store
  wrong-org-key   the key belongs to another org than the one the record names (signed with another
                  org's key)
  expired-key     `at` lies outside the key's validity window (a rotated-out or not-yet-valid key)
  bad-signature   the signature does not match (tampered value or headers, or forged), or a signed
                  header appears twice
A payload that names another org than its headers is `check_payload_org`'s "org-mismatch" (ingest calls
it after decoding).

`at` is the caller's choice; `verification_time` gives the one ingest must use: the record's Kafka
timestamp only when the broker stamped it (LogAppendTime topics), else the verifier's own clock. A
CreateTime timestamp is the producer's to choose, so a producer holding a rotated-out key could backdate
its records into the key's old window (the local tansu broker ignores `message.timestamp.type` and keeps
producer timestamps). Cost of the clock: a record signed just before a rotation but consumed after it is
quarantined as expired-key (with its payload; the producer re-signs and re-publishes it).

Trust store = the `signing_keys` of infra/orgs.yaml + the local keyring `<data_dir>/keys/public-keys.yaml`
that `ioxhub keys generate` appends to (same entry shape, per org), so the local stack trusts keys
generated on this machine without editing orgs.yaml. Rotation: generate the new key, then
`ioxhub keys retire OLD_ID` closes the old key's window (`valid_until`); producers sign with the newest key
still valid, and ingest refuses later records signed with the old one as expired-key.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Literal

import yaml
from blake3 import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ioxhub import names
from ioxhub.contracts.codec import HEADER_EVENT_ID, HEADER_ORG, HEADER_SCHEMA
from ioxhub.errors import IoxhubError
from ioxhub.orgs import OrgsSpec, SigningKey

HEADER_KEY_ID = "ioxhub-key-id"
HEADER_SIGNATURE = "ioxhub-signature"
SIGNED_HEADERS = (HEADER_ORG, HEADER_SCHEMA, HEADER_EVENT_ID)
_TAG = b"ioxhub-signature-v2"      # v2: the value enters as its BLAKE3 digest
KEYRING_FILE = "public-keys.yaml"

Reason = Literal["unsigned", "org-mismatch", "unknown-key", "wrong-org-key", "expired-key", "bad-signature"]
Headers = list[tuple[str, bytes]]


class SignatureError(IoxhubError):
    """A record that must not be trusted; `reason` is machine-readable (quarantine reason)."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class KeyFileError(IoxhubError):
    """A key file or keyring problem (missing, unreadable, malformed), naming the file."""


@dataclass(frozen=True)
class TrustedKey:
    org: str
    key: SigningKey
    source: str          # where the key was declared (file), for messages


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
                f"        valid_from: {_iso(self.valid_from)}\n")


# ------------------------------------------------------------------------------------------- signing
def signed_bytes(value: bytes, topic: str, identity: dict[str, bytes], key_id: bytes) -> bytes:
    """The exact bytes the signature covers (length-prefixed, so no field can bleed into another)."""
    parts = [_TAG, topic.encode(), *(identity.get(h, b"") for h in SIGNED_HEADERS), key_id,
             blake3(value, max_threads=1).digest()]
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def sign(record_value: bytes, headers: Iterable[tuple[str, bytes]], private_key: Ed25519PrivateKey,
         key_id: str, topic: str) -> Headers:
    """`headers` with `ioxhub-key-id` and `ioxhub-signature` (replacing any earlier ones) for `topic`."""
    kept = [(k, bytes(v)) for k, v in headers if k not in (HEADER_KEY_ID, HEADER_SIGNATURE)]
    identity = {k: v for k, v in kept if k in SIGNED_HEADERS}
    signature = private_key.sign(signed_bytes(record_value, topic, identity, key_id.encode()))
    return kept + [(HEADER_KEY_ID, key_id.encode()), (HEADER_SIGNATURE, signature)]


@dataclass(frozen=True)
class Signer:
    """An org's private key, ready to sign its records."""

    org: str
    key_id: str
    private_key: Ed25519PrivateKey

    def sign(self, record_value: bytes, headers: Iterable[tuple[str, bytes]], topic: str) -> Headers:
        return sign(record_value, headers, self.private_key, self.key_id, topic)


# ------------------------------------------------------------------------------------------- verifying
class TrustStore:
    """Public keys by key id (ids are unique across orgs: orgs.yaml enforces it, and so does this)."""

    def __init__(self, keys: Iterable[TrustedKey] = ()):
        self._by_id: dict[str, TrustedKey] = {}
        for k in keys:
            self.add(k)

    def add(self, trusted: TrustedKey) -> None:
        old = self._by_id.get(trusted.key.key_id)
        if old is not None and (old.org, old.key.public_key) != (trusted.org, trusted.key.public_key):
            raise KeyFileError(f"{trusted.source}: key_id {trusted.key.key_id!r} of {trusted.org} is already "
                            f"declared differently for {old.org} in {old.source}")
        if old is None:
            self._by_id[trusted.key.key_id] = trusted

    def get(self, key_id: str) -> TrustedKey | None:
        return self._by_id.get(key_id)

    def __iter__(self):
        return iter(sorted(self._by_id.values(), key=lambda t: (t.org, t.key.valid_from, t.key.key_id)))

    def __len__(self) -> int:
        return len(self._by_id)

    @classmethod
    def from_orgs(cls, spec: OrgsSpec) -> "TrustStore":
        source = str(spec.source or "orgs.yaml")
        return cls(TrustedKey(org.id, key, source) for org in spec.orgs for key in org.signing_keys)


def verify(record_value: bytes, headers: Iterable[tuple[str, bytes | None]] | None, topic: str,
           trust_store: TrustStore, at: datetime) -> TrustedKey:
    """Check a record's signature and identity; return the key that signed it, or raise SignatureError."""
    if at.tzinfo is None:
        raise ValueError("verify(at=...) needs a timezone-aware datetime")
    seen: dict[str, bytes] = {}
    for k, v in headers or ():
        if v is None:
            continue
        if k in seen and k in (*SIGNED_HEADERS, HEADER_KEY_ID, HEADER_SIGNATURE):
            raise SignatureError("bad-signature", f"header {k} appears more than once")
        seen[k] = bytes(v)
    key_id_raw, signature = seen.get(HEADER_KEY_ID), seen.get(HEADER_SIGNATURE)
    if not key_id_raw or not signature:
        missing = " and ".join(h for h in (HEADER_KEY_ID, HEADER_SIGNATURE) if not seen.get(h))
        raise SignatureError("unsigned", f"record has no {missing} header")
    org = seen.get(HEADER_ORG, b"").decode("utf-8", "replace")
    if not org:
        raise SignatureError("org-mismatch", f"record has no {HEADER_ORG} header")
    owner = names.org_of_topic(topic)
    if owner is not None and owner != org:
        raise SignatureError("org-mismatch", f"record of {org} published into {owner}'s topic {topic}")
    key_id = key_id_raw.decode("utf-8", "replace")
    trusted = trust_store.get(key_id)
    if trusted is None:
        raise SignatureError("unknown-key", f"key {key_id!r} (claimed by {org}) is in no trust store")
    if trusted.org != org:
        raise SignatureError("wrong-org-key", f"record of {org} signed with key {key_id!r} of {trusted.org}")
    if not trusted.key.is_valid_at(at):
        until = _iso(trusted.key.valid_until) if trusted.key.valid_until else "open"
        raise SignatureError("expired-key", f"key {key_id!r} of {org} is valid {_iso(trusted.key.valid_from)} "
                                            f"to {until}, not at {_iso(at)}")
    try:
        Ed25519PublicKey.from_public_bytes(trusted.key.public_key).verify(
            signature, signed_bytes(record_value, topic, seen, key_id_raw))
    except InvalidSignature:
        raise SignatureError("bad-signature", f"signature of key {key_id!r} ({org}) does not match the record "
                                              f"on {topic}") from None
    return trusted


LOG_APPEND_TIME = 1   # Kafka's timestamp type of a record stamped by the broker (0: CreateTime, the producer's)


def verification_time(timestamp_ms: int | None, timestamp_type: int | None, now: datetime | None = None) -> datetime:
    """The time a record's key must be valid at: the broker's stamp if it has one, else `now` (the verifier's
    clock), never a time the producer chose."""
    if timestamp_type == LOG_APPEND_TIME and timestamp_ms is not None and timestamp_ms >= 0:
        return datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc)
    return now or datetime.now(timezone.utc)


def check_payload_org(record_org: str | None, header_org: str) -> None:
    """After decoding: the org the payload names must be the org the (verified) headers name."""
    if record_org != header_org:
        raise SignatureError("org-mismatch", f"payload names org {record_org!r} but the record is signed as {header_org}")


# ------------------------------------------------------------------------------------------- keys on disk
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
                                              "valid_from": _iso(generated.valid_from)})
    _write_keyring(keyring, doc)


def retire_key(key_id: str, at: datetime | None = None, settings=None) -> TrustedKey:
    """Rotation: end a key's validity window in the local keyring at `at` (default: now).

    Records signed with it and stamped at or after `at` are then refused as expired-key; older ones still
    verify. A key declared in infra/orgs.yaml is retired there (its `valid_until`), not here."""
    if settings is None:
        from ioxhub.settings import get_settings
        settings = get_settings()
    at = (at or datetime.now(timezone.utc)).replace(microsecond=0)
    if at.tzinfo is None:
        raise KeyFileError(f"retire {key_id}: the time {at.isoformat()} has no timezone")
    keyring = keys_dir(settings.data_dir) / KEYRING_FILE
    doc = _read_keyring_doc(keyring)
    for entries in doc.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("key_id") == key_id:
                entry["valid_until"] = _iso(at)
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
                    raise ValueError(f"valid_until {_iso(valid_until)} is not after valid_from {_iso(valid_from)}")
                key = SigningKey(names.check_id(e["key_id"], "key_id"), public, valid_from, valid_until)
            except (TypeError, KeyError, ValueError, binascii.Error, IoxhubError) as exc:
                raise KeyFileError(f"{where}: malformed entry ({exc})") from None
            out.append(TrustedKey(org, key, str(keyring)))
    return out


def load_trust_store(settings=None, orgs: OrgsSpec | None = None) -> TrustStore:
    """orgs.yaml keys + the local keyring of `settings.data_dir`."""
    if settings is None:
        from ioxhub.settings import get_settings
        settings = get_settings()
    if orgs is None:
        from ioxhub.orgs import load_orgs
        orgs = load_orgs(settings.orgs_file)
    store = TrustStore.from_orgs(orgs)
    for k in load_keyring(keys_dir(settings.data_dir) / KEYRING_FILE):
        store.add(k)
    return store


def load_signer(org: str, key_id: str | None = None, settings=None) -> Signer:
    """The org's signing key under `<data_dir>/keys/<ORG>/`: the given id, else the newest one."""
    if settings is None:
        from ioxhub.settings import get_settings
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
        from ioxhub.settings import get_settings
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


# ------------------------------------------------------------------------------------------- helpers
def _orgs_declare(orgs_file: Path, key_id: str) -> bool:
    from ioxhub.orgs import load_orgs
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


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# ------------------------------------------------------------------------------------------- CLI views
def parse_time_option(text: str | None, option: str = "--valid-from") -> datetime | None:
    if text is None:
        return None
    try:
        return _parse_time(text)
    except ValueError:
        raise KeyFileError(f"{option} {text!r}: expected an ISO 8601 time with a timezone, "
                           "e.g. 2026-01-01T00:00:00Z") from None



def print_generated(g: GeneratedKey) -> None:
    """`ioxhub keys generate` output (plain print: no wrapping, so the key copies cleanly)."""
    print(f"private key: {g.path} (owner-only; keep it secret, never commit it)")
    print(f"public key ({g.org}, {g.key_id}): {g.public_key_b64}")
    print(f"trusted on this machine via the local keyring {g.path.parent.parent / KEYRING_FILE}")
    print(f"for other deployments, add under {g.org}'s `signing_keys:` in infra/orgs.yaml:")
    print(g.yaml_entry(), end="")


def trust_table(store: TrustStore):
    """`ioxhub keys list`: a rich table of the trust store."""
    from rich.table import Table
    table = Table("org", "key id", "valid from", "valid until", "declared in")
    for t in store:
        table.add_row(t.org, t.key.key_id, _iso(t.key.valid_from),
                      _iso(t.key.valid_until) if t.key.valid_until else "-", t.source)
    return table
