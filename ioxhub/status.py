"""`ioxhub status`: the last run of each DAG (its counts), its latest failed tries and runs, the lag of
each topic group, and the releases waiting in staging/.

A release waits in staging/ while some of its chunks or its manifest have not arrived; ingest applies
it in the run that brings its last event. One that waits for long was most likely cut off at the
producer (a publish that failed half-way): publishing the same file again completes it (same release
id and event ids; ingest keeps the first copy of each event). The list shows each waiting release with
its staged events, bytes and the age of its oldest event, so such releases are seen, not forgotten.

Runs are read from the catalog (each ingest/derive run records its counts there); the lag is the
difference between the end offset of each topic and the ingest group's committed offset. On the local
tansu broker end offsets can under-report after batched produce (platform-facts): the lag is then a
lower bound, which the output says.
"""
from __future__ import annotations

import datetime as dt

from kafka.structs import TopicPartition

from ioxhub.catalog import Catalog
from ioxhub.kafka import make_consumer
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore

STAGING_ZONE = "staging/"


def topic_lag(settings: Settings) -> dict[str, dict[str, int]]:
    """{kind: {topic: records not yet committed by the ingest group of that kind}}."""
    spec = load_orgs()
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


def hub_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    store = ObjectStore(settings)
    catalog = Catalog(store)
    return {"runs": catalog.last_runs(), "failures": catalog.recent_failures(), "lag": topic_lag(settings),
            "staging": staged_releases(store)}
