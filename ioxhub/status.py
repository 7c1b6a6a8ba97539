"""`ioxhub status`: the last run of each DAG (its counts), its latest failed tries and runs, the lag of
each topic group, the releases waiting in staging/ and those expired there, and the records refused as
internal errors (bugs met while handling them).

Entry points: `hub_status(settings)` returns the data (the CLI renders it), `topic_lag`, `internal_errors`,
`trigger_liveness` (are the ingest DAGs' event triggers running in Airflow's triggerer).
The lag (end offset minus the ingest group's committed offset) is a lower bound on the local tansu
broker (docs/local-stack.md); releases in staging/, their expiry: docs/architecture.md, docs/staging-expiry.md.
"""
from __future__ import annotations

import datetime as dt

from ioxhub.catalog import Catalog
from ioxhub.ingest.staging import expired_releases, staged_releases
from ioxhub.ingest.watch import KINDS, OffsetWatch
from ioxhub.names import org_topics_asset
from ioxhub.settings import Settings, get_settings
from ioxhub.stack.airflow import Api
from ioxhub.storage import ObjectStore

ERRORS_ZONE = "quarantine/errors/"


def topic_lag(settings: Settings) -> dict[str, dict[str, int]]:
    """{kind: {topic: records not yet committed by the ingest group of that kind}}."""
    lags: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        with OffsetWatch(settings, kind) as watch:
            lags[kind] = watch.snapshot().lag_by_topic()
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
    return {"runs": catalog.last_runs(), "failures": catalog.recent_failures(), "lag": topic_lag(settings),
            "staging": staged_releases(store), "expired": expired_releases(store),
            "internal_errors": internal_errors(store), "triggers": trigger_liveness(settings)}
