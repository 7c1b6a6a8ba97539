"""The ingest DAGs' event trigger, run by Airflow's triggerer: it starts ingest runs when records arrive.

- `OrgTopicsTrigger(kind)`: a `BaseEventTrigger` that reads, every `IOXHUB_TRIGGER_POLL_SECONDS`, the end
  offsets of the org topics of one kind and the ingest group's committed offsets (never consuming, see
  ioxhub.ingest.watch) and fires when records wait that no earlier firing was for, and at the latest
  every `IOXHUB_INGEST_SAFETY_INTERVAL_MINUTES`.
- `topics_asset(kind)`: the Asset "org_topics_<kind>" whose AssetWatcher runs that trigger; the ingest DAG of
  the kind is scheduled on it. Why this trigger and not the Kafka provider's: docs/airflow-runs.md.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from airflow.sdk import Asset, AssetWatcher
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from ioxhub.names import org_topics_asset
from ioxhub.settings import Settings, get_settings


class OrgTopicsTrigger(BaseEventTrigger):
    """Fires (one TriggerEvent: kind and lag per topic) when the org topics of `kind` hold records no
    firing was for yet. Runs until the triggerer stops it; a broker that does not answer is retried."""

    def __init__(self, kind: str, poll_seconds: float = 2.0, safety_seconds: float = 3600.0):
        super().__init__()
        self.kind = kind
        self.poll_seconds = poll_seconds
        self.safety_seconds = safety_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "kind": self.kind, "poll_seconds": self.poll_seconds, "safety_seconds": self.safety_seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        settings = get_settings()
        watch = fired = None
        fired_at = time.monotonic()        # the safety interval counts from the start, then from each firing
        try:
            while True:
                try:
                    watch = watch or await asyncio.to_thread(_open_watch, settings, self.kind)
                    now = await asyncio.to_thread(watch.snapshot)
                except Exception as exc:  # broker unreachable, orgs file unreadable: keep watching, say why
                    self.log.warning("%s: cannot read offsets: %s: %s", org_topics_asset(self.kind), type(exc).__name__, exc)
                    watch = await _closed(watch)
                    await asyncio.sleep(self.poll_seconds)
                    continue
                from ioxhub.ingest.watch import should_fire  # imported by _open_watch already: no wait

                if should_fire(fired, now, time.monotonic() - fired_at, self.safety_seconds):
                    fired, fired_at = now, time.monotonic()
                    yield TriggerEvent({"kind": self.kind, "lag": now.lag_by_topic()})
                await asyncio.sleep(self.poll_seconds)
        finally:
            await _closed(watch)


def _open_watch(settings: Settings, kind: str):
    """An OffsetWatch, imported here, in a worker thread: kafka-python takes ~1 s to import, which would
    block the triggerer's event loop (and every other trigger) if this module imported it."""
    from ioxhub.ingest.watch import OffsetWatch

    return OffsetWatch(settings, kind)


async def _closed(watch) -> None:
    if watch is not None:
        await asyncio.to_thread(watch.close)
    return None


def topics_asset(kind: str, settings: Settings | None = None) -> Asset:
    """The Asset standing for the org topics of `kind`, watched by an OrgTopicsTrigger."""
    s = settings or get_settings()
    trigger = OrgTopicsTrigger(kind=kind, poll_seconds=s.trigger_poll_seconds,
                               safety_seconds=s.ingest_safety_interval_minutes * 60.0)
    return Asset(name=org_topics_asset(kind), uri=f"kafka://{s.consumer_group}/{kind}", group="kafka",
                 watchers=[AssetWatcher(name=org_topics_asset(kind), trigger=trigger)])
