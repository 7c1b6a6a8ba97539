"""The metrics exporter: the batch runs' textfiles (ioxhub.metrics) plus gauges computed at each scrape.

`exposition(settings)` (or `samples`) is the current text (`ioxhub metrics`); `serve_metrics(port, settings)`
serves it on HTTP from a daemon thread (`ioxhub metrics serve`, or inside a long-running process).
Scrape-time gauges: topic lag in records and seconds (Kafka), dataset freshness (the catalog), each source bounded in time.
Metric names: docs/lineage-and-metrics.md.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from ioxhub.catalog import Catalog
from ioxhub.metrics import Key, TextfileValues, metrics_dir, read_textfile
from ioxhub.settings import Settings, get_settings
from ioxhub.status import topic_backlog
from ioxhub.storage import ObjectStore

log = logging.getLogger("ioxhub.metrics")

LIVE_METRICS = {
    "ioxhub_topic_lag_records": "Records of a topic not yet committed by its ingest group (a lower bound on tansu).",
    "ioxhub_topic_lag_seconds": "Seconds since the oldest record of a topic not yet ingested was published (0 when none waits).",
    "ioxhub_dataset_freshness_seconds": "Age of the newest applied release (harmonized) or snapshot (curated) of a dataset.",
    "ioxhub_dataset_updated_timestamp_seconds": "Unix time a dataset last changed (catalog).",
    "ioxhub_exporter_errors": "1 when a source of the scrape-time gauges (kafka, catalog) failed at this scrape.",
}


class TextfileCollector:
    """The samples of every textfile in the metrics directory, read at each scrape."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        merged: dict[Key, float] = {}
        for path in sorted(metrics_dir(self.settings).glob("*.prom")):
            merged.update(read_textfile(path))
        yield from TextfileValues(merged).collect()


class LiveCollector:
    """Gauges computed at scrape time: topic lag in records and seconds (Kafka) and dataset freshness (the catalog). Each source
    gets `timeout` seconds (a broker that is down makes kafka-python wait ~30 s): past it, that source
    reports an error for this scrape and the next scrape waits for the same pending request."""

    def __init__(self, settings: Settings, timeout: float = 5.0):
        self.settings, self.timeout = settings, timeout
        self._pending: dict[str, _Pending] = {}

    def _bounded(self, source: str, fn):
        pending = self._pending.get(source)
        if pending is None:
            pending = self._pending[source] = _Pending(fn)
        if not pending.done.wait(self.timeout):
            raise TimeoutError(f"{source}: no answer within {self.timeout} s")
        del self._pending[source]
        if pending.error is not None:
            raise pending.error
        return pending.result

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("ioxhub_exporter_errors", LIVE_METRICS["ioxhub_exporter_errors"], labels=["source"])
        lag = GaugeMetricFamily("ioxhub_topic_lag_records", LIVE_METRICS["ioxhub_topic_lag_records"], labels=["kind", "topic"])
        age = GaugeMetricFamily("ioxhub_topic_lag_seconds", LIVE_METRICS["ioxhub_topic_lag_seconds"], labels=["kind", "topic"])
        try:
            records, seconds = self._bounded("kafka", lambda: topic_backlog(self.settings))
            for kind, topics in records.items():
                for topic, n in topics.items():
                    lag.add_metric([kind, topic], n)
                    age.add_metric([kind, topic], seconds.get(kind, {}).get(topic) or 0.0)
            errors.add_metric(["kafka"], 0)
        except Exception as exc:
            errors.add_metric(["kafka"], 1)
            log.debug("metrics: lag unavailable: %s", exc)
        fresh = GaugeMetricFamily("ioxhub_dataset_freshness_seconds", LIVE_METRICS["ioxhub_dataset_freshness_seconds"],
                                  labels=["dataset", "kind"])
        updated = GaugeMetricFamily("ioxhub_dataset_updated_timestamp_seconds",
                                    LIVE_METRICS["ioxhub_dataset_updated_timestamp_seconds"], labels=["dataset", "kind"])
        try:
            for name, kind, when in self._bounded("catalog", lambda: dataset_updates(self.settings)):
                fresh.add_metric([name, kind], round(time.time() - when, 3))
                updated.add_metric([name, kind], when)
            errors.add_metric(["catalog"], 0)
        except Exception as exc:
            errors.add_metric(["catalog"], 1)
            log.debug("metrics: catalog unavailable: %s", exc)
        yield from (lag, age, fresh, updated, errors)


class _Pending:
    """A call running in a daemon thread (never holds up the exit of the process)."""

    def __init__(self, fn):
        self.done = threading.Event()
        self.result, self.error = None, None

        def run() -> None:
            try:
                self.result = fn()
            except Exception as exc:
                self.error = exc
            finally:
                self.done.set()
        threading.Thread(target=run, daemon=True, name="ioxhub-metrics-live").start()


def dataset_updates(settings: Settings) -> list[tuple[str, str, float]]:
    """(dataset, kind, unix time of its last change) of every catalog dataset."""
    out = []
    for doc in Catalog(ObjectStore(settings)).datasets():
        if doc.get("updated_at"):
            out.append((doc["name"], doc.get("kind", ""), dt.datetime.fromisoformat(doc["updated_at"]).timestamp()))
    return out


def registry(settings: Settings | None = None, live: bool = True, timeout: float = 5.0) -> CollectorRegistry:
    settings = settings or get_settings()
    reg = CollectorRegistry()
    reg.register(TextfileCollector(settings))
    if live:
        reg.register(LiveCollector(settings, timeout))
    return reg


def exposition(settings: Settings | None = None, live: bool = True, timeout: float = 5.0) -> str:
    """The current exposition (Prometheus text format): textfiles, and with `live` the scrape-time gauges."""
    return generate_latest(registry(settings, live, timeout)).decode()


def samples(settings: Settings | None = None, live: bool = True) -> list[dict]:
    """The exposition's samples as [{name, labels, value}] (`ioxhub metrics --json`)."""
    return [{"name": sm.name, "labels": dict(sm.labels), "value": sm.value}
            for family in registry(settings, live).collect() for sm in family.samples]


def serve_metrics(port: int, settings: Settings | None = None, addr: str = "127.0.0.1", live: bool = True):
    """Serve the exposition on http://addr:port/metrics in a daemon thread; returns (server, thread)
    (`server.shutdown()` stops it)."""
    return start_http_server(port, addr=addr, registry=registry(settings, live))
