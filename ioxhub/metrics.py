"""Prometheus metrics of the hub's batch runs, as textfiles (what they record; ioxhub.metrics_exporter serves them).

Batch runs call `record_publish`, `record_ingest`, `record_derive` (or `record_failure`): each adds to the
counters of its job's textfile `<data_dir>/metrics/<job>.prom` (node_exporter textfile-collector format,
written by prometheus-client's `write_to_textfile`) and sets its last-run gauges; recording never raises.
`read_textfile`, `TextfileValues` give the samples back. Light on purpose (no Kafka or S3 client): every
publish imports it. Metric names and labels: docs/lineage-and-metrics.md.
"""
from __future__ import annotations

import fcntl
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from ioxhub.settings import Settings

log = logging.getLogger("ioxhub.metrics")

# name (without _total for counters) -> (type, help, label names)
METRICS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ioxhub_runs": ("counter", "Runs of a hub job by outcome (success, failure).", ("job", "outcome")),
    "ioxhub_run_duration_seconds": ("gauge", "Duration of the last run of a job.", ("job",)),
    "ioxhub_run_seconds": ("counter", "Seconds spent in runs of a job (rate / runs rate = mean duration).", ("job",)),
    "ioxhub_run_last_success_timestamp_seconds": ("gauge", "Unix time the last successful run of a job ended.", ("job",)),
    "ioxhub_run_last_failure_timestamp_seconds": ("gauge", "Unix time the last failed run of a job ended.", ("job",)),
    "ioxhub_publish_rows": ("counter", "Rows (observations or policy updates) sent by publishes.", ("org", "kind")),
    "ioxhub_publish_bytes": ("counter", "Bytes of event values sent by publishes.", ("org", "kind")),
    "ioxhub_publish_bytes_read": ("counter", "Bytes of partner files read by publishes.", ("org", "kind")),
    "ioxhub_publish_rows_rejected": ("counter", "Rows rejected at the source by publishes, by reason.", ("org", "kind", "reason")),
    "ioxhub_ingest_events": ("counter", "Events of ingest runs by outcome (consumed = applied + staged + duplicate + quarantined).",
                             ("kind", "outcome")),
    "ioxhub_ingest_org_events": ("counter", "Events of ingest runs by org and outcome (consumed, applied, quarantined).",
                                 ("kind", "org", "outcome")),
    "ioxhub_ingest_events_quarantined": ("counter", "Events quarantined by ingest runs, by org and reason.", ("kind", "org", "reason")),
    "ioxhub_observations_harmonized": ("counter", "Observations harmonized into the harmonized zone.", ("org", "dataset")),
    "ioxhub_observations_refused": ("counter", "Observations refused by ingest (dead-letter path), by org and reason.", ("org", "reason")),
    "ioxhub_curated_rows": ("gauge", "Rows of the latest snapshot of a curated dataset.", ("dataset",)),
}

Key = tuple[str, tuple[tuple[str, str], ...]]
_warned: set[str] = set()


def metrics_dir(settings: Settings) -> Path:
    return settings.data_dir / "metrics"


def textfile(settings: Settings, job: str) -> Path:
    return metrics_dir(settings) / f"{job}.prom"


# ---------------------------------------------------------------------------------------- recording
class Update:
    """Increments and gauge values of one run, applied to its job's textfile by `commit`."""

    def __init__(self) -> None:
        self.adds: dict[Key, float] = defaultdict(float)
        self.sets: dict[Key, float] = {}

    def add(self, name: str, value: float, **labels: str) -> None:
        if value:
            self.adds[_key(name, labels)] += value

    def set(self, name: str, value: float, **labels: str) -> None:
        self.sets[_key(name, labels)] = value

    def run(self, job: str, seconds: float, ok: bool = True) -> None:
        self.add("ioxhub_runs", 1, job=job, outcome="success" if ok else "failure")
        self.add("ioxhub_run_seconds", seconds, job=job)
        self.set("ioxhub_run_duration_seconds", round(seconds, 3), job=job)
        self.set(f"ioxhub_run_last_{'success' if ok else 'failure'}_timestamp_seconds", round(time.time(), 3), job=job)

    def commit(self, settings: Settings, job: str) -> None:
        """Add to / set in the job's textfile (read, change, write under a lock); never raises."""
        path = textfile(settings, job)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path.with_suffix(".lock"), "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                values = read_textfile(path)
                for key, inc in self.adds.items():
                    values[key] = values.get(key, 0.0) + inc
                values.update(self.sets)
                registry = CollectorRegistry()
                registry.register(TextfileValues(values))
                write_to_textfile(str(path), registry)
        except Exception as exc:  # metrics must never break the run they count
            if job not in _warned:
                _warned.add(job)
                log.warning("metrics: could not write %s (%s: %s)", path, type(exc).__name__, exc)


