"""Publish datasets and policy updates to the org's Kafka topics (the SDK behind `ioxhub publish`).

`publish_dataset(org, dataset_id, files, mapping)`: read (bounded batches, prefetched) -> validate ->
chunk (columnar Avro) -> sign and send, then the manifest once every chunk is acknowledged.
`publish_policy(org, file)`: check a policy file (`policy_file`) and send its good updates. Both return a
`PublishSummary`; `progress` receives `PublishProgress` (plain data). Benchmark seams (`source_batches`,
`value_column`, `warm_up`, `read_batches`), release id, retries, rejects: docs/publishing.md.
"""
from __future__ import annotations

import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Sequence

import pyarrow as pa

from ioxhub import names
from ioxhub.contracts import policy_update, release_manifest
from ioxhub.contracts.dataset_chunk import NAME as CHUNK
from ioxhub.contracts.registry import get_registry
from ioxhub.harmonize import countries, hs
from producers import rejects as rejects_mod
from producers.chunks import DEFAULT_MAX_BYTES, DEFAULT_MAX_OBSERVATIONS, Chunk, ChunkBuilder, ReleaseInfo
from producers.dimensions import KeyTracker, decide_commodity
from producers.filecheck import SourceError
from producers.ledger import ReleaseLedger
from producers.mapping import ColumnMapping
from producers.observe import PublishTrace
from producers.policy_file import check_policy_file
from producers.prefetch import Prefetched
from producers.readers import open_source
from producers.readers.base import DEFAULT_BLOCK_SIZE, SourceBatch, SourceFile
from producers.readers.structure import load_structure
from producers.release_id import compute_release_id
from producers.sender import Sender
from producers.summary import PublishError, PublishSummary, default_rejects_path, finish_rejects
from producers.validate import check_constants, validate_batch
from ioxhub.settings import Settings, get_settings

log = logging.getLogger("producers.publish")

__all__ = ["PublishError", "PublishProgress", "PublishSummary", "publish_dataset", "publish_policy",
           "source_batches", "value_column", "warm_up"]

Batch = tuple[SourceFile, ColumnMapping, SourceBatch]


class PublishProgress(NamedTuple):
    """How far a publish has read: `done` of `total` bytes over all its files, now in `file`."""

    file: str
    done: int
    total: int


