"""Replay: re-harmonize the applied releases of one dataset from raw/ with today's rules (after a rule fix).

`replay(org, dataset_id, since=, until=, first_offset=, last_offset=)` re-applies the releases with an event
in the range whose rows or refusals change, leaves the others alone, holds the datasets ingest lease and
returns (and records as run `replay` in the catalog) a summary; `row_changes` compares two versions of a
release's rows. Method: docs/operations.md, "Re-running after a rule fix".
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo

from ioxhub import lineage
from ioxhub.catalog import Catalog
from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.errors import IoxhubError
from ioxhub.ingest.datasets import CHUNK, MANIFEST, published_at
from ioxhub.ingest.harmonized import (LocalParquet, apply_release, data_path, deduplicated_sorted, internal,
                                      mark_release, observations_location, year_files)
from ioxhub.ingest.lease import holding
from ioxhub.ingest.markers import release_applied
from ioxhub.ingest.observations import HARMONIZED_SCHEMA, REFUSED_SCHEMA, SERIES_KEY, harmonize_chunk, with_all_columns
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.run import accept
from ioxhub.ingest.spill import MemoryBudget, ReleaseSpill
from ioxhub.keys import load_trust_store
from ioxhub.logs import with_context
from ioxhub.names import check_id, datasets_topic
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore, quarantine_rows_key
from ioxhub.tables import HARMONIZED, HISTORY, object_key, table_name

log = logging.getLogger("ioxhub.replay")
DAG_ID = "replay"


class ReplayError(IoxhubError):
    """A replay asked for something that cannot be (unknown org, an empty or reversed range)."""


@dataclass(frozen=True)
class RawRecord:
    """A record read back from raw/, shaped as the ingest's `accept` takes it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    headers: list
    value: bytes | None
    timestamp_type: int = 0


@dataclass
class ReleaseEvents:
    release_id: str
    chunks: dict[int, tuple[RawRecord, codec.Decoded]] = field(default_factory=dict)
    manifest: tuple[RawRecord, codec.Decoded] | None = None
    in_range: bool = False


