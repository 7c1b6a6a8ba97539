"""One ingest run: consume a bounded batch -> raw -> verify, decode -> harmonize -> write -> commit.

`ingest(kind)` is what the ingest DAGs call (one batch); `follow(kind, stop=...)` keeps one consumer
running, batch after batch, through the same `Ingestor.batch` (`ioxhub ingest --follow`); both hold the
kind's lease (ioxhub.ingest.lease) so only one run reads at a time; `handle` takes one record (an unexpected exception refuses
that record as `internal-error`, never the run); `accept` verifies, decodes and checks a record's org
claims; `reconcile` checks that every consumed event is in exactly one count before anything is
committed. The order of writes and commits is the exactly-once argument: docs/architecture.md.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import threading
import time
from pathlib import Path
from collections import Counter
from typing import Callable, Literal

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec, dataset_chunk
from ioxhub.contracts.registry import Registry, get_registry
from ioxhub.errors import IoxhubError
from ioxhub.ingest.consume import BatchConsumer
from ioxhub.ingest.datasets import DatasetIngest
from ioxhub.ingest.lease import Lease, describe
from ioxhub.ingest.observe import IngestTrace
from ioxhub.ingest.policies import PolicyIngest
from ioxhub.ingest.quarantine import OUTAGES, DeadLetters
from ioxhub.ingest.raw import RawZone
from ioxhub.ingest.staging import expire_staged
from ioxhub.names import InvalidName, check_org, org_of_topic
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.keys import load_trust_store
from ioxhub.logs import with_context
from ioxhub.signing import SignatureError, TrustStore, verification_time, verify
from ioxhub.storage import ObjectStore

log = logging.getLogger("ioxhub.ingest")

Kind = Literal["datasets", "policies"]
FOLLOW_RETRY_FIRST, FOLLOW_RETRY_MAX = 1.0, 30.0   # seconds a follow process waits before retrying a failed batch
FOLLOW_FULL_EVERY = 300.0    # seconds: a follow process runs an empty batch whole this often (staging expiry)


class InjectedFault(IoxhubError):
    """Raised on purpose between the object writes and the offset commit (exactly-once tests)."""


class CountsDoNotReconcile(RuntimeError):
    """A bug: some consumed event is in no count (or in two). Nothing is committed."""


def dag_id(kind: Kind) -> str:
    return f"ingest_{kind}"


def ingest(kind: Kind, settings: Settings | None = None, *, max_records: int | None = None,
           idle_ms: int | None = None, fail_before_commit: bool = False, run_id: str = "manual") -> dict:
    """Run one ingest of all org topics of `kind`; returns (and logs, and records) the run's counts. While
    another run of `kind` holds the lease (a follow process, a run started elsewhere) it reads nothing and
    returns zero counts with `busy` naming the holder."""
    with Ingestor(kind, settings, f"{dag_id(kind)} {run_id}") as run:
        if not run.start():
            log.info("ingest %s: busy, %s holds the lease", kind, describe(run.lease.held_by or {}))
            return busy_summary(kind, describe(run.lease.held_by or {}))
        summary = run.batch(run_id, max_records=max_records or run.settings.ingest_max_records,
                            idle_ms=idle_ms or run.settings.ingest_idle_ms, fail_before_commit=fail_before_commit)
    return summary


def follow(kind: Kind, settings: Settings | None = None, *, stop: threading.Event,
           on_batch: Callable[[dict], None] | None = None, on_caught_up: Callable[[], None] | None = None,
           on_wait: Callable[[str], None] | None = None,
           on_retry: Callable[[str, float], None] | None = None) -> dict:
    """Keep one consumer of `kind` running until `stop` is set: each batch (ended by IOXHUB_FOLLOW_IDLE_MS of
    silence or IOXHUB_FOLLOW_BATCH_SECONDS of polling) is a run like `ingest()`'s, applied, recorded and
    committed; `on_batch(summary)` after each; `on_caught_up()` once nothing waits after a batch that applied
        something. Waits (calling `on_wait` once) while another run holds the lease. An outage (storage, broker,
    disk) fails the batch (or the derivation), which is retried, the batch from the committed offsets, after
    a growing pause (`on_retry`). Returns the totals."""
    totals: Counter = Counter()
    with Ingestor(kind, settings, "follow") as run:
        waited = False
        while not run.start():
            if on_wait and not waited:
                on_wait(describe(run.lease.held_by or {}))
                waited = True
            if stop.wait(min(5.0, run.settings.ingest_lease_seconds / 3)):
                return dict(totals)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        backoff = FOLLOW_RETRY_FIRST
        last_full = time.monotonic()
        applied_since = reopen = False
        while not stop.is_set():
            # an empty batch is skipped, but every FOLLOW_FULL_EVERY seconds one runs whole (staging expiry)
            quiet = time.monotonic() - last_full < FOLLOW_FULL_EVERY
            try:
                if reopen:
                    run.reopen()
                    reopen = False
                summary = run.batch(f"follow-{stamp}-{int(totals['batches']) + 1}", max_records=run.settings.ingest_max_records,
                                    idle_ms=run.settings.follow_idle_ms, max_seconds=run.settings.follow_batch_seconds,
                                    stop=stop.is_set, skip_empty=quiet)
                backoff = FOLLOW_RETRY_FIRST
            except OUTAGES as exc:   # nothing of this batch was committed: retry it from the committed offsets
                backoff, reopen = _pause(kind, exc, backoff, stop, on_retry), True
                continue
            if summary is not None:
                last_full = time.monotonic()
                totals["batches"] += 1
                totals.update({k: v for k, v in summary["events"].items()})
                applied_since = applied_since or bool(summary["events"]["applied"])
                if on_batch:
                    on_batch(summary)
            if applied_since and run.last_idle and on_caught_up and not stop.is_set():
                try:
                    on_caught_up()
                    applied_since = False
                except OUTAGES as exc:
                    backoff = _pause(kind, exc, backoff, stop, on_retry)
    return dict(totals)


def _pause(kind: Kind, exc: BaseException, backoff: float, stop: threading.Event,
           on_retry: Callable[[str, float], None] | None) -> float:
    """Report an outage met by a follow process, wait `backoff` (or until stopped); the next pause."""
    log.warning("ingest %s --follow: %s; retrying in %.0f s", kind, exc, backoff)
    if on_retry:
        on_retry(f"{type(exc).__name__}: {exc}", backoff)
    stop.wait(backoff)
    return min(FOLLOW_RETRY_MAX, backoff * 2)


def busy_summary(kind: Kind, holder: str) -> dict:
    """The counts of a run that found another run of its kind active: nothing read, nothing written."""
    return {"kind": kind, "busy": holder,
            "events": {"consumed": 0, "applied": 0, "staged": 0, "duplicate": 0, "quarantined": 0}}


class Ingestor:
    """What ingest runs of one kind share: settings, orgs, registry, store, catalog, the lease and (once the
    lease is held) one consumer. `batch()` is one run: consume, write, record, commit."""

    def __init__(self, kind: Kind, settings: Settings | None, holder: str):
        self.kind = kind
        self.settings = settings or get_settings()
        self.spec = load_orgs(self.settings.orgs_file)
        self.registry = get_registry(self.settings.schemas_dir)
        self.store = ObjectStore(self.settings)
        self.catalog = Catalog(self.store)
        self.topics = [getattr(org, kind).name for org in self.spec.orgs]
        self.lease = Lease(self.store, kind, holder, self.settings.ingest_lease_seconds)
        self.consumer: BatchConsumer | None = None
        self.last_idle = False                 # the last batch ended on silence: nothing was waiting

    def __enter__(self) -> "Ingestor":
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.consumer is not None:
                self.consumer.close()
        finally:
            self.lease.release()

    def start(self) -> bool:
        """Take the lease, then open the consumer at the committed offsets (read only under the lease, so
        no other run commits past them meanwhile); False while another run holds the lease."""
        if not self.lease.acquire():
            return False
        self.reopen()
        return True

    def reopen(self) -> None:
        """A new consumer at the committed offsets (after a batch failed before its commit)."""
        if self.consumer is not None:
            try:
                self.consumer.close()
            except OUTAGES:
                pass
            self.consumer = None
        self.consumer = BatchConsumer(self.settings, f"{self.settings.consumer_group}-{self.kind}", self.topics)

    def batch(self, run_id: str, *, max_records: int, idle_ms: int, max_seconds: float | None = None,
              stop: Callable[[], bool] | None = None, skip_empty: bool = False,
              fail_before_commit: bool = False) -> dict | None:
        """One run over the records waiting (None when `skip_empty` and nothing came); emits its lineage
        events and metrics (ioxhub.ingest.observe)."""
        kind, settings = self.kind, self.settings
        assert self.consumer is not None, "start() first"
        dead = DeadLetters()
        trust = load_trust_store(settings, self.spec) if settings.require_signatures else None
        # lineage START once the batch is known to be a run (a follow process skips empty batches)
        trace = None if skip_empty else IngestTrace(kind, self.topics, settings)
        consumed_by_topic: Counter = Counter()
        try:
            summary = self._batch(run_id, consumed_by_topic, dead, trust, max_records=max_records,
                                  idle_ms=idle_ms, max_seconds=max_seconds, stop=stop, skip_empty=skip_empty,
                                  fail_before_commit=fail_before_commit)
        except BaseException as exc:
            if trace is not None:
                trace.fail(exc)
            raise
        if summary is None:
            return None
        summary, handler = summary
        with_context(log, run_id=run_id, kind=kind).info("ingest %s: %s", kind, summary)
        (trace or IngestTrace(kind, self.topics, settings)).complete(summary, handler, dead, consumed_by_topic)
        return summary

    def _batch(self, run_id: str, consumed_by_topic: Counter, dead: DeadLetters, trust: TrustStore | None, *,
               max_records: int, idle_ms: int, max_seconds: float | None, stop: Callable[[], bool] | None,
               skip_empty: bool, fail_before_commit: bool) -> tuple[dict, DatasetIngest | PolicyIngest] | None:
        """consume -> raw -> handle -> write -> reconcile -> record -> renew the lease -> commit."""
        kind, settings, store, catalog, registry = self.kind, self.settings, self.store, self.catalog, self.registry
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"ioxhub-ingest-{kind}-") as tmp:
            work = Path(tmp)
            handler = (DatasetIngest(store, catalog, dead, work, registry, run_id) if kind == "datasets"
                       else PolicyIngest(store, catalog, dead, registry, run_id=run_id))
            raw = RawZone(store, work / "raw", registry)

            def take(polled) -> None:
                for tp, records in sorted(polled.items()):
                    consumed_by_topic[tp.topic] += len(records)
                    raw.add(tp, records)
                    for record in records:
                        handle(record, handler, dead, trust, registry)

            try:
                batch = self.consumer.poll_batch(max_records, idle_ms, take, max_seconds=max_seconds, stop=stop)
                self.last_idle = batch.idle
                if skip_empty and not batch.count:
                    return None
                raw.write()
            finally:
                raw.close()
            handled = handler.finish()
        letters = dead.write(store, settings)
        handler.settle()
        summary = run_summary(kind, batch.count, handled, dead, letters)
        if kind == "datasets":   # releases incomplete too long: counted apart (staged by earlier runs)
            summary.update(expire_staged(store, settings, active=set(handler.releases),
                                         caught_up=batch.idle))
        reconcile(summary)
        summary["seconds"] = round(time.monotonic() - started, 3)
        catalog.record_run(dag_id(kind), run_id, summary)
        if fail_before_commit:
            raise InjectedFault("fault injected after the objects were written, before the offset commit")
        self.lease.renew()                     # still ours: nobody else read these offsets meanwhile
        self.consumer.commit(batch)
        summary["lag"] = self.consumer.lag()
        return summary, handler


def handle(record, handler: DatasetIngest | PolicyIngest, dead: DeadLetters, trust: TrustStore | None,
           registry: Registry | None = None) -> None:
    """Take one consumed record: accept it and hand it to `handler`, or refuse it. An unexpected
    exception (a bug) costs this record, never the run: it is refused as `internal-error` with its
    traceback; outages (storage, broker, disk) still fail the run, which is retried."""
    decoded = None
    try:
        decoded = accept(record, dead, trust, registry)
        if decoded is not None:
            handler.add(record, decoded)
    except OUTAGES:
        raise
    except Exception as exc:
        rec = decoded.record if decoded is not None else {}
        org, event_id = rec.get("org"), rec.get("event_id")
        log.exception("ingest: unexpected error on %s[%s]@%s", record.topic, record.partition, record.offset,
                      extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "org": org})
        handler.fail(record, dead.internal_error(record, exc, org=org if isinstance(org, str) else None,
                                                 event_id=event_id if isinstance(event_id, str) else None))


def accept(record, dead: DeadLetters, trust: TrustStore | None, registry: Registry | None = None) -> codec.Decoded | None:
    """Verify a record's signature, decode it (with `registry`, default: the global settings') and check
    its org claims; refuse it with a reason otherwise."""
    headers = codec.header_map(record.headers)
    header_org = codec.header_org(headers)
    if trust is not None:
        try:
            verify(record.value or b"", record.headers, record.topic, trust,
                   verification_time(record.timestamp, record.timestamp_type))
        except SignatureError as exc:
            dead.refuse(record, exc.reason, f"{record.topic}[{record.partition}]@{record.offset}: {exc}", org=header_org,
                        event_id=codec.header_event_id(headers))
            return None
    try:
        decoded = dataset_chunk.decode(record.value, registry)
    except codec.DecodeError as exc:
        dead.refuse(record, exc.reason, f"{record.topic}[{record.partition}]@{record.offset}: {exc.detail}", org=header_org)
        return None
    rec = decoded.record
    try:
        check_org(str(rec.get("org")), "org")
    except InvalidName as exc:
        dead.refuse(record, "bad-name", f"{record.topic}@{record.offset}: {exc}", org=header_org)
        return None
    topic_org = org_of_topic(record.topic)
    payload_org = rec.get("org")
    if payload_org != topic_org:
        dead.refuse(record, "org-mismatch",
                    f"{record.topic}@{record.offset}: payload org {payload_org!r} published into {topic_org}'s topic",
                    org=payload_org, event_id=rec.get("event_id"))
        return None
    if header_org is not None and header_org != payload_org:
        dead.refuse(record, "org-mismatch",
                    f"{record.topic}@{record.offset}: header org {header_org!r} differs from payload org {payload_org!r}",
                    org=payload_org, event_id=rec.get("event_id"))
        return None
    return decoded


def run_summary(kind: Kind, consumed: int, handled, dead: DeadLetters, letters: int) -> dict:
    quarantined = dead.events_by_reason()
    counts = {f.name: getattr(handled, f.name) for f in dataclasses.fields(handled)}  # shallow: keeps the Counter
    refused_rows = counts.pop("refused_by_reason", None)
    summary = {
        "kind": kind,
        "events": {
            "consumed": consumed,
            "applied": counts.pop("events_applied"),
            "staged": counts.pop("events_staged", 0),
            "duplicate": counts.pop("events_duplicate"),
            "quarantined": sum(quarantined.values()),
        },
        "quarantined_by_reason": dict(sorted(quarantined.items())),
        # events counted as staged by earlier runs, refused now with their release
        "earlier_events_quarantined": dict(sorted(dead.earlier.items())),
        "dead_letters": letters,
        **counts,
    }
    if refused_rows is not None:
        summary["observations_refused_by_reason"] = dict(sorted(Counter(refused_rows).items()))
    return summary


def reconcile(summary: dict) -> None:
    """consumed = applied + staged + duplicate + quarantined (events); for datasets also
    observations received = harmonized + refused + duplicate."""
    e = summary["events"]
    if e["consumed"] != e["applied"] + e["staged"] + e["duplicate"] + e["quarantined"]:
        raise CountsDoNotReconcile(f"events do not reconcile: {e}")
    if summary["kind"] == "datasets":
        received = summary["observations_received"]
        parts = summary["observations_harmonized"] + summary["observations_refused"] + summary["observations_duplicate"]
        if received != parts:
            raise CountsDoNotReconcile(f"observations do not reconcile: received {received} != {parts}")


def announce_or_skip(summary: dict) -> None:
    """Let the DAG announce its Asset only when the run changed the harmonized zone (else skip the task)."""
    from airflow.sdk.exceptions import AirflowSkipException

    if not summary["events"]["applied"]:
        raise AirflowSkipException("nothing applied: no Asset event")