def _key(name: str, labels: dict[str, str]) -> Key:
    if name not in METRICS:
        raise KeyError(f"unknown metric {name}")
    wanted = METRICS[name][2]
    if set(labels) != set(wanted):
        raise KeyError(f"{name} takes labels {wanted}, not {tuple(labels)}")
    return name, tuple((k, "" if labels[k] is None else str(labels[k])) for k in wanted)


def read_textfile(path: Path) -> dict[Key, float]:
    """The samples of a textfile this module wrote (counters by their name without _total)."""
    values: dict[Key, float] = {}
    if not path.is_file():
        return values
    for family in text_string_to_metric_families(path.read_text()):
        if family.name not in METRICS:
            continue
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            wanted = METRICS[family.name][2]
            values[(family.name, tuple((k, sample.labels.get(k, "")) for k in wanted))] = sample.value
    return values


class TextfileValues:
    """A collector of fixed values (what a textfile holds)."""

    def __init__(self, values: dict[Key, float]):
        self.values = values

    def collect(self) -> Iterator[Metric]:
        by_name: dict[str, list] = defaultdict(list)
        for (name, labels), value in sorted(self.values.items()):
            by_name[name].append((labels, value))
        for name, samples in by_name.items():
            kind, help_text, label_names = METRICS[name]
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=label_names)
            for labels, value in samples:
                family.add_metric([v for _, v in labels], value)
            yield family


def record_publish(settings: Settings, *, kind: str, org: str, rows: int, bytes_sent: int, bytes_read: int,
                   rejected_by_reason: dict[str, int], seconds: float) -> None:
    u = Update()
    u.add("ioxhub_publish_rows", rows, org=org, kind=kind)
    u.add("ioxhub_publish_bytes", bytes_sent, org=org, kind=kind)
    u.add("ioxhub_publish_bytes_read", bytes_read, org=org, kind=kind)
    for reason, n in rejected_by_reason.items():
        u.add("ioxhub_publish_rows_rejected", n, org=org, kind=kind, reason=reason)
    u.run(f"publish_{kind}", seconds)
    u.commit(settings, f"publish_{kind}")


def record_ingest(settings: Settings, summary: dict, *, consumed_by_org: dict[str, int],
                  applied_by_org: dict[str, int], quarantined: Iterable[tuple[str, str, int]],
                  harmonized: Iterable[tuple[str, str, int]], refused: Iterable[tuple[str, str, int]]) -> None:
    """`quarantined`: (org, reason, events); `harmonized`: (org, dataset, observations); `refused`: (org, reason,
    observations)."""
    kind = summary["kind"]
    u = Update()
    for outcome, n in summary["events"].items():
        u.add("ioxhub_ingest_events", n, kind=kind, outcome=outcome)
    for org, n in consumed_by_org.items():
        u.add("ioxhub_ingest_org_events", n, kind=kind, org=org, outcome="consumed")
    for org, n in applied_by_org.items():
        u.add("ioxhub_ingest_org_events", n, kind=kind, org=org, outcome="applied")
    by_org: dict[str, int] = defaultdict(int)
    for org, reason, n in quarantined:
        u.add("ioxhub_ingest_events_quarantined", n, kind=kind, org=org, reason=reason)
        by_org[org] += n
    for org, n in by_org.items():
        u.add("ioxhub_ingest_org_events", n, kind=kind, org=org, outcome="quarantined")
    for org, dataset, n in harmonized:
        u.add("ioxhub_observations_harmonized", n, org=org, dataset=dataset)
    for org, reason, n in refused:
        u.add("ioxhub_observations_refused", n, org=org, reason=reason)
    u.run(f"ingest_{kind}", summary.get("seconds", 0.0))
    u.commit(settings, f"ingest_{kind}")


def record_derive(settings: Settings, summary: dict) -> None:
    u = Update()
    for name, written in summary.get("datasets", {}).items():
        u.set("ioxhub_curated_rows", written["rows"], dataset=name)
    u.run("derive_evidence", summary.get("seconds", 0.0))
    u.commit(settings, "derive_evidence")


def record_failure(settings: Settings, job: str, seconds: float) -> None:
    u = Update()
    u.run(job, seconds, ok=False)
    u.commit(settings, job)
