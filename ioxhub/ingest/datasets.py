"""Dataset events of one batch -> complete releases applied to the harmonized zone.

A release (org, dataset, release id) is a run of chunk events followed by its manifest, all keyed to one
partition. It becomes visible only when the manifest and every chunk it announces are here and the
checksum over the chunk bodies matches. Events of a release that is not complete yet are kept in
staging/ (their bytes as received) and the release is finished by the run that brings its last event,
or quarantined as `incomplete-release` when it waits too long (ioxhub.ingest.staging); a late event of
such a release is refused with the same reason.

Every event ends in exactly one bucket of `DatasetCounts`: applied (part of a release applied in this
run), staged (waiting for the rest of its release), duplicate (an event id seen before, or a release
already applied) or quarantined (with its reason, see DeadLetters). Observations of the releases applied
in this run end in one of: harmonized, refused (bad rows), duplicate rows.

Memory stays bounded whatever the size of a release: each chunk is harmonized as it arrives and its
rows go to a local spill (ioxhub.ingest.spill) in key order; the event bytes go to a local file (for
the checksum, staging and dead letters). Nothing of a release is durable before the release is
complete: the spill lives in the run's temporary directory, the harmonized zone is written by
`apply_release` once the manifest and every chunk are here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from kafka.consumer.fetcher import ConsumerRecord

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec
from ioxhub.ingest import chunkwire
from ioxhub.ingest.harmonized import apply_release
from ioxhub.ingest.observations import REFUSED_SCHEMA, harmonize_chunk
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.spill import MemoryBudget, ReleaseSpill
from ioxhub.ingest.staging import INCOMPLETE_RELEASE, late_event_detail
from ioxhub.names import InvalidName, check_id
from ioxhub.storage import ObjectStore, expired_release_key, quarantine_rows_key, staging_key, staging_prefix

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
    """The Kafka coordinates of an event (read back from staging/, or of this run without its bytes)."""

    topic: str
    partition: int
    offset: int
    timestamp: int = 0
    headers: tuple = ()
    value: bytes | None = None


class EventBytes:
    """The bytes of this run's dataset events, in one local file: (offset, length) refers to one."""

    def __init__(self, path: Path):
        self.file = open(path, "w+b")
        self.end = 0

    def put(self, value: bytes) -> tuple[int, int]:
        self.file.seek(self.end)
        self.file.write(value)
        ref = (self.end, len(value))
        self.end += len(value)
        return ref

    def get(self, ref: tuple[int, int]) -> bytes:
        self.file.seek(ref[0])
        return self.file.read(ref[1])

    def close(self) -> None:
        self.file.close()


@dataclass
class Part:
    """One event of a release: where it came from, where its bytes are, what it holds."""

    event_id: str
    source: StagedRecord
    name: str                          # CHUNK or MANIFEST
    version: int                       # the writer's schema version
    ref: tuple[int, int]               # its bytes in EventBytes
    seq: int | None = None             # chunks
    rows: int = 0                      # chunks: observations
    manifest: dict | None = None       # manifests: the record
    staged: bool = False


@dataclass
class Release:
    org: str
    dataset_id: str
    release_id: str
    chunks: dict[int, Part] = field(default_factory=dict)
    manifest: Part | None = None
    new_parts: list[Part] = field(default_factory=list)   # consumed in this run
    applied_before: bool = False
    expired: dict | None = None        # its record, when staging expiry quarantined this release id
    spill: ReleaseSpill | None = None
    refused: dict[int, pa.Table] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.org, self.dataset_id, self.release_id