# ================================================================================================ datasets
def publish_dataset(org: str, dataset_id: str, files: Sequence[str | Path],
                    mapping: ColumnMapping | str | Path | dict | None = None, *, fmt: str | None = None,
                    strict: bool = False, rejects_path: str | Path | None = None, release_id: str | None = None,
                    settings: Settings | None = None, structure: str | Path | None = None,
                    progress: Callable[[PublishProgress], None] | None = None,
                    max_chunk_bytes: int = DEFAULT_MAX_BYTES, max_chunk_observations: int = DEFAULT_MAX_OBSERVATIONS,
                    block_size: int = DEFAULT_BLOCK_SIZE,
                    read_batches: Callable[[Sequence[SourceFile], Sequence[ColumnMapping]], Iterable[Batch]] | None
                    = None) -> PublishSummary:
    """Read, validate, chunk and send one release of a dataset (docs/publishing.md).

    `progress` is called after each batch read (a false value: no reports). `read_batches(sources,
    resolved_mappings)` yields the batches to publish, `source_batches` unless given (a benchmark
    passes batches parsed ahead of its timer). `structure`: an SDMX DSD file (`--structure`) for the SDMX
    readers."""
    started = time.perf_counter()
    settings = settings or get_settings()
    read_batches = read_batches or source_batches
    names.check_org(org)
    names.check_id(dataset_id, "dataset id")
    if release_id is not None:
        names.check_id(release_id, "release id")
    if not files:
        raise PublishError("no input file given")
    paths = [Path(f) for f in files]
    column_mapping = _load_mapping(mapping, paths[0])
    fmt = fmt or column_mapping.format
    dsd = load_structure(structure) if structure is not None else None
    sources = [open_source(p, fmt, block_size=block_size, structure=dsd) for p in paths]
    resolved = [column_mapping.resolve(src.columns, src.name, src.dimensions, src.attributes, src.action_column)
                for src in sources]
    check_constants(resolved[0])
    topic = names.datasets_topic(org)
    summary = PublishSummary("dataset", org, topic, [str(p) for p in paths], dataset_id=dataset_id,
                             mapping=column_mapping.origin, strict=strict,
                             rejects_path=Path(rejects_path) if rejects_path else default_rejects_path(paths[0]))
    total_bytes = summary.bytes_read = sum(s.size for s in sources)
    trace = PublishTrace(summary, settings, [*column_mapping.fields, *(f"attributes.{a}" for a in column_mapping.attributes)],
                         [src.columns for src in sources])
    report = _reporter(progress, sources, total_bytes)
    # Overlap the slow starts: the Kafka connection (~0.2 s of round trips) and the first blocks of
    # parsing run in background threads while the files are hashed for the release id.
    background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ioxhub-publish")
    connecting = background.submit(Sender.connect, settings, topic, org)
    background.submit(warm_up, settings.schemas_dir)
    batches = None if strict else Prefetched(iter(read_batches(sources, resolved)), depth=2)
    sender: Sender | None = None
    keys = KeyTracker()
    try:
        release_id = release_id or compute_release_id(org, dataset_id, sources, column_mapping,
                                                      (max_chunk_bytes, max_chunk_observations),
                                                      dsd.path if dsd is not None else None)
        summary.release_id = release_id
        ledger = ReleaseLedger(settings, org, dataset_id, release_id)
        info = ReleaseInfo(org, dataset_id, release_id, ledger.produced_at(), licence=column_mapping.licence,
                           source_url=column_mapping.source_url, title=column_mapping.title,
                           unit_translations=tuple(sorted(column_mapping.units.items())),
                           commodity_classification=column_mapping.commodity_classification)
        with rejects_mod.RejectsWriter(summary.rejects_path) as rejected:
            if strict:
                _validate_only(Prefetched(iter(read_batches(sources, resolved)), depth=2), rejected, summary, report)
                if rejected.rows:
                    finish_rejects(summary, rejected)
                    summary.notes.append("strict: the release was refused, nothing was sent")
                    summary.seconds = time.perf_counter() - started
                    trace.complete(summary)
                    return summary
                summary.rows_read = 0
                batches = Prefetched(iter(read_batches(sources, resolved)), depth=2)
            builder = ChunkBuilder(info, max_bytes=max_chunk_bytes, max_observations=max_chunk_observations,
                                   registry=get_registry(settings.schemas_dir))
            sender = connecting.result()
            summary.signed_by = sender.key_id
            key = f"{org}/{dataset_id}".encode()
            def send(chunk: Chunk) -> None:
                sender.send(key, chunk.value, chunk.event_id, chunk.fingerprint, CHUNK, info.produced_at)
                summary.event_ids.append(chunk.event_id)

            try:
                for src, resolved_mapping, batch in batches:
                    checked = _check_batch(src, resolved_mapping, batch, rejected, summary, report)
                    keys.add(checked.observations)
                    for chunk in builder.add(checked.observations):
                        send(chunk)
            except SourceError as exc:      # a fault deep in a file, met after chunks went out
                if summary.event_ids:
                    raise PublishError(_cut_off(str(exc), len(summary.event_ids), release_id)) from None
                raise
            for chunk in builder.finish():
                send(chunk)
            repeats = background.submit(keys.repeated)      # counted while the broker acknowledges
            if builder.observation_count == 0:
                summary.notes.append("no valid observation: nothing was sent")
            else:
                sender.settle()            # every chunk acknowledged before the manifest goes out
                manifest = builder.manifest(rejected_at_source=rejected.rows)
                value = release_manifest.encode(manifest, builder.registry)
                fp = builder.registry.latest("release_manifest").fingerprint
                sender.send(key, value, manifest["event_id"], fp, release_manifest.NAME, info.produced_at)
                summary.event_ids.append(manifest["event_id"])
                sender.settle()
                summary.sent = True
                summary.bytes_sent = builder.bytes + len(value)
            summary.rows_sent = builder.observation_count
            summary.chunks = builder.chunk_count
            _warn_repeated_keys(summary, *repeats.result())
            finish_rejects(summary, rejected)
    except BaseException as exc:
        trace.fail("dataset", exc)
        raise
    finally:
        keys.close()
        if batches is not None:
            batches.close()
        if sender is None and connecting.done() and connecting.exception() is None:
            sender = connecting.result()
        elif sender is None:
            connecting.add_done_callback(lambda f: f.exception() is None and f.result().close())
        if sender is not None:
            sender.close()
        background.shutdown(wait=False)
    if summary.sent:
        previous = ledger.completed()
        if previous:
            summary.notes.append(f"release {release_id} was already published on {previous}: same ids, "
                                 "ingest drops the copies")
        ledger.complete()
    summary.seconds = time.perf_counter() - started
    log.info("publish: release %s of %s/%s: %s rows sent in %s chunks, %s rejected", release_id, org, dataset_id,
             summary.rows_sent, summary.chunks, summary.rows_rejected,
             extra={"org": org, "dataset": dataset_id, "release_id": release_id, "topic": summary.topic})
    trace.complete(summary)
    return summary


