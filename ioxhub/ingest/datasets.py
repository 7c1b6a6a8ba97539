"""Dataset events of one batch -> complete releases applied to their Iceberg tables.

`DatasetIngest.add` takes each decoded event; `finish` applies the releases that are complete and
consistent (manifest, every chunk, checksum, counts), stages the others in staging/ and refuses the bad
ones whole; `settle` removes the staged events of refused releases once their dead letters are written.
Every event ends in one count of `DatasetCounts`. Release model and crash analysis: docs/architecture.md.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
from kafka.consumer.fetcher import ConsumerRecord

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec, content, dataset_chunk, release_manifest
from ioxhub.contracts.registry import Registry, get_registry
from ioxhub.ingest.harmonized import apply_release, mark_release
from ioxhub.ingest.markers import ReleaseMarkers
from ioxhub.ingest.observations import REFUSED_SCHEMA, harmonize_chunk
from ioxhub.ingest.quarantine import OUTAGES, DeadLetters
from ioxhub.ingest.spill import MemoryBudget, ReleaseSpill
from ioxhub.ingest.staging import INCOMPLETE_RELEASE, late_event_detail
from ioxhub.storage import ObjectStore, expired_release_key, quarantine_rows_key, staging_key, staging_prefix

CHUNK, MANIFEST = "dataset_chunk", "release_manifest"
log = logging.getLogger("ioxhub.ingest")


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
    observations_deleted: int = 0      # current rows removed by the releases' ACTION D rows
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
    refusal: tuple[str, str] | None = None     # (reason, detail): the whole release is refused at finish
    staged_parts: list[Part] = field(default_factory=list)    # every event read back from staging/
    commodity_classification: str | None = None               # its chunks' (dataset_chunk v2)

    def refuse(self, reason: str, detail: str) -> None:
        """Refuse the whole release at finish (the first refusal names it)."""
        if self.refusal is None:
            self.refusal = (reason, detail)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.org, self.dataset_id, self.release_id

    @property
    def log_fields(self) -> dict:
        """The context of its log lines: org, dataset, release and where its events of this run came from."""
        offsets = [p.source.offset for p in self.new_parts]
        return {"org": self.org, "dataset": self.dataset_id, "release_id": self.release_id,
                **({"topic": self.new_parts[0].source.topic, "partition": self.new_parts[0].source.partition,
                    "first_offset": min(offsets), "last_offset": max(offsets)} if offsets else {})}


class DatasetIngest:
    """Collects the dataset events of a batch, then applies the releases they complete.

    `workdir`: a local directory for this run's spills (the caller removes it)."""

    def __init__(self, store: ObjectStore, catalog: Catalog, dead: DeadLetters, workdir: Path,
                 registry: Registry | None = None, run_id: str | None = None):
        self.store, self.catalog, self.dead = store, catalog, dead
        self.run_id = run_id
        self.markers = ReleaseMarkers(catalog.tables)      # the tables read once per batch
        self.registry = registry or get_registry()
        self.workdir = workdir
        self.releases: dict[tuple[str, str, str], Release] = {}
        self.seen_events: set[str] = set()
        self.counts = DatasetCounts()
        self.bytes = EventBytes(workdir / "events.bin")
        self._spills = 0
        self.budget = MemoryBudget()
        self._taking: Release | None = None     # the release of the event being added (see `fail`)
        self.staging_deletes: list[str] = []     # staged events of refused releases, deleted by `settle`
        # releases applied: (key, events of this run, observations harmonized, observations refused by reason)
        self.applied: list[tuple[tuple[str, str, str], int, int, dict[str, int]]] = []

    def add(self, record: ConsumerRecord, decoded: codec.Decoded) -> None:
        """Take one decoded, verified event of a datasets topic."""
        self._taking = None
        rec = decoded.record
        if decoded.name not in (CHUNK, MANIFEST):
            self.dead.refuse(record, "wrong-event-type",
                             f"{decoded.name} v{decoded.version} event on a datasets topic (expected {CHUNK} or {MANIFEST})",
                             org=rec.get("org"), event_id=rec.get("event_id"))
            return
        try:
            content.check_event(decoded)
        except codec.ContentError as exc:
            self.dead.refuse(record, exc.reason, f"{record.topic}@{record.offset}: {decoded.name}: {exc.detail}",
                             org=rec["org"], event_id=None if exc.reason == codec.BAD_NAME else rec["event_id"])
            key = (rec["org"], rec["dataset_id"], rec["release_id"])
            if exc.reason != codec.BAD_NAME and (key in self.releases or not self.markers.applied(*key)):
                self._release(key).refuse("bad-release", f"{decoded.name} {rec['event_id']} refused ({exc.reason}: "
                                                         f"{exc.detail})")
            return
        if rec["event_id"] in self.seen_events:
            self._repeated(record, decoded)
            return
        self.seen_events.add(rec["event_id"])
        release = self._taking = self._release((rec["org"], rec["dataset_id"], rec["release_id"]))
        source = StagedRecord(record.topic, record.partition, record.offset, record.timestamp or 0,
                              tuple(record.headers or ()))
        part = self._take(release, source, decoded, record.value, staged=False)
        if part is None:
            self.counts.events_duplicate += 1
        else:
            release.new_parts.append(part)

    def fail(self, record: ConsumerRecord, detail: str) -> None:
        """`add` raised unexpectedly on `record` (already refused as internal-error): refuse its release
        whole, since it may hold part of the event."""
        if self._taking is not None:
            self._taking.refuse("internal-error", detail)
            self._taking.new_parts = [p for p in self._taking.new_parts
                                      if (p.source.topic, p.source.partition, p.source.offset)
                                      != (record.topic, record.partition, record.offset)]

    def _repeated(self, record: ConsumerRecord, decoded: codec.Decoded) -> None:
        """An event id seen before in this run: a duplicate when the bytes are the same, else the release
        is refused (one event id, two contents: which one is right cannot be told)."""
        rec = decoded.record
        release = self.releases.get((rec["org"], rec["dataset_id"], rec["release_id"]))
        held = None
        if release is not None and not release.applied_before:
            parts = [*release.chunks.values(), *([release.manifest] if release.manifest else [])]
            held = next((p for p in parts if p.event_id == rec["event_id"]), None)
        if held is None or self.bytes.get(held.ref) == record.value:
            self.counts.events_duplicate += 1
            return
        detail = f"event {rec['event_id']} ({decoded.name}) sent twice with different contents"
        self.dead.refuse(record, "conflicting-event", f"{record.topic}@{record.offset}: {detail}",
                         org=rec["org"], event_id=rec["event_id"])
        release.refuse("conflicting-event", detail)

    def _release(self, key: tuple[str, str, str]) -> Release:
        """The release of `key`; on first sight, whether it was applied before and its staged events."""
        release = self.releases.get(key)
        if release is None:
            release = self.releases[key] = Release(*key)
            release.applied_before = self.markers.applied(*key) is not None
            if not release.applied_before:
                release.expired = self.store.get_json(expired_release_key(*key))
                if release.expired is None:
                    self._load_staged(release)
        return release

    def _take(self, release: Release, source: StagedRecord, decoded: codec.Decoded, value: bytes,
              staged: bool) -> Part | None:
        """Hold one event in its release (a new event replaces a staged copy); None if a duplicate.
        The same event with other bytes refuses the release (which copy is right cannot be told)."""
        rec = decoded.record
        held = release.chunks.get(rec["chunk_seq"]) if decoded.name == CHUNK else release.manifest
        ref = (0, 0) if release.applied_before else self.bytes.put(value)   # bytes: checksum, staging, dead letters
        part = Part(rec["event_id"], source, decoded.name, decoded.version, ref, staged=staged)
        if staged:
            release.staged_parts.append(part)
        if held is not None and ref != (0, 0) and self.bytes.get(held.ref) != value:
            what = f"chunk_seq {rec['chunk_seq']}" if decoded.name == CHUNK else "the manifest"
            release.refuse("conflicting-event", f"{what} sent twice with different contents "
                                                f"(events {held.event_id} and {rec['event_id']})")
        if held is not None and (staged or not held.staged):
            return None           # a duplicate in this run, or a second staged copy (the first stays)
        if decoded.name == CHUNK:
            part.seq, part.rows = rec["chunk_seq"], len(rec["indicator"])
            release.chunks[part.seq] = part
            if not release.applied_before:
                self._harmonize(release, part, rec)
        else:
            part.manifest = rec
            release.manifest = part
        return part

    def _harmonize(self, release: Release, part: Part, record: dict, unit_translations: dict | None = None) -> None:
        result = harmonize_chunk(record, f"{CHUNK}/v{part.version}", published_at(record["produced_at"]),
                                 unit_translations)
        release.commodity_classification = record.get("commodity_classification") or release.commodity_classification
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
                try:
                    self._finish(release)
                except OUTAGES:
                    raise
                except Exception as exc:    # a bug costs this release (its events), never the run
                    log.exception("ingest: unexpected error finishing release %s", release.key, extra=release.log_fields)
                    self._fail_release(release, exc)
                finally:
                    if release.spill is not None:
                        release.spill.close()
        finally:
            self.bytes.close()
        return self.counts

    def _finish(self, release: Release) -> None:
        if release.expired is not None:     # a late event: its release id was closed (ioxhub.ingest.staging)
            self._refuse_release(release, INCOMPLETE_RELEASE, late_event_detail(release.expired))
            return
        if release.refusal is not None:
            self._refuse_release(release, *release.refusal)
            return
        problem = self._completeness(release)
        if problem == "incomplete":
            self._stage(release)
        elif problem:
            self._refuse_release(release, "bad-release", problem)
        else:
            self._apply(release)

    def _load_staged(self, release: Release) -> None:
        for key in self.store.list(staging_prefix(*release.key)):
            value = self.store.get_bytes(key)
            self._take(release, _staged_record(key), dataset_chunk.decode(value, self.registry), value, staged=True)

    def _stage(self, release: Release) -> None:
        for part in release.new_parts:
            kind = "manifest" if part.name == MANIFEST else f"chunk-{part.seq:06d}"
            source = part.source
            name = f"{kind}@{source.topic}@{source.partition}@{source.offset}.avro"
            self.store.put_bytes(staging_key(*release.key, name), self.bytes.get(part.ref), "avro/binary")
        self.counts.events_staged += len(release.new_parts)
        self.counts.releases_pending += 1

    def _refuse_release(self, release: Release, reason: str, detail: str, skip: Part | None = None) -> None:
        """Refuse every event of the release (but `skip`, refused already): this run's, and those staged
        by earlier runs, whose staging objects are deleted once their letters are written (`settle`)."""
        where = f"release {release.release_id} of {release.org}/{release.dataset_id}: {detail}"
        for part in [*release.new_parts, *release.staged_parts]:
            if part is not skip:
                self.dead.refuse(dataclasses.replace(part.source, value=self.bytes.get(part.ref)), reason, where,
                                 org=release.org, event_id=part.event_id, earlier_run=part.staged)
        self.staging_deletes.extend(self.store.list(staging_prefix(*release.key)))

    def _fail_release(self, release: Release, exc: Exception) -> None:
        """Finishing the release raised unexpectedly: refuse it whole as internal-error (the traceback is
        kept beside the letter of its first event)."""
        parts = [*release.new_parts, *release.staged_parts]
        if not parts:
            raise exc
        first = parts[0]
        detail = self.dead.internal_error(dataclasses.replace(first.source, value=self.bytes.get(first.ref)), exc,
                                          org=release.org, event_id=first.event_id, earlier_run=first.staged)
        self._refuse_release(release, "internal-error", detail, skip=first)

    def settle(self) -> None:
        """Delete the staging objects of refused releases: called once their dead letters are written."""
        for key in self.staging_deletes:
            self.store.delete(key)
        self.staging_deletes.clear()

    def _reharmonize(self, release: Release, unit_translations: dict) -> None:
        """Harmonize the release's chunks again with its mapping's unit translations (known from the
        manifest only, after the chunks were harmonized as they arrived)."""
        if release.spill is not None:
            release.spill.close()
            release.spill = None
        release.refused.clear()
        for seq in sorted(release.chunks):
            part = release.chunks[seq]
            record = dataset_chunk.decode(self.bytes.get(part.ref), self.registry).record
            self._harmonize(release, part, record, unit_translations)

    def _apply(self, release: Release) -> None:
        manifest = release.manifest.manifest
        if manifest.get("unit_translations"):
            self._reharmonize(release, manifest["unit_translations"])
        count = manifest["chunk_count"]
        refused = [release.refused[seq] for seq in range(count) if seq in release.refused]
        bad = pa.concat_tables(refused) if refused else REFUSED_SCHEMA.empty_table()
        rows = release.spill.rows_total if release.spill is not None else 0
        meta = {**manifest, "schema_version": f"{CHUNK}/v{release.chunks[0].version}" if release.chunks else None,
                "commodity_classification": release.commodity_classification}
        workdir = self.workdir / "apply"
        workdir.mkdir(exist_ok=True)
        if bad.num_rows:       # before the commits: once the release is marked applied, it is never redone
            self.store.put_parquet(quarantine_rows_key(*release.key), bad)
        marker = {"observations": manifest["observation_count"], "refused": bad.num_rows,
                  "chunks": manifest["chunk_count"], "commodity_classification": release.commodity_classification}
        half = self.markers.half_applied(*release.key)
        if rows:
            counts = apply_release(self.store, self.catalog, *release.key, release.spill, meta, workdir, marker,
                                   self.run_id, half_applied=half)
        else:
            counts = None
            mark_release(self.catalog, *release.key, marker, self.run_id)
        self.markers.forget(release.org, release.dataset_id)
        if bad.num_rows:
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
            c.observations_deleted += counts.deleted
            c.superseded += counts.superseded
        self.applied.append((release.key, len(release.new_parts), counts.harmonized if counts else 0,
                             dict(Counter(bad.column("reason").to_pylist())) if bad.num_rows else {}))
        for key in list(self.store.list(staging_prefix(*release.key))):
            self.store.delete(key)
        log.info("ingest: release %s of %s/%s applied: %s rows harmonized, %s refused", release.release_id,
                 release.org, release.dataset_id, counts.harmonized if counts else 0, bad.num_rows,
                 extra=release.log_fields)

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
        return release_manifest.release_problem(release.manifest.manifest,
                                                {seq: part.rows for seq, part in release.chunks.items()},
                                                lambda seq: self.bytes.get(release.chunks[seq].ref))


def _release_order(release: Release) -> tuple:
    first = min((p.source.offset for p in release.new_parts), default=0)
    return (release.org, release.dataset_id, first)


def _staged_record(key: str) -> StagedRecord:
    _, topic, partition, offset = key.rsplit("/", 1)[-1].removesuffix(".avro").split("@")
    return StagedRecord(topic, int(partition), int(offset))


def published_at(produced_at) -> dt.datetime:
    if isinstance(produced_at, dt.datetime):
        return produced_at if produced_at.tzinfo else produced_at.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.fromtimestamp(produced_at / 1000, dt.timezone.utc)