class DatasetIngest:
    """Collects the dataset events of a batch, then applies the releases they complete.

    `workdir`: a local directory for this run's spills (the caller removes it)."""

    def __init__(self, store: ObjectStore, catalog: Catalog, dead: DeadLetters, workdir: Path):
        self.store, self.catalog, self.dead = store, catalog, dead
        self.workdir = workdir
        self.releases: dict[tuple[str, str, str], Release] = {}
        self.seen_events: set[str] = set()
        self.counts = DatasetCounts()
        self.bytes = EventBytes(workdir / "events.bin")
        self._spills = 0
        self.budget = MemoryBudget()

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
        release = self._release((rec["org"], rec["dataset_id"], rec["release_id"]))
        source = StagedRecord(record.topic, record.partition, record.offset, record.timestamp or 0,
                              tuple(record.headers or ()))
        part = self._take(release, source, decoded, record.value, staged=False)
        if part is None:
            self.counts.events_duplicate += 1
        else:
            release.new_parts.append(part)

    def _release(self, key: tuple[str, str, str]) -> Release:
        """The release of `key`; on first sight, whether it was applied before and its staged events."""
        release = self.releases.get(key)
        if release is None:
            release = self.releases[key] = Release(*key)
            release.applied_before = self.catalog.release_applied(*key) is not None
            if not release.applied_before:
                release.expired = self.store.get_json(expired_release_key(*key))
                if release.expired is None:
                    self._load_staged(release)
        return release

    def _take(self, release: Release, source: StagedRecord, decoded: codec.Decoded, value: bytes,
              staged: bool) -> Part | None:
        """Hold one event in its release (a new event replaces a staged copy); None if a duplicate."""
        rec = decoded.record
        held = release.chunks.get(rec["chunk_seq"]) if decoded.name == CHUNK else release.manifest
        if held is not None and (staged or not held.staged):
            return None           # a duplicate in this run, or a second staged copy (the first stays)
        ref = (0, 0) if release.applied_before else self.bytes.put(value)   # bytes: checksum, staging, dead letters
        part = Part(rec["event_id"], source, decoded.name, decoded.version, ref, staged=staged)
        if decoded.name == CHUNK:
            part.seq, part.rows = rec["chunk_seq"], len(rec["indicator"])
            release.chunks[part.seq] = part
            if not release.applied_before:
                self._harmonize(release, part, rec)
        else:
            part.manifest = rec
            release.manifest = part
        return part

    def _harmonize(self, release: Release, part: Part, record: dict) -> None:
        result = harmonize_chunk(record, f"{CHUNK}/v{part.version}", _published_at(record["produced_at"]))
        if release.spill is None:
            self._spills += 1
            release.spill = ReleaseSpill(self.workdir / f"release-{self._spills:06d}", self.budget)
        release.spill.add(part.seq, result.harmonized)
        if result.refused.num_rows:
            release.refused[part.seq] = result.refused
        else:
            release.refused.pop(part.seq, None)

    # ------------------------------------------------------------------------------------------ finish
    def finish(self) -> DatasetCounts:
        """Apply every release completed by this batch; stage the rest. Writes everything but offsets."""
        try:
            for release in sorted(self.releases.values(), key=_release_order):
                if release.applied_before:
                    self.counts.events_duplicate += len(release.new_parts)
                    continue
                problem = "expired" if release.expired is not None else self._completeness(release)
                if problem == "expired":     # a late event: its release id was closed (ioxhub.ingest.staging)
                    self._refuse_release(release, INCOMPLETE_RELEASE, late_event_detail(release.expired))
                elif problem == "incomplete":
                    self._stage(release)
                elif problem:
                    self._refuse_release(release, "bad-release", problem)
                else:
                    self._apply(release)
                if release.spill is not None:
                    release.spill.close()
        finally:
            self.bytes.close()
        return self.counts

    def _load_staged(self, release: Release) -> None:
        for key in self.store.list(staging_prefix(*release.key)):
            value = self.store.get_bytes(key)
            self._take(release, _staged_record(key), chunkwire.decode(value), value, staged=True)

    def _stage(self, release: Release) -> None:
        for part in release.new_parts:
            kind = "manifest" if part.name == MANIFEST else f"chunk-{part.seq:06d}"
            source = part.source
            name = f"{kind}@{source.topic}@{source.partition}@{source.offset}.avro"
            self.store.put_bytes(staging_key(*release.key, name), self.bytes.get(part.ref), "avro/binary")
        self.counts.events_staged += len(release.new_parts)
        self.counts.releases_pending += 1

    def _refuse_release(self, release: Release, reason: str, detail: str) -> None:
        where = f"release {release.release_id} of {release.org}/{release.dataset_id}: {detail}"
        for part in release.new_parts:
            self.dead.refuse(dataclasses.replace(part.source, value=self.bytes.get(part.ref)), reason, where,
                             org=release.org, event_id=part.event_id)
        for key in list(self.store.list(staging_prefix(*release.key))):
            self.store.delete(key)

    def _apply(self, release: Release) -> None:
        manifest = release.manifest.manifest
        count = manifest["chunk_count"]
        refused = [release.refused[seq] for seq in range(count) if seq in release.refused]
        bad = pa.concat_tables(refused) if refused else REFUSED_SCHEMA.empty_table()
        rows = release.spill.rows_total if release.spill is not None else 0
        meta = {**manifest, "schema_version": f"{CHUNK}/v{release.chunks[0].version}" if release.chunks else None}
        workdir = self.workdir / "apply"
        workdir.mkdir(exist_ok=True)
        counts = apply_release(self.store, self.catalog, *release.key, release.spill, meta, workdir) if rows else None
        if bad.num_rows:
            self.store.put_parquet(quarantine_rows_key(*release.key), bad)
            self._letters_for_refused_rows(release, bad)

        c = self.counts
        c.events_applied += len(release.new_parts)
        c.releases_applied += 1
        c.observations_received += rows + bad.num_rows
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
            self.dead.refuse(part.source, row["reason"], detail, org=release.org, event_id=part.event_id,
                             observations=row["source_line_count"], keep_payload=False)

    def _completeness(self, release: Release) -> str | None:
        """None when complete and consistent, "incomplete", or what is inconsistent."""
        if release.manifest is None:
            return "incomplete"
        manifest = release.manifest.manifest
        expected = manifest["chunk_count"]
        if any(seq >= expected or seq < 0 for seq in release.chunks):
            return f"chunk_seq {max(release.chunks)} beyond the manifest's chunk_count {expected}"
        if len(release.chunks) < expected:
            return "incomplete"
        digest = hashlib.sha256()
        observations = 0
        for seq in range(expected):
            part = release.chunks[seq]
            digest.update(codec.body(self.bytes.get(part.ref)))
            observations += part.rows
        if f"sha256:{digest.hexdigest()}" != manifest["checksum"]:
            return f"checksum mismatch: manifest says {manifest['checksum']}, chunks give sha256:{digest.hexdigest()}"
        if observations != manifest["observation_count"]:
            return f"manifest announces {manifest['observation_count']} observations, chunks hold {observations}"
        return None


def _release_order(release: Release) -> tuple:
    first = min((p.source.offset for p in release.new_parts), default=0)
    return (release.org, release.dataset_id, first)


def _staged_record(key: str) -> StagedRecord:
    _, topic, partition, offset = key.rsplit("/", 1)[-1].removesuffix(".avro").split("@")
    return StagedRecord(topic, int(partition), int(offset))


def _published_at(produced_at) -> dt.datetime:
    if isinstance(produced_at, dt.datetime):
        return produced_at if produced_at.tzinfo else produced_at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(produced_at / 1000, dt.timezone.utc)
