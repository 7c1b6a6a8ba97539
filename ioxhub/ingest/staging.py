"""Releases waiting in staging/: the list `ioxhub status` shows, and their expiry.

- `staged_releases(store)`: each release in staging/ with its events, bytes and the age of its first event.
- `expire_staged(store, settings, active=..., caught_up=...)`, called by each datasets ingest run: quarantines
  (`incomplete-release`) a release still incomplete IOXHUB_STAGING_MAX_AGE_HOURS after its first staged event.
- `expired_releases(store)`: the records of the expired releases.
Method and rationale: docs/staging-expiry.md.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec, dataset_chunk
from ioxhub.contracts.registry import get_registry
from ioxhub.ingest.markers import release_applied
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore, expired_release_key, staging_prefix

STAGING_ZONE = "staging/"
EXPIRED_ZONE = "quarantine/expired_releases/"
INCOMPLETE_RELEASE = "incomplete-release"


def staged_releases(store: ObjectStore, now: dt.datetime | None = None) -> list[dict]:
    """Each release waiting in staging/: org, dataset, release, staged events, bytes, oldest event (UTC)
    and its age in hours, the longest-waiting first."""
    now = now or dt.datetime.now(dt.timezone.utc)
    releases: dict[tuple[str, str, str], dict] = {}
    for entry in store.entries(STAGING_ZONE):
        parts = dict(p.split("=", 1) for p in entry.key[len(STAGING_ZONE):].split("/")[:3] if "=" in p)
        if set(parts) != {"org", "dataset", "release"}:
            continue          # not a staged event (e.g. provisioning's access check)
        key = (parts["org"], parts["dataset"], parts["release"])
        r = releases.setdefault(key, {"org": key[0], "dataset": key[1], "release": key[2], "events": 0, "bytes": 0,
                                      "oldest": None})
        r["events"] += 1
        r["bytes"] += entry.size
        if entry.modified is not None and (r["oldest"] is None or entry.modified < r["oldest"]):
            r["oldest"] = entry.modified
    for r in releases.values():
        r["age_hours"] = round((now - r["oldest"]).total_seconds() / 3600, 1) if r["oldest"] else None
    return sorted(releases.values(), key=lambda r: (r["oldest"] is None, r["oldest"] or now, r["org"], r["dataset"]))


@dataclass(frozen=True)
class _StagedEvent:
    """A staged event as the source of a dead letter (its Kafka coordinates are in its object name)."""

    topic: str
    partition: int
    offset: int
    timestamp: int          # ms: when it was staged
    headers: tuple
    value: bytes | None


def expire_staged(store: ObjectStore, settings: Settings, *, active: set[tuple[str, str, str]], caught_up: bool,
                  now: dt.datetime | None = None) -> dict[str, int]:
    """Quarantine every release staged longer than the max age; returns releases_expired, events_expired.

    `active`: releases that received events in this run (never expired by it); `caught_up`: False when
    the run stopped at its record limit, so a release's missing events may still wait in Kafka: nothing
    expires then."""
    counts = {"releases_expired": 0, "events_expired": 0, "staged_leftovers_removed": 0}
    if not caught_up:
        return counts
    now = now or dt.datetime.now(dt.timezone.utc)
    cutoff = now - dt.timedelta(hours=settings.staging_max_age_hours)
    due = [r for r in staged_releases(store, now)
           if r["oldest"] is not None and r["oldest"] <= cutoff and (r["org"], r["dataset"], r["release"]) not in active]
    catalog = Catalog(store)
    for r in due:
        key = (r["org"], r["dataset"], r["release"])
        if release_applied(catalog, *key) is not None:   # applied; a crash came before its staging was emptied
            leftovers = list(store.list(staging_prefix(*key)))
            for staged in leftovers:
                store.delete(staged)
            counts["staged_leftovers_removed"] += len(leftovers)
            continue
        letters, record, staged_keys = _expiry(store, settings, key, r, now)
        letters.write(store, settings)                       # durable first ...
        store.put_json(expired_release_key(*key), record)
        for staged in staged_keys:                          # ... then out of staging/
            store.delete(staged)
        counts["releases_expired"] += 1
        counts["events_expired"] += len(staged_keys)
    return counts


def _expiry(store: ObjectStore, settings: Settings, key: tuple[str, str, str], staged: dict,
            now: dt.datetime) -> tuple[DeadLetters, dict, list[str]]:
    """The dead letters and the expiry record of one release, and its staged objects."""
    org, dataset_id, release_id = key
    events: list[tuple[str, _StagedEvent, dict | None]] = []
    for entry in store.entries(staging_prefix(*key)):
        kind, topic, partition, offset = entry.key.rsplit("/", 1)[-1].removesuffix(".avro").split("@")
        value = store.get_bytes(entry.key)
        try:
            record = dataset_chunk.decode(value, get_registry(settings.schemas_dir)).record if value else None
        except codec.DecodeError:
            record = None     # it decoded when staged; kept as bytes in its dead letter whatever happens
        stamp = int(entry.modified.timestamp() * 1000) if entry.modified else 0
        events.append((entry.key, _StagedEvent(topic, int(partition), int(offset), stamp, (), value), record))
    chunks = {r["chunk_seq"] for k, _, r in events if r is not None and "chunk_seq" in r}
    counts = {r["chunk_count"] for _, _, r in events if r is not None and "chunk_count" in r}
    has_manifest = any(k.rsplit("/", 1)[-1].startswith("manifest@") for k, _, _ in events)
    missing = describe_missing(chunks, max(counts) if counts else None, has_manifest)
    age = staged["age_hours"]
    detail = (f"release {release_id} of {org}/{dataset_id} still incomplete after {age:,.1f} h in staging/ "
              f"(IOXHUB_STAGING_MAX_AGE_HOURS={settings.staging_max_age_hours:g}): missing {missing}")
    letters = DeadLetters()
    for _, source, record in events:
        letters.refuse(source, INCOMPLETE_RELEASE, detail, org=org,
                       event_id=record.get("event_id") if record else None)
    record = {
        "org": org, "dataset": dataset_id, "release": release_id, "reason": INCOMPLETE_RELEASE,
        "missing": missing, "events": len(events), "chunks_present": sorted(chunks),
        "chunk_count": max(counts) if counts else None, "manifest": has_manifest,
        "event_ids": sorted(r["event_id"] for _, _, r in events if r is not None),
        "first_staged_at": staged["oldest"].isoformat(timespec="seconds"), "age_hours": age,
        "max_age_hours": settings.staging_max_age_hours, "expired_at": now.isoformat(timespec="seconds"),
    }
    return letters, record, [k for k, _, _ in events]


def describe_missing(chunks: set[int], chunk_count: int | None, has_manifest: bool) -> str:
    """What a release lacks, in words: "the manifest and chunks 2-4 of 5", "chunk 1 of 3", ..."""
    parts = [] if has_manifest else ["the manifest"]
    if chunk_count is None:
        parts.append("its chunks (none staged)" if not chunks else "possibly chunks (count unknown)")
    else:
        absent = [seq for seq in range(chunk_count) if seq not in chunks]
        if absent:
            parts.append(f"chunk{'s' if len(absent) > 1 else ''} {_ranges(absent)} of {chunk_count}")
    return " and ".join(parts) or "nothing (complete but not applied)"


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    start = prev = numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(out)


def expired_releases(store: ObjectStore) -> list[dict]:
    """The releases quarantined as incomplete, the latest expired first."""
    records = [doc for key in store.list(EXPIRED_ZONE) if (doc := store.get_json(key))]
    return sorted(records, key=lambda d: d.get("expired_at", ""), reverse=True)


def late_event_detail(expired: dict) -> str:
    """The dead-letter detail of an event that arrives for a release already expired."""
    return (f"late event of release {expired['release']} of {expired['org']}/{expired['dataset']}, quarantined as "
            f"incomplete at {expired['expired_at']} (it was missing {expired['missing']}); publish it again under "
            "a new release id")