def _cut_off(problem: str, chunks: int, release_id: str) -> str:
    return (f"{problem}; {chunks} chunk(s) of release {release_id} had been sent, but not the manifest "
            "that completes a release: ingest never applies it (it waits in staging/, `ioxhub status` "
            "lists it), nothing of it becomes visible")


def warm_up(schemas_dir: Path | None = None) -> None:
    """Load the code lists validation needs (HS 2022 nomenclature, ISO 3166 tables) and the schema
    registry (of `schemas_dir`, default: the global settings') ahead of use."""
    hs._nomenclature()
    countries._tables(), countries._other_areas()
    get_registry(schemas_dir)


def source_batches(sources: Sequence[SourceFile], resolved: Sequence[ColumnMapping]) -> Iterator[Batch]:
    """Every batch of every file, in order, with the file and its resolved mapping (whose commodity
    column the file's first batch settles: `dimensions.decide_commodity`)."""
    for src, m in zip(sources, resolved):
        for batch in src.batches(m.source_columns(), value_column(m)):
            if not m.commodity_decided:
                m, note = decide_commodity(m, batch.table)
                if note:
                    log.info("publish: %s: %s", src.path.name, note)
                    m = m.noted(f"{src.path.name}: {note}")
            yield src, m, batch


def _warn_repeated_keys(summary: PublishSummary, repeated: int, example: str | None) -> None:
    summary.repeated_keys = repeated
    if repeated:
        summary.warnings.append(
            f"{repeated:,} row(s) share their observation key with an earlier row (e.g. {example}): ingest keeps "
            "the last of each; if a column that tells them apart is not mapped, keep it with `dimensions:` or --dim")


def value_column(m: ColumnMapping) -> str | None:
    """The value's source column, read as numbers, unless another field reads the same column as text."""
    source = m.fields["value"]
    if source.column is None:
        return None
    others = [s.column for k, s in m.fields.items() if k != "value"] + [s.column for s in m.attributes.values()]
    return None if source.column in others else source.column


def _load_mapping(mapping: ColumnMapping | str | Path | dict | None, first_file: Path) -> ColumnMapping:
    if isinstance(mapping, ColumnMapping):
        return mapping
    if isinstance(mapping, dict):
        return ColumnMapping.from_dict(mapping)
    if mapping is not None:
        return ColumnMapping.from_file(mapping)
    beside = first_file.with_name(first_file.name + ".mapping.yaml")
    return ColumnMapping.from_file(beside) if beside.is_file() else ColumnMapping(origin="no mapping (SDMX concept names)")