@dataclass(frozen=True)
class Range:
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    first_offset: int | None = None
    last_offset: int | None = None

    def check(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ReplayError(f"replay range: --since {self.since.isoformat()} is not before --until {self.until.isoformat()}")
        if self.first_offset is not None and self.last_offset is not None and self.first_offset > self.last_offset:
            raise ReplayError(f"replay range: --first-offset {self.first_offset} is after --last-offset {self.last_offset}")

    def holds(self, record: RawRecord) -> bool:
        at = dt.datetime.fromtimestamp(record.timestamp / 1000, dt.timezone.utc)
        return ((self.since is None or at >= self.since) and (self.until is None or at < self.until)
                and (self.first_offset is None or record.offset >= self.first_offset)
                and (self.last_offset is None or record.offset <= self.last_offset))

    def describe(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in dataclasses.asdict(self).items()}


def replay(org: str, dataset_id: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
           first_offset: int | None = None, last_offset: int | None = None, settings: Settings | None = None,
           run_id: str | None = None) -> dict:
    """Re-harmonize the applied releases of `org`/`dataset_id` with an event in the range; see the module doc."""
    settings = settings or get_settings()
    started = time.monotonic()
    check_id(dataset_id, "dataset id")
    spec = load_orgs(settings.orgs_file)
    if org not in {o.id for o in spec.orgs}:
        raise ReplayError(f"replay: org {org!r} is not in {settings.orgs_file} (orgs: {', '.join(o.id for o in spec.orgs)})")
    window = Range(since, until, first_offset, last_offset)
    window.check()
    run_id = run_id or f"replay-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    store = ObjectStore(settings)
    catalog = Catalog(store)
    context = with_context(log, run_id=run_id, org=org, dataset=dataset_id)
    summary: dict = {"kind": "replay", "org": org, "dataset": dataset_id, "range": window.describe(),
                     "releases": {"selected": 0, "replayed": 0, "unchanged": 0, "skipped": 0},
                     "observations": {"added": 0, "changed": 0, "removed": 0, "refused_before": 0, "refused_after": 0},
                     "events": {"read": 0, "refused": 0}, "raw_objects": [], "by_release": []}
    trace = lineage.LineageRun("replay", settings)
    trace.start()
    try:
        _replay_under_lease(store, catalog, settings, spec, org, dataset_id, window, run_id, context, summary, started)
    except BaseException as exc:
        trace.fail(exc)
        raise
    trace.complete(*replay_lineage(settings, org, dataset_id, summary))
    context.info("replay %s/%s: %s", org, dataset_id, {k: summary[k] for k in ("releases", "observations", "events")})
    return {**summary, "run_id": run_id}


def replay_lineage(settings: Settings, org: str, dataset_id: str, summary: dict) -> tuple[list[dict], list[dict]]:
    """The replay's lineage: inputs the raw/ objects read, output the harmonized dataset with the releases
    re-applied (none when nothing changed)."""
    inputs = [lineage.s3_dataset(settings, key) for key in summary["raw_objects"]]
    replayed = [r["release_id"] for r in summary["by_release"] if r["status"] == "replayed"]
    outputs = [lineage.s3_dataset(
        settings, observations_location(settings, org, dataset_id),
        outputStatistics=lineage.output_statistics(summary["observations"]["added"] + summary["observations"]["changed"]),
        ioxhub_releases=lineage.releases_facet([lineage.release_ref(org, dataset_id, r) for r in replayed]))] if replayed else []
    return inputs, outputs


def _replay_under_lease(store: ObjectStore, catalog: Catalog, settings: Settings, spec, org: str, dataset_id: str,
                        window: "Range", run_id: str, context, summary: dict, started: float) -> None:
    with holding(store, "datasets", f"replay {run_id}", settings.ingest_lease_seconds, settings.lock_wait_seconds) as lease:
        trust = load_trust_store(settings, spec) if settings.require_signatures else None
        releases = _releases_from_raw(store, settings, org, dataset_id, window, trust, summary)
        letters = DeadLetters()          # rows refused now that were not before
        with tempfile.TemporaryDirectory(prefix="ioxhub-replay-") as tmp:
            for release_id in sorted(r for r, events in releases.items() if events.in_range):
                summary["releases"]["selected"] += 1
                outcome = _replay_release(store, catalog, org, dataset_id, releases[release_id], Path(tmp), letters)
                summary["by_release"].append(outcome)
                status = outcome["status"]
                summary["releases"][status if status in ("replayed", "unchanged") else "skipped"] += 1
                for name in summary["observations"]:
                    summary["observations"][name] += outcome.get(name, 0)
                context.bind(release_id=release_id).info("replay: release %s %s", release_id, status)
                lease.renew()              # still ours (raises LeaseLost if another run took it over)
        summary["dead_letters"] = letters.write(store, settings, attempt=run_id)
        summary["seconds"] = round(time.monotonic() - started, 3)
        catalog.record_run(DAG_ID, run_id, summary)


def _releases_from_raw(store: ObjectStore, settings: Settings, org: str, dataset_id: str, window: Range, trust,
                       summary: dict) -> dict[str, ReleaseEvents]:
    """Every event of the dataset in raw/ that passes the ingest's checks, by release (first copy of each
    chunk and manifest by offset); a release is in range when one of its events is."""
    registry = get_registry(settings.schemas_dir)
    topic = datasets_topic(org)
    wanted_key = f"{org}/{dataset_id}".encode()
    releases: dict[str, ReleaseEvents] = {}
    refused = DeadLetters()
    for key in sorted(store.list(f"raw/org={org}/topic={topic}/")):
        data = store.get_bytes(key)
        if data is None:
            continue
        for event in fastavro.reader(io.BytesIO(data)):
            if event["key"] != wanted_key:
                continue
            summary["events"]["read"] += 1
            if not summary["raw_objects"] or summary["raw_objects"][-1] != key:
                summary["raw_objects"].append(key)          # the inputs, for lineage
            timestamp = event["timestamp"]
            millis = int(timestamp.timestamp() * 1000) if isinstance(timestamp, dt.datetime) else int(timestamp)
            record = RawRecord(event["topic"], event["partition"], event["offset"], millis,
                               list(event["headers"].items()), event["value"])
            decoded = accept(record, refused, trust, registry)
            if decoded is None:
                summary["events"]["refused"] += 1
                continue
            rec = decoded.record
            if rec.get("dataset_id") != dataset_id or decoded.name not in (CHUNK, MANIFEST):
                continue
            events = releases.setdefault(rec["release_id"], ReleaseEvents(rec["release_id"]))
            events.in_range |= window.holds(record)
            if decoded.name == CHUNK:
                events.chunks.setdefault(rec["chunk_seq"], (record, decoded))
            elif events.manifest is None:
                events.manifest = (record, decoded)
    return releases


def _replay_release(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, events: ReleaseEvents,
                    workdir: Path, letters: DeadLetters) -> dict:
    release_id = events.release_id
    outcome: dict = {"release_id": release_id}
    marker = release_applied(catalog, org, dataset_id, release_id)
    if marker is None:
        return {**outcome, "status": "not-applied",
                "detail": "never applied (staged or quarantined): `ioxhub quarantine retry` resubmits refused releases"}
    problem = _incomplete(events)
    if problem:
        return {**outcome, "status": "incomplete-in-raw", "detail": problem}
    manifest = events.manifest[1].record
    harmonized, refused = [], []
    for seq in range(manifest["chunk_count"]):
        _, decoded = events.chunks[seq]
        result = harmonize_chunk(decoded.record, f"{CHUNK}/v{decoded.version}", published_at(decoded.record["produced_at"]),
                                 manifest.get("unit_translations"))
        harmonized.append(result.harmonized)
        refused.append(result.refused)
    new_rows = _comparable(deduplicated_sorted(internal(pa.concat_tables(harmonized)))) \
        if sum(t.num_rows for t in harmonized) else HARMONIZED_SCHEMA.empty_table()
    new_refused = pa.concat_tables(refused) if refused else REFUSED_SCHEMA.empty_table()
    old_rows = _comparable(with_all_columns(_history_rows(store, catalog, org, dataset_id, release_id)))
    old_refused = store.read_parquet(quarantine_rows_key(org, dataset_id, release_id)) or REFUSED_SCHEMA.empty_table()
    diff = row_changes(old_rows, new_rows)
    outcome.update(diff, refused_before=old_refused.num_rows, refused_after=new_refused.num_rows)
    same_refusals = _comparable_refused(old_refused).equals(_comparable_refused(new_refused))
    if not any(diff.values()) and same_refusals:
        return {**outcome, "status": "unchanged"}

    if diff["removed"]:     # before the apply, so the catalog's counts of the partitions are the final ones
        outcome["dropped_from_current"] = _drop_removed(store, catalog, org, dataset_id, release_id, old_rows, new_rows,
                                                        workdir)
    spill = ReleaseSpill(workdir / f"release-{release_id}", MemoryBudget())
    try:
        for seq, table in enumerate(harmonized):
            spill.add(seq, table)
        meta = {**manifest, "schema_version": f"{CHUNK}/v{events.chunks[0][1].version}" if events.chunks else None,
                "commodity_classification": events.chunks[0][1].record.get("commodity_classification") if events.chunks else None}
        apply_dir = workdir / "apply"
        apply_dir.mkdir(exist_ok=True)
        if new_refused.num_rows:    # before the commits, as the ingest does
            store.put_parquet(quarantine_rows_key(org, dataset_id, release_id), new_refused)
        elif old_refused.num_rows:
            store.delete(quarantine_rows_key(org, dataset_id, release_id))
        replayed = {**{k: marker.get(k) for k in ("observations", "chunks", "commodity_classification")},
                    "refused": new_refused.num_rows, "replays": int(marker.get("replays", 0)) + 1,
                    **{f"replay_{k}": v for k, v in diff.items()}}
        if spill.rows_total:
            apply_release(store, catalog, org, dataset_id, release_id, spill, meta, apply_dir, replayed,
                          replace_history=True)
        else:
            mark_release(catalog, org, dataset_id, release_id, replayed, replace_history=True)
    finally:
        spill.close()
    if new_refused.num_rows:
        _letters_for_new_refusals(letters, events, org, old_refused, new_refused)
    return {**outcome, "status": "replayed"}


def _letters_for_new_refusals(letters: DeadLetters, events: ReleaseEvents, org: str, old: pa.Table, new: pa.Table) -> None:
    """One dead letter per (chunk event, reason, field) for the rows refused now and not before (as the
    ingest writes them; the rows themselves are in quarantine/observations/)."""
    where = ["event_id", "source_file", "source_line", "field", "reason"]
    fresh = new.join(old.select(where), where, join_type="left anti") if old.num_rows else new
    if not fresh.num_rows:
        return
    by_event = {decoded.record["event_id"]: record for record, decoded in events.chunks.values()}
    grouped = fresh.group_by(["event_id", "reason", "field"]).aggregate(
        [("source_line", "count"), ("source_line", "min"), ("source_file", "min"), ("value", "min")])
    for row in grouped.to_pylist():
        detail = (f"{row['source_line_count']} observation(s) of release {events.release_id} refused on replay: field "
                  f"{row['field']} {row['reason']} (e.g. {row['value_min']!r} at {row['source_file_min']} line "
                  f"{row['source_line_min']}); all rows in {quarantine_rows_key(org, events.manifest[1].record['dataset_id'], events.release_id)}")
        letters.refuse(by_event[row["event_id"]], row["reason"], detail, org=org, event_id=row["event_id"],
                       observations=row["source_line_count"], keep_payload=False)


def _incomplete(events: ReleaseEvents) -> str | None:
    """What raw/ lacks to rebuild the release (it was complete when applied), or None."""
    if events.manifest is None:
        return "its manifest is not in raw/"
    manifest = events.manifest[1].record
    missing = [s for s in range(manifest["chunk_count"]) if s not in events.chunks]
    if missing:
        return f"chunk(s) {missing[:10]} not in raw/"
    digest = hashlib.sha256()
    for seq in range(manifest["chunk_count"]):
        digest.update(codec.body(events.chunks[seq][0].value))
    if f"sha256:{digest.hexdigest()}" != manifest["checksum"]:
        return "its chunks in raw/ do not match the manifest's checksum"
    return None


def _comparable(table: pa.Table) -> pa.Table:
    """Plain (not dictionary) columns of HARMONIZED_SCHEMA, sorted by the series key."""
    table = with_all_columns(table).select(HARMONIZED_SCHEMA.names).cast(HARMONIZED_SCHEMA)
    return table.sort_by([(k, "ascending") for k in SERIES_KEY])


def _comparable_refused(table: pa.Table) -> pa.Table:
    table = table.select(REFUSED_SCHEMA.names).cast(REFUSED_SCHEMA)
    return table.sort_by([(k, "ascending") for k in ("event_id", "source_file", "source_line", "field")])


def row_changes(old: pa.Table, new: pa.Table) -> dict[str, int]:
    """Rows of a release added, changed (same series key, another value or attribute) and removed
    between two versions of its harmonized rows (one row per series key in each)."""
    key = list(SERIES_KEY)
    old_df, new_df = old.to_pandas(), new.to_pandas()
    for frame in (old_df, new_df):
        frame[key] = frame[key].astype(object).where(frame[key].notna(), "\0")     # null keys compare equal
    merged = old_df.merge(new_df, on=key, how="outer", suffixes=("_old", "_new"), indicator=True)
    both = merged[merged["_merge"] == "both"]
    others = [c for c in HARMONIZED_SCHEMA.names if c not in key]
    changed = 0
    if len(both):
        differs = None
        for c in others:
            a, b = both[f"{c}_old"], both[f"{c}_new"]
            d = ~((a == b) | (a.isna() & b.isna()))
            differs = d if differs is None else differs | d
        changed = int(differs.sum())
    return {"added": int((merged["_merge"] == "right_only").sum()), "changed": changed,
            "removed": int((merged["_merge"] == "left_only").sum())}


def _history_rows(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, release_id: str) -> pa.Table:
    """The release's rows as its history table holds them (its files: partition release_id)."""
    history = catalog.tables.load(HISTORY, table_name(org, dataset_id))
    files = catalog.tables.data_files(history, row_filter=EqualTo("release_id", release_id)) if history else []
    tables = [store.read_parquet(object_key(f.file_path, store.settings.bucket)) for f in files]
    return pa.concat_tables(tables, promote_options="permissive") if tables else HARMONIZED_SCHEMA.empty_table()


def _drop_removed(store: ObjectStore, catalog: Catalog, org: str, dataset_id: str, release_id: str, old: pa.Table,
                  new: pa.Table, workdir: Path) -> int:
    """Take out of the current table the rows this release still holds there under a series key today's
    rules no longer produce (refused now, or under another key), in one commit; returns how many. A value
    an older release had for such a key is in that release's history, not brought back (docs/operations.md)."""
    gone = _keyed(old).join(_keyed(new).select(list(SERIES_KEY)), list(SERIES_KEY), join_type="left anti")
    tables = catalog.tables
    table = tables.load(HARMONIZED, table_name(org, dataset_id))
    if table is None:
        return 0
    dropped, added, removed = 0, [], []
    for year, files in sorted(year_files(tables, table).items()):
        for data_file in files:
            current = store.read_parquet(object_key(data_file.file_path, store.settings.bucket))
            current = with_all_columns(current).select(HARMONIZED_SCHEMA.names).cast(HARMONIZED_SCHEMA)
            position = pa.array(range(current.num_rows), pa.int64())
            mine = _keyed(current).append_column("_pos", position).filter(pc.equal(current["release_id"], release_id))
            hit = mine.join(gone.select(list(SERIES_KEY)), list(SERIES_KEY), join_type="left semi")
            if hit.num_rows:
                keep = pc.invert(pc.is_in(position, value_set=hit["_pos"]))
                out = LocalParquet(workdir / f"drop-{year}.parquet")
                out.write(current.filter(keep))
                path = data_path(table.location(), year, release_id)
                added.append(out.upload(store, object_key(path, store.settings.bucket)))
                removed.append(data_file)
                dropped += hit.num_rows
    if removed:
        tables.commit_files(table, add=added, remove=removed, summary={"ioxhub.replay_dropped": release_id})
    return dropped


def _keyed(table: pa.Table) -> pa.Table:
    """The series-key columns with nulls as a sentinel (a join matches no null), plus the rest."""
    columns = {n: (pc.fill_null(table[n].cast(pa.string()), "\0") if n in SERIES_KEY else table[n]) for n in table.column_names}
    return pa.table(columns)
