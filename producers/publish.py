"""Publish datasets and policy updates to the org's Kafka topics (the SDK behind `ioxhub publish`).

`publish_dataset(org, dataset_id, files, mapping)`:
  read (bounded batches) -> validate (vectorized) -> chunk (columnar, dictionary-encoded Avro) -> sign
  and send, then the manifest once every chunk is acknowledged. Reading and parsing run up to two
  blocks ahead in a background thread (pyarrow releases the GIL), so parsing overlaps validation and
  encoding; kafka-python's own I/O thread overlaps the sending.

Release id (unless `release_id` is given): the first 32 hex digits of sha256 over the layout version,
org, dataset, mapping, release metadata, chunk bounds, and each file's name, format and BLAKE3 digest of
its bytes (BLAKE3: ~7 GB/s here against ~1.2 GB/s for sha256, and as collision-resistant). It is known
before the first chunk is sent (the files are hashed first: one fast pass that also warms the page
cache), deterministic, and changes whenever anything that is sent would change.
`produced_at` is taken on the first attempt at a release and kept in
`<data_dir>/producer/releases/<ORG>/<DATASET>/<RELEASE>.json`, so a retry after a failure sends
byte-identical chunks: ingest keeps the first copy of each event id and checks the manifest's checksum
over them, which only works if every attempt sends the same bytes.

Kafka: topic `datasets_topic(org)`, key "<org>/<dataset>" for every chunk and the manifest (one
partition per dataset keeps chunks before their manifest); headers from the codec (org, schema
fingerprint, event id, content type) and, when the org has a key under `<data_dir>/keys/<ORG>/`, an
Ed25519 signature (`ioxhub.signing`). The producer is `ioxhub.kafka.make_producer` (acks=all,
idempotent); every send is checked after a flush: a failure is an error, never silent. A release that
fails half-way has no manifest, so ingest never shows it; publishing again completes it. A file fault met
only deep in a file (a line too long, broken CSV quoting) after chunks went out is raised as a
`PublishError` saying so; a byte that is not UTF-8 is found before anything is sent (the hashing pass
checks it, `filecheck.Utf8Scan`).

Rejected rows: `strict=True` refuses the release when any row is rejected (nothing is sent); otherwise
good rows are sent and the rejects go to a CSV (`<first file>.rejects.csv` or `rejects_path`). Either way
`PublishSummary.exit_code` is 1 when anything was rejected.

`publish_policy(org, file)`: a YAML or JSON file holding one update or a list; each entry is checked
(required fields, enums, ISO 3166 members normalized to alpha-3 as the schema requires, dates, URL);
event_id = sha256 of org, instrument, action, version, effective date and sorted members; key =
instrument_id; topic `policies_topic(org)`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import pyarrow as pa
import yaml
from blake3 import blake3
from kafka.errors import KafkaError

from ioxhub import names, signing
from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.errors import IoxhubError, read_user_text
from ioxhub.harmonize import countries, hs
from ioxhub.kafka import make_producer
from ioxhub.producers import rejects as rejects_mod
from ioxhub.producers.chunks import DEFAULT_MAX_BYTES, DEFAULT_MAX_OBSERVATIONS, Chunk, ChunkBuilder, ReleaseInfo
from ioxhub.producers.filecheck import SourceError, Utf8Scan, check_file
from ioxhub.producers.mapping import ColumnMapping
from ioxhub.producers.readers import DEFAULT_BLOCK_SIZE, SourceBatch, SourceFile, open_source
from ioxhub.producers.validate import check_constants, validate_batch
from ioxhub.settings import Settings, get_settings

LAYOUT_VERSION = 1
SEND_TIMEOUT_S = 120.0
MAX_UNACKNOWLEDGED = 8       # chunks (~1 MB each) handed to Kafka before the oldest must be acknowledged
MAX_BLOCK_MS = 20_000


class PublishError(IoxhubError):
    """Publishing could not complete (broker unreachable, topic missing, a send failed)."""


@dataclass
class PublishSummary:
    """What a publish did; `exit_code` is 1 when anything was rejected, else 0."""

    kind: str                           # "dataset" or "policy"
    org: str
    topic: str
    files: list[str]
    dataset_id: str | None = None
    release_id: str | None = None
    mapping: str | None = None
    rows_read: int = 0
    rows_sent: int = 0
    rows_rejected: int = 0
    chunks: int = 0
    bytes_read: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    sent: bool = False
    strict: bool = False
    rejects_path: Path | None = None
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    reject_examples: list[dict] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    signed_by: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.rows_rejected else 0


# ================================================================================================ datasets
def publish_dataset(org: str, dataset_id: str, files: Sequence[str | Path],
                    mapping: ColumnMapping | str | Path | dict | None = None, *, fmt: str | None = None,
                    strict: bool = False, rejects_path: str | Path | None = None, release_id: str | None = None,
                    settings: Settings | None = None, progress: bool = True,
                    max_chunk_bytes: int = DEFAULT_MAX_BYTES, max_chunk_observations: int = DEFAULT_MAX_OBSERVATIONS,
                    block_size: int = DEFAULT_BLOCK_SIZE) -> PublishSummary:
    """Read, validate, chunk and send one release of a dataset; see the module docstring."""
    started = time.perf_counter()
    settings = settings or get_settings()
    names.check_org(org)
    names.check_id(dataset_id, "dataset id")
    if release_id is not None:
        names.check_id(release_id, "release id")
    if not files:
        raise PublishError("no input file given")
    paths = [Path(f) for f in files]
    column_mapping = _load_mapping(mapping, paths[0])
    fmt = fmt or column_mapping.format
    sources = [open_source(p, fmt, block_size=block_size) for p in paths]
    resolved = [column_mapping.resolve(src.columns, src.name) for src in sources]
    check_constants(resolved[0])
    topic = names.datasets_topic(org)
    summary = PublishSummary("dataset", org, topic, [str(p) for p in paths], dataset_id=dataset_id,
                             mapping=column_mapping.origin, strict=strict,
                             rejects_path=Path(rejects_path) if rejects_path else _default_rejects_path(paths[0]))
    total_bytes = summary.bytes_read = sum(s.size for s in sources)
    # Overlap the slow starts: the Kafka connection (~0.2 s of round trips) and the first blocks of
    # parsing run in background threads while the files are hashed for the release id.
    background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ioxhub-publish")
    connecting = background.submit(_Sender, settings, topic, org)
    background.submit(warm_up, settings.schemas_dir)
    batches = None if strict else _Prefetched(_batches(sources, resolved), depth=2)
    sender: _Sender | None = None
    try:
        release_id = release_id or compute_release_id(org, dataset_id, sources, column_mapping,
                                                      (max_chunk_bytes, max_chunk_observations))
        summary.release_id = release_id
        ledger = _Ledger(settings, org, dataset_id, release_id)
        info = ReleaseInfo(org, dataset_id, release_id, ledger.produced_at(), licence=column_mapping.licence,
                           source_url=column_mapping.source_url, title=column_mapping.title)
        with rejects_mod.RejectsWriter(summary.rejects_path) as rejected, _progress(progress, total_bytes) as bar:
            if strict:
                _validate_only(_Prefetched(_batches(sources, resolved), depth=2), rejected, summary, bar)
                if rejected.rows:
                    _finish_rejects(summary, rejected)
                    summary.notes.append("strict: the release was refused, nothing was sent")
                    summary.seconds = time.perf_counter() - started
                    return summary
                summary.rows_read = 0
                bar.reset()
                batches = _Prefetched(_batches(sources, resolved), depth=2)
            builder = ChunkBuilder(info, max_bytes=max_chunk_bytes, max_observations=max_chunk_observations,
                                   registry=get_registry(settings.schemas_dir))
            sender = connecting.result()
            summary.signed_by = sender.key_id
            key = f"{org}/{dataset_id}".encode()
            chunk_fp = builder.frame[2:]

            def send(chunk: Chunk) -> None:
                sender.send(key, chunk.value, chunk.event_id, chunk_fp)
                summary.event_ids.append(chunk.event_id)

            try:
                for src, resolved_mapping, batch in batches:
                    checked = validate_batch(batch, resolved_mapping, src.path.name, nan_is_missing=src.nan_is_missing)
                    summary.rows_read += len(batch.lines) + (batch.rejects.num_rows if batch.rejects is not None else 0)
                    if checked.rejects is not None:
                        rejected.write(checked.rejects, checked.rejected_rows)
                    for chunk in builder.add(checked.observations):
                        send(chunk)
                    bar.update(src, batch.bytes_read)
            except SourceError as exc:      # a fault deep in a file, met after chunks went out
                if summary.event_ids:
                    raise PublishError(_cut_off(str(exc), len(summary.event_ids), release_id)) from None
                raise
            for chunk in builder.finish():
                send(chunk)
            if builder.observation_count == 0:
                summary.notes.append("no valid observation: nothing was sent")
            else:
                sender.settle()            # every chunk acknowledged before the manifest goes out
                manifest = builder.manifest(rejected_at_source=rejected.rows)
                value = codec.encode("release_manifest", manifest, registry=builder.registry)
                fp = builder.registry.latest("release_manifest").fingerprint
                sender.send(key, value, manifest["event_id"], fp)
                summary.event_ids.append(manifest["event_id"])
                sender.settle()
                summary.sent = True
                summary.bytes_sent = builder.bytes + len(value)
            summary.rows_sent = builder.observation_count
            summary.chunks = builder.chunk_count
            _finish_rejects(summary, rejected)
    finally:
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
    return summary


def _cut_off(problem: str, chunks: int, release_id: str) -> str:
    return (f"{problem}; {chunks} chunk(s) of release {release_id} had been sent, but not the manifest "
            "that completes a release: ingest never applies it (it waits in staging/, `ioxhub status` "
            "lists it), nothing of it becomes visible")


def warm_up(schemas_dir: Path | None = None) -> None:
    """Load the code lists validation needs (HS 2022 nomenclature, ISO 3166 tables) and the schema
    registry (of `schemas_dir`, default: the global settings') ahead of use."""
    hs._nomenclature()
    countries._tables()
    get_registry(schemas_dir)


def compute_release_id(org: str, dataset_id: str, sources: Sequence[SourceFile], mapping: ColumnMapping,
                       bounds: tuple[int, int]) -> str:
    """sha256 over everything that decides what is sent (see the module docstring), 32 hex digits."""
    digest = hashlib.sha256()
    head = {"layout": LAYOUT_VERSION, "org": org, "dataset": dataset_id, "mapping": mapping.canonical(),
            "meta": [mapping.title, mapping.licence, mapping.source_url], "bounds": list(bounds),
            "files": [[s.path.name, s.format] for s in sources]}
    digest.update(json.dumps(head, sort_keys=True).encode())
    for src in sources:
        digest.update(_file_blake3(src.path, Utf8Scan(src.path) if src.format != "sdmx-ml" else None))
    return digest.hexdigest()[:32]


def _file_blake3(path: Path, scan: Utf8Scan | None = None) -> bytes:
    """BLAKE3 of a file read in 1 MB pieces into one buffer (not `update_mmap`: mapped pages of a large
    file would count in the process's resident memory); `scan` checks the same pieces are UTF-8 text, so a
    bad byte anywhere in a text file stops the publish before anything is sent."""
    hasher = blake3(max_threads=1)
    buffer = bytearray(1 << 20)
    with open(path, "rb") as fh, memoryview(buffer) as view:
        while n := fh.readinto(buffer):
            hasher.update(view[:n])
            if scan is not None:
                scan.feed(buffer if n == len(buffer) else buffer[:n])
    if scan is not None:
        scan.finish()
    return hasher.digest()


def _load_mapping(mapping: ColumnMapping | str | Path | dict | None, first_file: Path) -> ColumnMapping:
    if isinstance(mapping, ColumnMapping):
        return mapping
    if isinstance(mapping, dict):
        return ColumnMapping.from_dict(mapping)
    if mapping is not None:
        return ColumnMapping.from_file(mapping)
    beside = first_file.with_name(first_file.name + ".mapping.yaml")
    return ColumnMapping.from_file(beside) if beside.is_file() else ColumnMapping(origin="no mapping (SDMX concept names)")


def _default_rejects_path(first_file: Path) -> Path:
    return first_file.with_name(first_file.name + ".rejects.csv")


def _batches(sources: Sequence[SourceFile], resolved: Sequence[ColumnMapping]
             ) -> Iterator[tuple[SourceFile, ColumnMapping, SourceBatch]]:
    """Every batch of every file, in order."""
    for src, m in zip(sources, resolved):
        for batch in src.batches(m.source_columns(), _value_column(m)):
            yield src, m, batch


def _value_column(m: ColumnMapping) -> str | None:
    """The value's source column, read as numbers, unless another field reads the same column as text."""
    source = m.fields["value"]
    if source.column is None:
        return None
    others = [s.column for k, s in m.fields.items() if k != "value"] + [s.column for s in m.attributes.values()]
    return None if source.column in others else source.column


_DONE = object()


class _Prefetched:
    """Iterate `items` in a daemon thread started at once, `depth` items ahead (pyarrow parses without
    the GIL, so reading overlaps the consumer's work); errors are re-raised in the consumer."""

    def __init__(self, items: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="ioxhub-reader", daemon=True)
        self._thread.start()

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "_Prefetched":
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _validate_only(batches: "_Prefetched", rejected, summary, bar) -> None:
    try:
        _validate_all(batches, rejected, summary, bar)
    finally:
        batches.close()


def _validate_all(batches, rejected, summary, bar) -> None:
    for src, m, batch in batches:
        checked = validate_batch(batch, m, src.path.name, nan_is_missing=src.nan_is_missing)
        summary.rows_read += len(batch.lines) + (batch.rejects.num_rows if batch.rejects is not None else 0)
        if checked.rejects is not None:
            rejected.write(checked.rejects, checked.rejected_rows)
        bar.update(src, batch.bytes_read)


def _finish_rejects(summary: PublishSummary, rejected: rejects_mod.RejectsWriter) -> None:
    summary.rows_rejected = rejected.rows
    summary.rejected_by_reason = dict(rejected.by_reason.most_common())
    summary.reject_examples = rejected.examples
    if not rejected.rows:
        summary.rejects_path = None


# ================================================================================================ policies
_POLICY_REQUIRED = ("instrument_id", "issuing_org", "title", "instrument_type", "binding", "action", "version",
                    "effective_date")
_POLICY_LISTS = ("partner_orgs", "member_countries", "themes", "related_indicators")
_POLICY_FIELDS = _POLICY_REQUIRED + _POLICY_LISTS + ("url",)
_EPOCH = dt.date(1970, 1, 1)


def publish_policy(org: str, file: str | Path, *, strict: bool = False, rejects_path: str | Path | None = None,
                   settings: Settings | None = None) -> PublishSummary:
    """Validate and send the policy updates of one YAML or JSON file; see the module docstring."""
    started = time.perf_counter()
    settings = settings or get_settings()
    names.check_org(org)
    path = Path(file)
    topic = names.policies_topic(org)
    entries = _policy_entries(path)
    summary = PublishSummary("policy", org, topic, [str(path)], rows_read=len(entries), strict=strict,
                             rejects_path=Path(rejects_path) if rejects_path else _default_rejects_path(path))
    registry = get_registry(settings.schemas_dir)
    schema = registry.latest("policy_update")
    enums = {f["name"]: f["type"]["symbols"] for f in schema.schema["fields"]
             if isinstance(f["type"], dict) and f["type"].get("type") == "enum"}
    produced_at = int(time.time() * 1000)
    records, problems, bad_entries = [], [], 0
    for line, entry, lines in entries:
        record, why = _policy_record(org, entry, lines, line, enums, produced_at)
        if why:
            problems.extend(why)
            bad_entries += 1
        else:
            records.append(record)
    with rejects_mod.RejectsWriter(summary.rejects_path) as rejected:
        if problems:
            table = pa.concat_tables([rejects_mod.make(path.name, [ln], fld, [val], reason) for ln, fld, val, reason in problems])
            rejected.write(table, bad_entries)
        _finish_rejects(summary, rejected)
    if strict and problems:
        summary.notes.append("strict: the file was refused, nothing was sent")
        summary.seconds = time.perf_counter() - started
        return summary
    unique = list({r["event_id"]: r for r in records}.values())
    if len(unique) < len(records):
        summary.notes.append(f"{len(records) - len(unique)} repeated update(s) in the file sent once")
    if unique:
        fp = schema.fingerprint
        with _Sender(settings, topic, org) as sender:
            summary.signed_by = sender.key_id
            for record in unique:
                value = codec.encode("policy_update", record, registry=registry)
                sender.send(record["instrument_id"].encode(), value, record["event_id"], fp)
                summary.event_ids.append(record["event_id"])
                summary.bytes_sent += len(value)
            sender.settle()
        summary.sent = True
    summary.rows_sent = len(unique)
    summary.seconds = time.perf_counter() - started
    return summary


def policy_event_id(org: str, instrument_id: str, action: str, version: str, effective_date: dt.date,
                    members: Iterable[str]) -> str:
    parts = [org, instrument_id, action, version, effective_date.isoformat(), ",".join(sorted(members))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _policy_entries(path: Path) -> list[tuple[int, Any, dict[str, int]]]:
    """(line, entry, {field: line}) for each update in the file; one clear error if it is not YAML/JSON."""
    check_file(path, None, PublishError)      # a directory, empty, UTF-16, binary: one line, as for data files
    text = read_user_text(path, PublishError, "policy file")
    text = text.removeprefix("\ufeff")        # a UTF-8 byte order mark
    try:
        node = yaml.compose(text, Loader=_PolicyLoader)
        data = yaml.load(text, Loader=_PolicyLoader)
    except yaml.YAMLError as exc:
        try:   # JSON that YAML cannot take (e.g. tab indentation)
            data, node = json.loads(text), None
        except json.JSONDecodeError:
            raise PublishError(f"{path}: not a YAML or JSON policy file ({str(exc).splitlines()[0]})") from None
    if isinstance(data, dict) and set(data) == {"updates"}:
        data = data["updates"]
        node = _mapping_value(node, "updates")
    if isinstance(data, dict):
        items, nodes = [data], [node]
    elif isinstance(data, list) and data:
        items, nodes = data, (node.value if isinstance(node, yaml.SequenceNode) else [None] * len(data))
    else:
        raise PublishError(f"{path}: expected one policy update (a mapping) or a list of them, found "
                           f"{'an empty list' if data == [] else type(data).__name__}")
    out = []
    for i, (item, n) in enumerate(zip(items, nodes), start=1):
        line = n.start_mark.line + 1 if n is not None else i
        fields = {}
        if isinstance(n, yaml.MappingNode):
            fields = {k.value: v.start_mark.line + 1 for k, v in n.value if isinstance(k, yaml.ScalarNode)}
        out.append((line, item, fields))
    return out


class _PolicyLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text and are checked here (PyYAML's own
    conversion raises a bare ValueError on a date such as 2019-13-01)."""


_PolicyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _mapping_value(node, key: str):
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key:
                return v
    return None


def _policy_record(org: str, entry: Any, lines: dict[str, int], line: int, enums: dict[str, list[str]],
                   produced_at: int) -> tuple[dict | None, list[tuple[int, str, str, str]]]:
    """A policy_update record, or the problems (line, field, value, reason) of the entry."""
    if not isinstance(entry, dict):
        return None, [(line, "", str(entry)[:200], "not a mapping of fields")]
    problems: list[tuple[int, str, str, str]] = []

    def bad(name: str, value: Any, reason: str) -> None:
        problems.append((lines.get(name, line), name, "" if value is None else str(value), reason))

    for name in sorted(set(entry) - set(_POLICY_FIELDS) - {"org", "event_id", "produced_at"}):
        bad(name, entry[name], "unknown field")
    if entry.get("org") not in (None, org):
        bad("org", entry["org"], f"names another org than the publisher {org}")
    for name in _POLICY_REQUIRED:
        if entry.get(name) is None or entry.get(name) == "":
            bad(name, None, "missing")
    record: dict[str, Any] = {"org": org, "produced_at": produced_at}
    for name in ("instrument_id", "title", "version"):
        value = entry.get(name)
        if value is not None and value != "":
            if isinstance(value, (dict, list, bool)):
                bad(name, value, "expected text")
            record[name] = str(value).strip()
    if "instrument_id" in record:
        try:
            names.check_id(record["instrument_id"], "instrument id")
        except names.InvalidName as exc:
            bad("instrument_id", record["instrument_id"], str(exc))
    issuing = entry.get("issuing_org")
    if issuing is not None:
        try:
            record["issuing_org"] = names.check_org(str(issuing), "issuing org")
        except names.InvalidName as exc:
            bad("issuing_org", issuing, str(exc))
    for name in ("instrument_type", "action"):
        value = entry.get(name)
        if value is None or value == "":
            continue
        symbol = str(value).strip().upper().replace(" ", "_").replace("-", "_")
        if symbol not in enums[name]:
            bad(name, value, f"not one of {', '.join(enums[name])}")
        record[name] = symbol
    binding = entry.get("binding")
    if binding is not None:
        parsed = {"true": True, "yes": True, "binding": True, "false": False, "no": False, "soft": False}.get(
            str(binding).strip().lower()) if not isinstance(binding, bool) else binding
        if parsed is None:
            bad("binding", binding, "expected true (binding) or false (soft law)")
        record["binding"] = parsed
    effective = entry.get("effective_date")
    if effective is not None and effective != "":
        day = effective if isinstance(effective, dt.date) and not isinstance(effective, dt.datetime) else None
        if day is None:
            try:
                day = dt.date.fromisoformat(str(effective).strip())
            except ValueError:
                bad("effective_date", effective, "not a date (YYYY-MM-DD)")
        record["effective_date"] = day
    for name in _POLICY_LISTS:
        value = entry.get(name, [])
        if value is None:
            value = []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(isinstance(v, (dict, list)) or v is None for v in value):
            bad(name, value, "expected a list of text values")
            continue
        record[name] = [str(v).strip() for v in value]
    members = []
    for value in record.get("member_countries", []):
        iso3, reason = countries.harmonize_country(value)
        if reason or iso3 is None:
            bad("member_countries", value, reason or "missing")
        else:
            members.append(iso3)
    record["member_countries"] = sorted(set(members))
    for value in record.get("partner_orgs", []):
        try:
            names.check_org(value, "partner org")
        except names.InvalidName:
            bad("partner_orgs", value, "not an org id (2-16 upper-case letters or digits)")
    url = entry.get("url")
    if url is not None and url != "":
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            bad("url", url, "not an http(s) URL")
        record["url"] = str(url)
    else:
        record["url"] = None
    if problems:
        return None, problems
    record["event_id"] = policy_event_id(org, record["instrument_id"], record["action"], record["version"],
                                         record["effective_date"], record["member_countries"])
    return record, []


# ================================================================================================ sending
class _Sender:
    """One Kafka producer for a publish: sends with headers (+ signature), then checks every future."""

    def __init__(self, settings: Settings, topic: str, org: str):
        self.topic, self.org, self.settings = topic, org, settings
        self.signer = _signer(org, settings)
        self.key_id = self.signer.key_id if self.signer else None
        self._pending: deque[tuple[str, Any]] = deque()
        try:
            self.producer = make_producer(settings, max_block_ms=MAX_BLOCK_MS)
        except KafkaError as exc:
            raise PublishError(f"cannot connect to Kafka at {settings.kafka_bootstrap} "
                               f"(is the stack up? `ioxhub stack up`): {exc}") from None
        try:
            if not self.producer.partitions_for(topic):
                raise PublishError(f"topic {topic} has no partitions on {settings.kafka_bootstrap}")
        except KafkaError as exc:
            self.producer.close(timeout=2)
            raise PublishError(f"topic {topic} is not available on {settings.kafka_bootstrap} "
                               f"(provisioned? `ioxhub provision`): {type(exc).__name__}") from None

    def send(self, key: bytes, value: bytes, event_id: str, fingerprint: bytes) -> None:
        headers = codec.record_headers(self.org, fingerprint, event_id)
        if self.signer is not None:
            headers = self.signer.sign(value, headers, self.topic)
        try:
            future = self.producer.send(self.topic, key=key, value=value, headers=headers)
        except KafkaError as exc:
            raise PublishError(f"sending event {event_id[:12]} to {self.topic} failed: {exc}") from None
        self._pending.append((event_id, future))
        while len(self._pending) > MAX_UNACKNOWLEDGED:     # back-pressure: bounded memory
            self._check(*self._pending.popleft())

    def settle(self) -> None:
        """Wait until every event sent so far is acknowledged; raise on the first failure."""
        try:
            self.producer.flush(timeout=SEND_TIMEOUT_S)
        except KafkaError as exc:
            raise PublishError(f"Kafka did not acknowledge the events within {SEND_TIMEOUT_S:.0f} s: {exc}") from None
        while self._pending:
            self._check(*self._pending.popleft())

    def _check(self, event_id: str, future) -> None:
        try:
            future.get(timeout=SEND_TIMEOUT_S)
        except KafkaError as exc:
            raise PublishError(f"event {event_id[:12]} was not stored by Kafka ({self.topic}): {exc!r}; "
                               "nothing is visible downstream until the release is published again") from None

    def close(self) -> None:
        self.producer.close(timeout=10)

    def __enter__(self) -> "_Sender":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _signer(org: str, settings: Settings):
    """The org's newest signing key under <data_dir>/keys/<ORG>/, or None when it has none."""
    org_dir = signing.keys_dir(settings.data_dir) / org
    if not org_dir.is_dir() or not any(org_dir.glob("*.key")):
        return None
    return signing.load_signer(org, settings=settings)


# ================================================================================================ state
class _Ledger:
    """The first-attempt time of each release, so retries send byte-identical chunks."""

    def __init__(self, settings: Settings, org: str, dataset_id: str, release_id: str):
        self.path = Path(settings.data_dir) / "producer" / "releases" / org / dataset_id / f"{release_id}.json"
        self.state: dict[str, Any] = {}
        try:
            self.state = json.loads(self.path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.state = {}

    def produced_at(self) -> int:
        if not isinstance(self.state.get("produced_at"), int):
            self.state = {"produced_at": int(time.time() * 1000)}
            self._save()
        return self.state["produced_at"]

    def completed(self) -> str | None:
        return self.state.get("completed_at")

    def complete(self) -> None:
        self.state["completed_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        self._save()

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            tmp.replace(self.path)
        except OSError as exc:
            raise PublishError(f"cannot record the release state in {self.path}: {exc}") from None


# ================================================================================================ progress
class _NoBar:
    def update(self, src: SourceFile, bytes_read: int) -> None:
        pass

    def reset(self) -> None:
        pass


class _Bar:
    """A rich progress bar over the bytes of all input files."""

    def __init__(self, progress, total: int):
        self.progress = progress
        self.task = progress.add_task("publishing", total=total)
        self.done_files: dict[str, int] = {}
        self.offset = 0
        self.current: str | None = None

    def update(self, src: SourceFile, bytes_read: int) -> None:
        if src.name != self.current:
            if self.current is not None:
                self.offset += self.done_files[self.current]
            self.current = src.name
            self.progress.update(self.task, description=src.path.name)
        self.done_files[src.name] = bytes_read
        self.progress.update(self.task, completed=self.offset + bytes_read)

    def reset(self) -> None:
        self.done_files.clear()
        self.offset = 0
        self.current = None
        self.progress.update(self.task, completed=0)


class _progress:
    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total, self._progress = enabled, total, None

    def __enter__(self):
        if not self.enabled:
            return _NoBar()
        from rich.console import Console
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                                   TransferSpeedColumn)
        console = Console(stderr=True)
        if not console.is_terminal:
            return _NoBar()
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                  TransferSpeedColumn(), TimeRemainingColumn(), console=console, transient=True)
        self._progress.start()
        return _Bar(self._progress, self.total)

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
