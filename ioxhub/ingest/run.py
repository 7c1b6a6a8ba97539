"""One ingest run: consume a bounded batch -> raw -> verify, decode -> harmonize -> write -> commit.

`ingest(kind)` is what the ingest DAGs call; `handle` takes one record (an unexpected exception refuses
that record as `internal-error`, never the run); `accept` verifies, decodes and checks a record's org
claims; `reconcile` checks that every consumed event is in exactly one count before anything is
committed. The order of writes and commits is the exactly-once argument: docs/architecture.md.
"""
from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from pathlib import Path
from collections import Counter
from typing import Literal

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec, dataset_chunk
from ioxhub.contracts.registry import Registry, get_registry
from ioxhub.errors import IoxhubError
from ioxhub.ingest.consume import BatchConsumer
from ioxhub.ingest.datasets import DatasetIngest
from ioxhub.ingest.lock import RunLock
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


class InjectedFault(IoxhubError):
    """Raised on purpose between the object writes and the offset commit (exactly-once tests)."""


class CountsDoNotReconcile(RuntimeError):
    """A bug: some consumed event is in no count (or in two). Nothing is committed."""


def dag_id(kind: Kind) -> str:
    return f"ingest_{kind}"


def ingest(kind: Kind, settings: Settings | None = None, *, max_records: int | None = None,
           idle_ms: int | None = None, fail_before_commit: bool = False, run_id: str = "manual") -> dict:
    """Run one ingest of all org topics of `kind`; returns (and logs, and records) the run's counts."""
    settings = settings or get_settings()
    started = time.monotonic()
    spec = load_orgs(settings.orgs_file)
    registry = get_registry(settings.schemas_dir)
    topics = [getattr(org, kind).name for org in spec.orgs]
    store = ObjectStore(settings)
    catalog = Catalog(store)
    dead = DeadLetters()
    trust = load_trust_store(settings, spec) if settings.require_signatures else None
    consumer = BatchConsumer(settings, f"{settings.consumer_group}-{kind}", topics)
    lock = RunLock(store, settings, kind, f"{dag_id(kind)} run {run_id}")
    trace = IngestTrace(kind, topics, settings)
    consumed_by_topic: Counter = Counter()
    try:
        lock.acquire()
        with tempfile.TemporaryDirectory(prefix=f"ioxhub-ingest-{kind}-") as tmp:
            work = Path(tmp)
            handler = (DatasetIngest(store, catalog, dead, work, registry) if kind == "datasets"
                       else PolicyIngest(store, catalog, dead, registry))
            raw = RawZone(store, work / "raw", registry)

            def take(polled) -> None:
                for tp, records in sorted(polled.items()):
                    consumed_by_topic[tp.topic] += len(records)
                    raw.add(tp, records)
                    for record in records:
                        handle(record, handler, dead, trust, registry)

            try:
                batch = consumer.poll_batch(max_records or settings.ingest_max_records,
                                            idle_ms or settings.ingest_idle_ms, take)
                raw.write()
            finally:
                raw.close()
            handled = handler.finish()
        letters = dead.write(store, settings)
        handler.settle()
        summary = _summary(kind, batch.count, handled, dead, letters)
        if kind == "datasets":   # releases incomplete too long: counted apart (staged by earlier runs)
            summary.update(expire_staged(store, settings, active=set(handler.releases),
                                         caught_up=batch.count < (max_records or settings.ingest_max_records)))
        reconcile(summary)
        summary["seconds"] = round(time.monotonic() - started, 3)
        catalog.record_run(dag_id(kind), run_id, summary)
        if fail_before_commit:
            raise InjectedFault("fault injected after the objects were written, before the offset commit")
        consumer.commit(batch)
        summary["lag"] = consumer.lag()
    except BaseException as exc:
        trace.fail(exc)
        raise
    finally:
        consumer.close()
        lock.release_quietly()
    with_context(log, run_id=run_id, kind=kind).info("ingest %s: %s", kind, summary)
    trace.complete(summary, handler, dead, consumed_by_topic)
    return summary


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


def _summary(kind: Kind, consumed: int, handled, dead: DeadLetters, letters: int) -> dict:
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
