"""`ioxhub status`: the last run of each DAG (its counts), its latest failed tries and runs, the lag of
each topic group (records, and seconds since the oldest unread record; `lag_error` says why when the
broker cannot be read), the age of each dataset's newest snapshot (freshness), the releases waiting in staging/ and those expired there, and the records refused as
internal errors (bugs met while handling them).

Entry points: `hub_status(settings)` returns the data (the CLI renders it), `topic_lag`, `topic_backlog`,
`freshness`, `internal_errors`, `trigger_liveness` (are the ingest DAGs' event triggers running in Airflow's
triggerer).
The lag (end offset minus the ingest group's committed offset) is a lower bound on the local tansu
broker (docs/local-stack.md); releases in staging/, their expiry: docs/architecture.md, docs/staging-expiry.md.
"""
from __future__ import annotations

import datetime as dt
import time

from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from ioxhub.catalog import Catalog
from ioxhub.ingest.staging import expired_releases, staged_releases
from ioxhub.ingest.watch import KINDS, OffsetWatch
from ioxhub.names import org_topics_asset
from ioxhub.settings import Settings, get_settings
from ioxhub.tables import CURATED, HARMONIZED, NAME
from ioxhub.stack.airflow import Api
from ioxhub.storage import ObjectStore

ERRORS_ZONE = "quarantine/errors/"


OLDEST_POLL_MS = 2000        # most time `topic_lag` spends fetching the oldest unread record of lagging partitions


def topic_lag(settings: Settings) -> dict[str, dict[str, int]]:
    """{kind: {topic: records not yet committed by the ingest group of that kind}}."""
    return topic_backlog(settings, ages=False)[0]


def topic_backlog(settings: Settings, *, ages: bool = True, now: float | None = None
                  ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float | None]]]:
    """(`topic_lag`, {kind: {topic: seconds since its oldest unread record was published, None when none
    waits}}). Cheap: end offsets, committed offsets, and (`ages`) one fetch per lagging partition."""
    lags: dict[str, dict[str, int]] = {}
    seconds: dict[str, dict[str, float | None]] = {}
    for kind in KINDS:
        with OffsetWatch(settings, kind, max_poll_records=1, max_partition_fetch_bytes=64 << 10) as watch:
            offsets = watch.snapshot()
            lags[kind] = lag = offsets.lag_by_topic()
            if ages:
                behind = {TopicPartition(key.rpartition(":")[0], int(key.rpartition(":")[2])): offsets.committed.get(key, 0)
                          for key, end in offsets.ends.items() if end > offsets.committed.get(key, 0)}
                seconds[kind] = lag_seconds(lag, _oldest_unread(watch.consumer, behind), time.time() if now is None else now)
    return lags, seconds


def _oldest_unread(consumer, behind: dict[TopicPartition, int]) -> dict[str, int]:
    """{topic: timestamp (ms) of its oldest unread record} over the partitions in `behind` (at their
    committed offset); a partition whose record did not come within OLDEST_POLL_MS is left out."""
    if not behind:
        return {}
    consumer.assign(list(behind))
    for tp, offset in behind.items():
        consumer.seek(tp, offset)
    oldest: dict[str, int] = {}
    missing = set(behind)
    deadline = time.monotonic() + OLDEST_POLL_MS / 1000
    while missing and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            if tp in missing and records:
                missing.discard(tp)
                consumer.pause(tp)
                oldest[tp.topic] = min(oldest.get(tp.topic, records[0].timestamp), records[0].timestamp)
    return oldest


def lag_seconds(lag: dict[str, int], oldest_ms: dict[str, int], now: float) -> dict[str, float | None]:
    """Per topic: now minus the publish time of its oldest unread record (0 never below), None when no
    record waits or its time could not be read."""
    return {topic: (round(max(0.0, now - oldest_ms[topic] / 1000), 1) if n and topic in oldest_ms else None)
            for topic, n in lag.items()}


def freshness(store: ObjectStore, now: dt.datetime | None = None) -> list[dict]:
    """Per dataset of the catalog: when its newest snapshot was committed (a harmonized dataset: its newest
    applied release; a curated one: its last derivation) and how long ago, from the tables' metadata."""
    now = now or dt.datetime.now(dt.timezone.utc)
    tables = Catalog(store).tables
    return dataset_ages([(t.properties[NAME], dt.datetime.fromtimestamp(t.current_snapshot().timestamp_ms / 1000,
                                                                        dt.timezone.utc))
                         for namespace in (HARMONIZED, CURATED) for t in tables.tables(namespace)
                         if t.current_snapshot() is not None and NAME in t.properties], now)


def dataset_ages(entries: list[tuple[str, dt.datetime | None]], now: dt.datetime) -> list[dict]:
    """[{"dataset", "updated_at", "age_seconds"}] for (dataset name, time of its current snapshot), by name."""
    return [{"dataset": name, "updated_at": when,
             "age_seconds": None if when is None else round((now - when).total_seconds(), 1)}
            for name, when in sorted(entries)]


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


def trigger_liveness(settings: Settings) -> dict:
    """{"live": bool, "triggerer": its health status and last heartbeat (or why Airflow did not answer),
    "watchers": {kind: {"registered", "trigger_id", "last_event"}}}: live when the triggerer is healthy and
    the watcher of every kind has its trigger (the triggerer runs every registered trigger)."""
    api = Api(settings, timeout=5)
    try:
        triggerer = api.health().get("triggerer") or {}
        assets = {a["name"]: a for a in api.get("assets", name_pattern="org_topics_", limit=10)["assets"]}
    except (OSError, ValueError, KeyError) as exc:   # not running, refused, no password file, not JSON
        return {"live": False, "triggerer": {"status": f"airflow not reachable: {type(exc).__name__}: {str(exc)[:120]}"},
                "watchers": {}}
    watchers = {}
    for kind in KINDS:
        asset = assets.get(org_topics_asset(kind)) or {}
        found = [w for w in asset.get("watchers", []) if w.get("name") == org_topics_asset(kind)]
        watchers[kind] = {"registered": bool(found), "trigger_id": found[0]["trigger_id"] if found else None,
                          "last_event": (asset.get("last_asset_event") or {}).get("timestamp")}
    status = triggerer.get("status")
    return {"live": status == "healthy" and all(w["registered"] for w in watchers.values()),
            "triggerer": {"status": status, "heartbeat": triggerer.get("latest_triggerer_heartbeat")},
            "watchers": watchers}


def hub_status(settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    store = ObjectStore(settings)
    catalog = Catalog(store)
    try:
        lag, lag_age, lag_error = *topic_backlog(settings), None
    except (KafkaError, OSError) as exc:     # the broker is down: the rest of the status is still worth showing
        lag, lag_age, lag_error = {}, {}, f"cannot read the topics' offsets: {type(exc).__name__}: {exc}"
    return {"runs": catalog.last_runs(), "failures": catalog.recent_failures(), "lag": lag, "lag_seconds": lag_age,
            "lag_error": lag_error,
            "freshness": freshness(store), "staging": staged_releases(store), "expired": expired_releases(store),
            "internal_errors": internal_errors(store),
            "triggers": trigger_liveness(settings)}
