"""Dataset events of one batch -> complete releases applied to the harmonized zone.

A release (org, dataset, release id) is a run of chunk events followed by its manifest, all keyed to one
partition. It becomes visible only when the manifest and every chunk it announces are here and the
checksum over the chunk bodies matches. Events of a release that is not complete yet are kept in
staging/ (their bytes as received) and the release is finished by the run that brings its last event.

Every event ends in exactly one bucket of `DatasetCounts`: applied (part of a release applied in this
run), staged (waiting for the rest of its release), duplicate (an event id seen before, or a release
already applied) or quarantined (with its reason, see DeadLetters). Observations of the releases applied
in this run end in one of: harmonized, refused (bad rows), duplicate rows.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
from kafka.consumer.fetcher import ConsumerRecord

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec
from ioxhub.ingest.harmonized import apply_release
from ioxhub.ingest.observations import HARMONIZED_SCHEMA, REFUSED_SCHEMA, harmonize_chunk
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.names import InvalidName, check_id
from ioxhub.storage import ObjectStore, quarantine_rows_key, staging_key, staging_prefix

CHUNK, MANIFEST = "dataset_chunk", "release_manifest"


@dataclass
class DatasetCounts:
    events_applied: int = 0
    events_staged: int = 0
    events_duplicate: int = 0
    releases_applied: int = 0
    releases_pending: int = 0
    observations_received: int = 0     # in the releases applied by this run
    observations_harmonized: int = 0
    observations_refused: int = 0
    observations_duplicate: int = 0
    revisions_applied: int = 0
    superseded: int = 0
    refused_by_reason: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class StagedRecord:
    """The Kafka coordinates of an event read back from staging/ (kept in its object name)."""

    topic: str
    partition: int
    offset: int
    timestamp: int = 0
    headers: tuple = ()
    value: bytes | None = None


@dataclass
class Part:
    """One event of a release: where it came from, its bytes and its decoded record."""

    event_id: str
    value: bytes
    record: ConsumerRecord | StagedRecord
    decoded: codec.Decoded
    staged: bool = False


@dataclass
class Release:
    org: str
    dataset_id: str
    release_id: str
    chunks: dict[int, Part] = field(default_factory=dict)
    manifest: Part | None = None
    new_parts: list[Part] = field(default_factory=list)   # consumed in this run

    @property
    def key(self) -> tuple[str, str, str]:
        return self.org, self.dataset_id, self.release_id


class DatasetIngest:
    """Collects the dataset events of a batch, then applies the releases they complete."""

    def __init__(self, store: ObjectStore, catalog: Catalog, dead: DeadLetters):
        self.store, self.catalog, self.dead = store, catalog, dead
        self.releases: dict[tuple[str, str, str], Release] = {}
        self.seen_events: set[str] = set()
        self.counts = DatasetCounts()

    def add(self, record: ConsumerRecord, decoded: codec.Decoded) -> None:
        """Take one decoded, verified event of a datasets topic."""
        rec = decoded.record
        if decoded.name not in (CHUNK, MANIFEST):
            self.dead.refuse(record, "wrong-event-type",
                             f"{decoded.name} v{decoded.version} event on a datasets topic (expected {CHUNK} or {MANIFEST})",
                             org=rec.get("org"), event_id=rec.get("event_id"))
            return
        try:  # these become object keys: refuse path tricks and control characters before anything else
            check_id(rec["dataset_id"], "dataset_id")
            check_id(rec["release_id"], "release_id")
            check_id(rec["event_id"], "event_id")
        except InvalidName as exc:
            self.dead.refuse(record, "bad-name", f"{record.topic}@{record.offset}: {exc}", org=rec.get("org"))
            return
        if rec["event_id"] in self.seen_events:
            self.counts.events_duplicate += 1
            return
        self.seen_events.add(rec["event_id"])
        key = (rec["org"], rec["dataset_id"], rec["release_id"])
        release = self.releases.get(key) or self.releases.setdefault(key, Release(*key))
        part = Part(rec["event_id"], record.value, record, decoded)
        if decoded.name == CHUNK:
            if rec["chunk_seq"] in release.chunks:
                self.counts.events_duplicate += 1
                return
            release.chunks[rec["chunk_seq"]] = part
        else:
            if release.manifest is not None:
                self.counts.events_duplicate += 1
                return
            release.manifest = part
        release.new_parts.append(part)

    # ------------------------------------------------------------------------------------------ finish
    def finish(self) -> DatasetCounts:
        """Apply every release completed by this batch; stage the rest. Writes everything but offsets."""
        for release in sorted(self.releases.values(), key=_release_order):
            if self.catalog.release_applied(*release.key):
                self.counts.events_duplicate += len(release.new_parts)
                continue
            self._load_staged(release)
            problem = _completeness(release)
            if problem == "incomplete":
                self._stage(release)
            elif problem:
                self._refuse_release(release, "bad-release", problem)
            else:
                self._apply(release)
        return self.counts

    def _load_staged(self, release: Release) -> None:
        for key in self.store.list(staging_prefix(*release.key)):
            value = self.store.get_bytes(key)
            decoded = codec.decode(value)
            rec = decoded.record
            part = Part(rec["event_id"], value, _staged_record(key, value), decoded, staged=True)
            if decoded.name == MANIFEST:
                release.manifest = release.manifest or part
            else:
                release.chunks.setdefault(rec["chunk_seq"], part)

    def _stage(self, release: Release) -> None:
        for part in release.new_parts:
            rec = part.decoded.record
            kind = "manifest" if part.decoded.name == MANIFEST else f"chunk-{rec['chunk_seq']:06d}"
            source = part.record
            name = f"{kind}@{source.topic}@{source.partition}@{source.offset}.avro"
            self.store.put_bytes(staging_key(*release.key, name), part.value, "avro/binary")
        self.counts.events_staged += len(release.new_parts)
        self.counts.releases_pending += 1

    def _refuse_release(self, release: Release, reason: str, detail: str) -> None:
        where = f"release {release.release_id} of {release.org}/{release.dataset_id}: {detail}"
        for part in release.new_parts:
            self.dead.refuse(part.record, reason, where, org=release.org, event_id=part.event_id)
        for key in list(self.store.list(staging_prefix(*release.key))):
            self.store.delete(key)

    def _apply(self, release: Release) -> None:
        manifest = release.manifest.decoded.record
        harmonized, refused = [], []
        for seq in range(manifest["chunk_count"]):
            part = release.chunks[seq]
            result = harmonize_chunk(part.decoded.record, f"{CHUNK}/v{part.decoded.version}",
                                     _published_at(part.decoded.record["produced_at"]))
            harmonized.append(result.harmonized)
            refused.append(result.refused)
        rows = pa.concat_tables(harmonized) if harmonized else HARMONIZED_SCHEMA.empty_table()
        bad = pa.concat_tables(refused) if refused else REFUSED_SCHEMA.empty_table()
        meta = {**manifest, "schema_version": f"{CHUNK}/v{release.chunks[0].decoded.version}" if release.chunks else None}
        counts = apply_release(self.store, self.catalog, *release.key, rows, meta) if rows.num_rows else None
        if bad.num_rows:
            self.store.put_parquet(quarantine_rows_key(*release.key), bad)
            self._letters_for_refused_rows(release, bad)

        c = self.counts
        c.events_applied += len(release.new_parts)
        c.releases_applied += 1
        c.observations_received += rows.num_rows + bad.num_rows
        c.observations_refused += bad.num_rows
        if counts:
            c.observations_harmonized += counts.harmonized
            c.observations_duplicate += counts.duplicates
            c.revisions_applied += counts.revisions
            c.superseded += counts.superseded
        self.catalog.mark_release_applied(*release.key, {
            "observations": manifest["observation_count"], "harmonized": counts.harmonized if counts else 0,
            "refused": bad.num_rows, "duplicates": counts.duplicates if counts else 0,
            "revisions": counts.revisions if counts else 0, "chunks": manifest["chunk_count"]})
        for key in list(self.store.list(staging_prefix(*release.key))):
            self.store.delete(key)

    def _letters_for_refused_rows(self, release: Release, bad: pa.Table) -> None:
        """One dead letter per (chunk event, reason), naming the lines and fields concerned."""
        grouped = bad.group_by(["event_id", "reason", "field"]).aggregate(
            [("source_line", "count"), ("source_line", "min"), ("source_file", "min"), ("value", "min")])
        by_event = {p.event_id: p for p in release.chunks.values()}
        for row in grouped.to_pylist():
            self.counts.refused_by_reason[row["reason"]] += row["source_line_count"]
            part = by_event[row["event_id"]]
            detail = (f"{row['source_line_count']} observation(s) of release {release.release_id}: field "
                      f"{row['field']} {row['reason']} (e.g. {row['value_min']!r} at {row['source_file_min']} line "
                      f"{row['source_line_min']}); all rows in {quarantine_rows_key(*release.key)}")
            self.dead.refuse(part.record, row["reason"], detail, org=release.org, event_id=part.event_id,
                             observations=row["source_line_count"], keep_payload=False)


def _release_order(release: Release) -> tuple:
    first = min((p.record.offset for p in release.new_parts), default=0)
    return (release.org, release.dataset_id, first)


def _staged_record(key: str, value: bytes) -> StagedRecord:
    _, topic, partition, offset = key.rsplit("/", 1)[-1].removesuffix(".avro").split("@")
    return StagedRecord(topic, int(partition), int(offset), value=value)


def _published_at(produced_at) -> dt.datetime:
    if isinstance(produced_at, dt.datetime):
        return produced_at if produced_at.tzinfo else produced_at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(produced_at / 1000, dt.timezone.utc)


def _completeness(release: Release) -> str | None:
    """None when complete and consistent, "incomplete", or what is inconsistent."""
    if release.manifest is None:
        return "incomplete"
    manifest = release.manifest.decoded.record
    expected = manifest["chunk_count"]
    if any(seq >= expected or seq < 0 for seq in release.chunks):
        return f"chunk_seq {max(release.chunks)} beyond the manifest's chunk_count {expected}"
    if len(release.chunks) < expected:
        return "incomplete"
    digest = hashlib.sha256()
    observations = 0
    for seq in range(expected):
        part = release.chunks[seq]
        digest.update(codec.body(part.value))
        observations += len(part.decoded.record["indicator"])
    if f"sha256:{digest.hexdigest()}" != manifest["checksum"]:
        return f"checksum mismatch: manifest says {manifest['checksum']}, chunks give sha256:{digest.hexdigest()}"
    if observations != manifest["observation_count"]:
        return f"manifest announces {manifest['observation_count']} observations, chunks hold {observations}"
    return None
