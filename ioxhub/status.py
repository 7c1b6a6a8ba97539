"""`ioxhub status`: the last run of each DAG (its counts), its latest failed tries and runs, the lag of
each topic group, the releases waiting in staging/ and those expired there, and the records refused as
internal errors (bugs met while handling them).

Entry points: `hub_status(settings)` returns the data (the CLI renders it), `topic_lag`, `internal_errors`.
The lag (end offset minus the ingest group's committed offset) is a lower bound on the local tansu
broker (docs/local-stack.md); releases in staging/, their expiry: docs/architecture.md, docs/staging-expiry.md.
"""
from __future__ import annotations

import datetime as dt

from kafka.structs import TopicPartition

from ioxhub.catalog import Catalog
from ioxhub.ingest.staging import expired_releases, staged_releases
from ioxhub.kafka import make_consumer
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore

ERRORS_ZONE = "quarantine/errors/"


def topic_lag(settings: Settings) -> dict[str, dict[str, int]]:
    """{kind: {topic: records not yet committed by the ingest group of that kind}}."""
    spec = load_orgs(settings.orgs_file)
    lags: dict[str, dict[str, int]] = {}
    for kind in ("datasets", "policies"):
        consumer = make_consumer(f"{settings.consumer_group}-{kind}", settings)
        try:
            partitions = [TopicPartition(t, p) for t in (getattr(o, kind).name for o in spec.orgs)
                          for p in sorted(consumer.partitions_for_topic(t) or ())]
            ends = consumer.end_offsets(partitions)
            lag: dict[str, int] = {}
            for tp in partitions:
                committed = consumer.committed(tp) or 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, ends.get(tp, 0) - committed)
            lags[kind] = lag
        finally:
            consumer.close(autocommit=False)
    return lags


def internal_errors(store: ObjectStore, limit: int = 20) -> list[dict]:
    """The newest records refused as `internal-error` (a bug met while handling them), with the last
    line of their traceback and where the whole traceback is."""
    entries = sorted(store.entries(ERRORS_ZONE), key=lambda e: e.modified or dt.datetime.min.replace(tzinfo=dt.timezone.utc),
                     reverse=True)[:limit]
    out = []
    for entry in entries:
        text = (store.get_bytes(entry.key) or b"").decode(errors="replace").strip()
        parts = dict(p.split("=", 1) for p in entry.key.removesuffix(".txt").split("/")[2:])
        out.append({"topic": parts.get("topic"), "partition": int(parts.get("partition", 0)),
                    "offset": int(parts.get("offset", 0)), "at": entry.modified, "key": entry.key,
                    "error": text.splitlines()[-1] if text else ""})
    return out


def hub_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    store = ObjectStore(settings)
    catalog = Catalog(store)
    return {"runs": catalog.last_runs(), "failures": catalog.recent_failures(), "lag": topic_lag(settings),
            "staging": staged_releases(store), "expired": expired_releases(store),
            "internal_errors": internal_errors(store)}
