"""Signed events: Ed25519 record signatures and the checks ingest runs first.

Entry points: `sign` / `Signer.sign` (producers), `verify`, `verification_time`, `check_payload_org`
(ingest), `TrustStore` (the public keys ingest trusts). Key files and the keyring: `ioxhub.keys`.
The scheme, the refusal reasons and rotation: docs/signing.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Literal

from blake3 import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ioxhub import names
from ioxhub.contracts import codec
from ioxhub.errors import IoxhubError
from ioxhub.orgs import OrgsSpec, SigningKey

HEADER_KEY_ID = "ioxhub-key-id"
HEADER_SIGNATURE = "ioxhub-signature"
# The headers a signature covers, in order. Contract 1.1: the CloudEvents attributes (a record carrying
# ce_specversion); contract 1.0 (retired, accepted until 2.0): the three ioxhub-* identity headers.
SIGNED_HEADERS = (codec.HEADER_CE_SPECVERSION, codec.HEADER_CE_ID, codec.HEADER_CE_SOURCE, codec.HEADER_CE_TYPE,
                  codec.HEADER_CE_TIME, codec.HEADER_CONTENT_TYPE, codec.HEADER_SCHEMA)
LEGACY_SIGNED_HEADERS = (codec.HEADER_ORG, codec.HEADER_SCHEMA, codec.HEADER_EVENT_ID)
_TAG = b"ioxhub-signature-v3"          # v3: CloudEvents headers; the value enters as its BLAKE3 digest
_LEGACY_TAG = b"ioxhub-signature-v2"
_ALL_SIGNED = frozenset((*SIGNED_HEADERS, *LEGACY_SIGNED_HEADERS, HEADER_KEY_ID, HEADER_SIGNATURE))

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




# ------------------------------------------------------------------------------------------- signing
def signed_bytes(value: bytes, topic: str, identity: dict[str, bytes], key_id: bytes) -> bytes:
    """The exact bytes the signature covers (length-prefixed, so no field can bleed into another): the
    CloudEvents form when `identity` has ce_specversion, else the retired contract-1.0 form."""
    tag, names_ = ((_TAG, SIGNED_HEADERS) if codec.HEADER_CE_SPECVERSION in identity
                   else (_LEGACY_TAG, LEGACY_SIGNED_HEADERS))
    parts = [tag, topic.encode(), *(identity.get(h, b"") for h in names_), key_id,
             blake3(value, max_threads=1).digest()]
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def sign(record_value: bytes, headers: Iterable[tuple[str, bytes]], private_key: Ed25519PrivateKey,
         key_id: str, topic: str) -> Headers:
    """`headers` with `ioxhub-key-id` and `ioxhub-signature` (replacing any earlier ones) for `topic`."""
    kept = [(k, bytes(v)) for k, v in headers if k not in (HEADER_KEY_ID, HEADER_SIGNATURE)]
    identity = {k: v for k, v in kept if k in _ALL_SIGNED}
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
        if k in seen and k in _ALL_SIGNED:
            raise SignatureError("bad-signature", f"header {k} appears more than once")
        seen[k] = bytes(v)
    key_id_raw, signature = seen.get(HEADER_KEY_ID), seen.get(HEADER_SIGNATURE)
    if not key_id_raw or not signature:
        missing = " and ".join(h for h in (HEADER_KEY_ID, HEADER_SIGNATURE) if not seen.get(h))
        raise SignatureError("unsigned", f"record has no {missing} header")
    org = codec.header_org(seen)
    if not org:
        which = (f"{codec.HEADER_CE_SOURCE} header naming an org ({codec.CE_SOURCE_PREFIX}<ORG>)"
                 if codec.HEADER_CE_SPECVERSION in seen else f"{codec.HEADER_CE_SOURCE} or {codec.HEADER_ORG} header")
        raise SignatureError("org-mismatch", f"record has no {which}")
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
        until = iso_utc(trusted.key.valid_until) if trusted.key.valid_until else "open"
        raise SignatureError("expired-key", f"key {key_id!r} of {org} is valid {iso_utc(trusted.key.valid_from)} "
                                            f"to {until}, not at {iso_utc(at)}")
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


def iso_utc(t: datetime) -> str:
    """A time as ISO 8601 in UTC with a `Z` (messages and key files)."""
    return t.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
