"""Reading the dead-letter path back: `ioxhub quarantine list` and `ioxhub quarantine show`.

`read_letters(store, org=, reason=, since=, until=, topic=)` gives the letters under quarantine/events/
(newest first), each with its id `topic:partition:offset:reason`, whether it can be retried, and its
retries (`quarantine/retries/`); `find_letters(store, letter_id)` the letters of one id;
`letter_detail(store, letter)` adds the traceback of an internal error and the payload's release.
"""
from __future__ import annotations

import datetime as dt
import io

import fastavro

from ioxhub.contracts import codec, dataset_chunk
from ioxhub.contracts.registry import Registry
from ioxhub.errors import IoxhubError
from ioxhub.ingest.quarantine import INTERNAL_ERROR
from ioxhub.storage import ObjectStore, quarantine_error_key, quarantine_retry_key

EVENTS_ZONE = "quarantine/events/"


class LetterNotFound(IoxhubError):
    """No dead letter has the id asked for."""


def letter_id(letter: dict) -> str:
    return f"{letter['topic']}:{letter['partition']}:{letter['offset']}:{letter['reason']}"


def parse_letter_id(text: str) -> tuple[str, int, int, str | None]:
    """TOPIC:PARTITION:OFFSET[:REASON] -> its parts; a LetterNotFound naming the expected form otherwise."""
    parts = text.split(":")
    try:
        if len(parts) in (3, 4):
            return parts[0], int(parts[1]), int(parts[2]), parts[3] if len(parts) == 4 else None
    except ValueError:
        pass
    raise LetterNotFound(f"letter id {text!r}: expected TOPIC:PARTITION:OFFSET[:REASON] "
                         "(the id column of `ioxhub quarantine list`)")


def retryable(letter: dict) -> bool:
    """A whole event kept as received (not refused observations of an applied release: `ioxhub replay`)."""
    return letter.get("payload") is not None and not letter.get("observations")


def retries(store: ObjectStore, topic: str, partition: int, offset: int) -> list[dict]:
    return (store.get_json(quarantine_retry_key(topic, partition, offset)) or {}).get("attempts", [])


def read_letters(store: ObjectStore, *, org: str | None = None, reason: str | None = None,
                 since: dt.datetime | None = None, until: dt.datetime | None = None, topic: str | None = None,
                 with_retries: bool = True) -> list[dict]:
    """The letters matching every filter given, newest first (`quarantined_at`: the record's Kafka time)."""
    prefix = f"{EVENTS_ZONE}topic={topic}/" if topic else EVENTS_ZONE
    found = []
    for key in sorted(store.list(prefix)):
        data = store.get_bytes(key)
        if not data:
            continue
        for letter in fastavro.reader(io.BytesIO(data)):
            at = letter["quarantined_at"]
            if ((org and letter.get("org") != org) or (reason and letter["reason"] != reason)
                    or (since and at < since) or (until and at >= until)):
                continue
            letter["id"] = letter_id(letter)
            letter["object"] = key
            letter["retryable"] = retryable(letter)
            found.append(letter)
    if with_retries:
        cache: dict[tuple, list] = {}
        for letter in found:
            where = (letter["topic"], letter["partition"], letter["offset"])
            if where not in cache:
                cache[where] = retries(store, *where)
            letter["retries"] = cache[where]
    return sorted(found, key=lambda l: (l["quarantined_at"], l["topic"], l["partition"], l["offset"]), reverse=True)


def find_letters(store: ObjectStore, text: str) -> list[dict]:
    """The letters of one id (TOPIC:PARTITION:OFFSET, optionally :REASON)."""
    topic, partition, offset, reason = parse_letter_id(text)
    letters = [l for l in read_letters(store, topic=topic, reason=reason)
               if l["partition"] == partition and l["offset"] == offset]
    if not letters:
        raise LetterNotFound(f"no dead letter {text!r} under s3://{store.bucket}/{EVENTS_ZONE}topic={topic}/")
    return letters


def letter_detail(store: ObjectStore, letter: dict, registry: Registry) -> dict:
    """One letter for `quarantine show`: its fields, headers as text, the release its payload belongs to
    and, for an internal error, the traceback kept beside it."""
    out = {k: v for k, v in letter.items() if k != "payload"}
    out["headers"] = {k: _header_text(k, v) for k, v in (letter.get("headers") or {}).items()}
    out["payload_bytes"] = len(letter["payload"]) if letter.get("payload") is not None else None
    out["release"] = payload_release(letter, registry)
    out["traceback"] = None
    if letter["reason"] == INTERNAL_ERROR:
        text = store.get_bytes(quarantine_error_key(letter["topic"], letter["partition"], letter["offset"]))
        out["traceback"] = text.decode(errors="replace") if text else None
    return out


def payload_release(letter: dict, registry: Registry) -> dict | None:
    """{org, dataset, release_id, event} of a dataset event's payload, or None (not decodable, a policy)."""
    if letter.get("payload") is None:
        return None
    try:
        decoded = dataset_chunk.decode(letter["payload"], registry)
    except codec.DecodeError:
        return None
    rec = decoded.record
    if "release_id" not in rec:
        return None
    return {"org": rec.get("org"), "dataset": rec.get("dataset_id"), "release_id": rec["release_id"], "event": decoded.name}


def _header_text(name: str, value: bytes) -> str:
    if name.endswith("signature"):
        return value.hex()
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.hex()