def _reporter(progress: Callable[[PublishProgress], None] | None, sources: Sequence[SourceFile],
              total: int) -> Callable[[SourceFile, int], None] | None:
    """`report(src, bytes_read_of_src)` calling `progress` with the bytes read over all files."""
    if not progress:
        return None
    before = dict(zip(map(id, sources), itertools.accumulate((s.size for s in sources), initial=0)))
    return lambda src, bytes_read: progress(PublishProgress(src.path.name, before[id(src)] + bytes_read, total))


def _check_batch(src: SourceFile, m: ColumnMapping, batch: SourceBatch, rejected: rejects_mod.RejectsWriter,
                 summary: PublishSummary, report):
    """Validate one batch: count its rows, write its rejects, report progress; the checked batch."""
    checked = validate_batch(batch, m, src.path.name, nan_is_missing=src.nan_is_missing)
    if m.note and m.note not in summary.notes:
        summary.notes.append(m.note)
    summary.rows_read += len(batch.lines) + (batch.rejects.num_rows if batch.rejects is not None else 0)
    if checked.rejects is not None:
        rejected.write(checked.rejects, checked.rejected_rows)
    if report is not None:
        report(src, batch.bytes_read)
    return checked


def _validate_only(batches: Prefetched, rejected, summary: PublishSummary, report) -> None:
    try:
        for src, m, batch in batches:
            _check_batch(src, m, batch, rejected, summary, report)
    finally:
        batches.close()


# ================================================================================================ policies
def publish_policy(org: str, file: str | Path, *, strict: bool = False, rejects_path: str | Path | None = None,
                   settings: Settings | None = None) -> PublishSummary:
    """Check the policy updates of one YAML or JSON file and send the good ones (once each); with
    `strict`, nothing when any entry has a problem."""
    started = time.perf_counter()
    settings = settings or get_settings()
    names.check_org(org)
    path = Path(file)
    topic = names.policies_topic(org)
    registry = get_registry(settings.schemas_dir)
    schema = registry.latest("policy_update")
    enums = {f["name"]: f["type"]["symbols"] for f in schema.schema["fields"]
             if isinstance(f["type"], dict) and f["type"].get("type") == "enum"}
    checked = check_policy_file(org, path, enums, int(time.time() * 1000))
    summary = PublishSummary("policy", org, topic, [str(path)], rows_read=checked.entries, strict=strict,
                             rejects_path=Path(rejects_path) if rejects_path else default_rejects_path(path))
    summary.bytes_read = path.stat().st_size
    trace = PublishTrace(summary, settings, [f["name"] for f in schema.schema["fields"]])
    with rejects_mod.RejectsWriter(summary.rejects_path) as rejected:
        if checked.problems:
            table = pa.concat_tables([rejects_mod.make(path.name, [ln], fld, [val], reason)
                                      for ln, fld, val, reason in checked.problems])
            rejected.write(table, checked.bad_entries)
        finish_rejects(summary, rejected)
    if strict and checked.problems:
        summary.notes.append("strict: the file was refused, nothing was sent")
        summary.seconds = time.perf_counter() - started
        trace.complete(summary)
        return summary
    records = checked.records
    unique = list({r["event_id"]: r for r in records}.values())
    if len(unique) < len(records):
        summary.notes.append(f"{len(records) - len(unique)} repeated update(s) in the file sent once")
    try:
        if unique:
            with Sender.connect(settings, topic, org) as sender:
                summary.signed_by = sender.key_id
                for record in unique:
                    value = policy_update.encode(record, registry)
                    sender.send(record["instrument_id"].encode(), value, record["event_id"], schema.fingerprint,
                                    policy_update.NAME, record["produced_at"])
                    summary.event_ids.append(record["event_id"])
                    summary.bytes_sent += len(value)
                sender.settle()
            summary.sent = True
    except BaseException as exc:
        trace.fail("policy", exc)
        raise
    summary.rows_sent = len(unique)
    summary.seconds = time.perf_counter() - started
    trace.complete(summary)
    return summary
