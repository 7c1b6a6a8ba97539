"""The release_manifest contract (schemas/release_manifest): build the record, encode it, check its content.

A release is complete when its manifest and every chunk it counts are in, and the checksum ("sha256:" +
hex over the chunks' Avro bodies, without their frame, in chunk_seq order) matches. Entry points:
`manifest_event_id`, `build(...)`, `encode(record)`, `check_manifest(record)`, `release_problem` (is a
release complete and consistent: ingest and `ioxhub conformance`).
"""
from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

from ioxhub.contracts import codec
from ioxhub.contracts.registry import Registry
from ioxhub.contracts.codec import ContentError

NAME = "release_manifest"
BAD_MANIFEST = "bad-manifest"          # the content reason of a manifest that cannot be true
CHECKSUM = re.compile(r"^sha256:[0-9a-f]{64}$")


def manifest_event_id(org: str, dataset_id: str, release_id: str) -> str:
    """The event id of a release's manifest: deterministic, so republishing creates nothing new."""
    return hashlib.sha256(f"{org}/{dataset_id}/{release_id}/manifest".encode()).hexdigest()


def build(*, org: str, dataset_id: str, release_id: str, chunk_count: int, observation_count: int,
          checksum: str, produced_at: int, title: str | None = None, licence: str | None = None,
          source_url: str | None = None, rejected_at_source: int = 0,
          unit_translations: dict[str, str] | None = None) -> dict[str, Any]:
    """The manifest record of a release whose chunks are all sent (`produced_at`: epoch milliseconds)."""
    return {
        "event_id": manifest_event_id(org, dataset_id, release_id), "org": org,
        "dataset_id": dataset_id, "release_id": release_id, "chunk_count": chunk_count,
        "observation_count": observation_count, "checksum": checksum,
        "produced_at": produced_at, "title": title, "licence": licence, "source_url": source_url,
        "rejected_at_source": rejected_at_source, "unit_translations": dict(unit_translations or {}),
    }


def encode(record: dict[str, Any], registry: Registry | None = None) -> bytes:
    """The single-object encoding of a manifest record (the latest version of `registry`, default the
    global settings' schemas)."""
    return codec.encode(NAME, record, registry=registry)


def check_manifest(record: dict[str, Any]) -> None:
    """A release manifest: counts that can be true and a checksum of the published form."""
    codec.check_ids(record)
    count, observations = record["chunk_count"], record["observation_count"]
    if count < 0 or observations < 0 or record["rejected_at_source"] < 0:
        raise ContentError(BAD_MANIFEST, f"negative count (chunk_count {count}, observation_count {observations}, "
                                         f"rejected_at_source {record['rejected_at_source']})")
    if count == 0 and observations:
        raise ContentError(BAD_MANIFEST, f"chunk_count 0 with observation_count {observations}")
    if not CHECKSUM.fullmatch(record["checksum"]):
        raise ContentError(BAD_MANIFEST, f"field checksum: {record['checksum'][:80]!r} is not sha256:<64 hex digits>")


INCOMPLETE = "incomplete"


def release_problem(manifest: dict[str, Any], chunk_rows: dict[int, int], value_of: Callable[[int], bytes]) -> str | None:
    """None when the chunks (`chunk_seq` -> observations; `value_of(seq)`: the framed value) complete the
    manifest consistently, INCOMPLETE while some are missing, else what is inconsistent."""
    expected = manifest["chunk_count"]
    if any(seq >= expected or seq < 0 for seq in chunk_rows):
        return f"chunk_seq {max(chunk_rows)} beyond the manifest's chunk_count {expected}"
    if len(chunk_rows) < expected:
        return INCOMPLETE
    digest = hashlib.sha256()
    for seq in range(expected):
        digest.update(codec.body(value_of(seq)))
    if f"sha256:{digest.hexdigest()}" != manifest["checksum"]:
        return f"checksum mismatch: manifest says {manifest['checksum']}, chunks give sha256:{digest.hexdigest()}"
    observations = sum(chunk_rows[seq] for seq in range(expected))
    if observations != manifest["observation_count"]:
        return f"manifest announces {manifest['observation_count']} observations, chunks hold {observations}"
    return None
