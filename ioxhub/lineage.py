"""OpenLineage run events of the hub's jobs (publish, ingest, derive), and where they are sent.

`LineageRun(job_name, settings)`: `.start(inputs, outputs)`, `.complete(inputs, outputs)`, `.fail(exc, inputs)`.
Datasets: `file_dataset`, `kafka_dataset`, `s3_dataset`; facets: `schema_facet`, `output_statistics`,
`refused_facet`, `releases_facet`, `version_facet`. `parent_run(...)` (context manager) gives the runs inside
a parent run facet (the Airflow task). `events_file(settings)`, `read_events(path)`; `safely`: a decorator for
the jobs' lineage and metrics calls, which never raise into the job.
Emission never raises: a failing transport is logged once and then left off for the process.
Naming, facets, transports, why events are plain dicts: docs/lineage-and-metrics.md.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import traceback
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

from ioxhub.settings import Settings, get_settings

log = logging.getLogger("ioxhub.lineage")

PRODUCER = "https://github.com/ioxhub/ioxhub"
JOB_NAMESPACE = "ioxhub"
SPEC = "https://openlineage.io/spec"
RUN_EVENT_URL = f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_URLS = {
    "schema": f"{SPEC}/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "outputStatistics": f"{SPEC}/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
    "version": f"{SPEC}/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
    "parent": f"{SPEC}/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "errorMessage": f"{SPEC}/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "jobType": f"{SPEC}/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
}
# The hub's own facets: JSON schemas in docs/lineage/ (a custom facet names its schema, per the spec).
CUSTOM_FACET_BASE = "https://github.com/ioxhub/ioxhub/blob/main/docs/lineage"
RELEASES_FACET = "ioxhub_releases"
REFUSED_FACET = "ioxhub_refused"
FACET_URLS[RELEASES_FACET] = f"{CUSTOM_FACET_BASE}/ReleasesDatasetFacet.json"
FACET_URLS[REFUSED_FACET] = f"{CUSTOM_FACET_BASE}/RefusedDatasetFacet.json"

_parent: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ioxhub_lineage_parent", default=None)


# ---------------------------------------------------------------------------------------- naming
def file_dataset(path: str | Path, **facets: dict) -> dict:
    """A partner file: namespace `file://<host>`, name its absolute path."""
    return dataset(f"file://{socket.gethostname()}", str(Path(path).resolve()), **facets)


def kafka_dataset(settings: Settings, topic: str, **facets: dict) -> dict:
    """A Kafka topic: namespace `kafka://<first bootstrap host:port>`, name the topic."""
    return dataset(f"kafka://{settings.kafka_bootstrap.split(',')[0].strip()}", topic, **facets)


def s3_dataset(settings: Settings, path: str, **facets: dict) -> dict:
    """An object-storage dataset: namespace `s3://<bucket>`, name its path (zone/..., no trailing slash)."""
    return dataset(f"s3://{settings.bucket}", path.rstrip("/"), **facets)


def dataset(namespace: str, name: str, **facets: dict) -> dict:
    """A dataset; `outputStatistics` goes to the output facets, every other facet to the dataset's."""
    out: dict[str, Any] = {"namespace": namespace, "name": name, "facets": {}}
    for key, value in facets.items():
        if value is None:
            continue
        if key == "outputStatistics":
            out.setdefault("outputFacets", {})[key] = value
        else:
            out["facets"][key] = value
    return out


# ---------------------------------------------------------------------------------------- facets
def _facet(kind: str, **fields: Any) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": FACET_URLS[kind], **fields}


def schema_facet(columns: list[tuple[str, str]]) -> dict:
    """The columns of a dataset, (name, type) pairs (an empty type is left out)."""
    return _facet("schema", fields=[{"name": n, **({"type": t} if t else {})} for n, t in columns])


def output_statistics(rows: int, size: int | None = None, files: int | None = None) -> dict:
    stats: dict[str, Any] = {"rowCount": int(rows)}
    if size is not None:
        stats["size"] = int(size)
    if files is not None:
        stats["fileCount"] = int(files)
    return _facet("outputStatistics", **stats)


def version_facet(version: Any) -> dict:
    return _facet("version", datasetVersion=str(version))


def releases_facet(releases: list[dict]) -> dict:
    """The dataset releases a run read or wrote: [{org, datasetId, releaseId}, ...]."""
    return _facet(RELEASES_FACET, releases=releases)


def release_ref(org: str, dataset_id: str, release_id: str) -> dict:
    return {"org": org, "datasetId": dataset_id, "releaseId": release_id}


def refused_facet(by_reason: dict[str, int], unit: str) -> dict:
    """Data quality: what was refused, by reason; `unit` is "rows", "events" or "observations"."""
    return _facet(REFUSED_FACET, unit=unit, total=int(sum(by_reason.values())),
                  byReason={str(k): int(v) for k, v in sorted(by_reason.items())})


def parent_facet(namespace: str, name: str, run_id: str, root: dict | None = None) -> dict:
    facet = _facet("parent", run={"runId": run_id}, job={"namespace": namespace, "name": name})
    if root:
        facet["root"] = root
    return facet


@contextlib.contextmanager
def parent_run(namespace: str, name: str, run_id: str, root: dict | None = None) -> Iterator[None]:
    """Runs started inside carry a parent run facet naming this run (e.g. the Airflow task run)."""
    token = _parent.set(parent_facet(namespace, name, run_id, root))
    try:
        yield
    finally:
        _parent.reset(token)


# ---------------------------------------------------------------------------------------- run events
def uuid7() -> str:
    """A UUIDv7 (time-ordered, as the spec recommends for run ids); Python 3.11 has no uuid.uuid7."""
    value = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80 | int.from_bytes(secrets.token_bytes(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)                 # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)                 # RFC 4122 variant
    return str(uuid.UUID(int=value))


def run_event(event_type: str, run_id: str, job_name: str, inputs: list[dict], outputs: list[dict],
              run_facets: dict | None = None, event_time: dt.datetime | None = None) -> dict:
    """One OpenLineage RunEvent (spec 2-0-2) as a JSON-ready dict."""
    when = event_time or dt.datetime.now(dt.timezone.utc)
    return {
        "eventType": event_type,
        "eventTime": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_URL,
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": JOB_NAMESPACE, "name": job_name,
                "facets": {"jobType": _facet("jobType", processingType="BATCH", integration="IOXHUB", jobType="JOB")}},
        "inputs": inputs,
        "outputs": outputs,
    }


class LineageRun:
    """The START, then COMPLETE or FAIL, of one run of a hub job; every call is safe (never raises)."""

    def __init__(self, job_name: str, settings: Settings | None = None):
        self.job_name = job_name
        self.settings = settings or get_settings()
        self.run_id = uuid7()
        self.parent = _parent.get()

    def _facets(self, extra: dict | None = None) -> dict:
        facets = {"parent": self.parent} if self.parent else {}
        return {**facets, **(extra or {})}

    def start(self, inputs: Sequence[dict] = (), outputs: Sequence[dict] = ()) -> None:
        emit(lambda: run_event("START", self.run_id, self.job_name, list(inputs), list(outputs), self._facets()),
             self.settings)

    def complete(self, inputs: Sequence[dict] = (), outputs: Sequence[dict] = ()) -> None:
        emit(lambda: run_event("COMPLETE", self.run_id, self.job_name, list(inputs), list(outputs), self._facets()),
             self.settings)

    def fail(self, exc: BaseException, inputs: Sequence[dict] = ()) -> None:
        def build() -> dict:
            error = _facet("errorMessage", message=f"{type(exc).__name__}: {exc}"[:2000], programmingLanguage="python",
                           stackTrace="".join(traceback.format_exception(exc))[-8000:])
            return run_event("FAIL", self.run_id, self.job_name, list(inputs), [], self._facets({"errorMessage": error}))
        emit(build, self.settings)


def safely(method):
    """Decorate a method of a run's lineage or metrics: an exception in it (a bug in building an event) is
    logged, never raised into the job it describes."""
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            log.warning("lineage/metrics: %s failed (%s: %s); the job goes on", method.__qualname__,
                        type(exc).__name__, exc)
    return wrapper


# ---------------------------------------------------------------------------------------- transports
_lock = threading.Lock()
_broken: set[str] = set()        # transports that failed once in this process: off from then on
_http: dict[str, Any] = {}


def events_file(settings: Settings) -> Path:
    """The file transport's JSON lines (one event a line)."""
    return settings.data_dir / "lineage" / "events.jsonl"


def emit(build, settings: Settings) -> None:
    """Build (a callable, so nothing is built when lineage is off) and send one event; never raises."""
    transport = settings.lineage_transport
    if transport == "none" or transport in _broken:
        return
    try:
        event = build()
        if transport == "file":
            path = events_file(settings)
            path.parent.mkdir(parents=True, exist_ok=True)
            line = (json.dumps(event, separators=(",", ":"), default=str) + "\n").encode()
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)      # one write of an O_APPEND file: lines of parallel processes never mix
            finally:
                os.close(fd)
        elif transport == "console":
            sys.stderr.write(json.dumps(event, default=str) + "\n")
        elif transport == "http":
            _http_transport(settings).emit(event)
    except Exception as exc:   # lineage must never break the job it describes
        with _lock:
            first = transport not in _broken
            _broken.add(transport)
        if first:
            log.warning("lineage: the %s transport failed (%s: %s); no more lineage events from this process",
                        transport, type(exc).__name__, exc)


def _http_transport(settings: Settings):
    """openlineage-python's HTTP transport (imported only here: the client package takes ~0.9 s to import)."""
    url = settings.lineage_url
    if not url:
        raise ValueError("IOXHUB_LINEAGE_URL is not set")
    with _lock:
        if url not in _http:
            from openlineage.client.transport.http import HttpConfig, HttpTransport
            _http[url] = HttpTransport(HttpConfig.from_dict({"url": url, "timeout": 2.0, "retry": {"total": 1}}))
        return _http[url]


def reset_transports() -> None:
    """Forget failed transports (tests)."""
    with _lock:
        _broken.clear()
        _http.clear()


def read_events(path: Path) -> list[dict]:
    """The events of a file transport; a line that is not JSON is skipped with a warning naming it."""
    events = []
    if not path.is_file():
        return events
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                events.append(json.loads(line))
            except ValueError:
                log.warning("%s line %d: not a JSON lineage event, skipped", path, number)
    return events


def provider_config(settings: Settings) -> dict[str, str]:
    """AIRFLOW__OPENLINEAGE__* variables sending the Airflow provider's events to the hub's transport."""
    transport = settings.lineage_transport
    if transport == "none":
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    config: dict[str, Any] = {"type": transport}
    if transport == "file":   # the provider's file transport appends to the same file but does not create its folder
        events_file(settings).parent.mkdir(parents=True, exist_ok=True)
        config.update(log_file_path=str(events_file(settings)), append=True)
    elif transport == "http":
        config.update(url=settings.lineage_url or "", timeout=2.0)
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(config), "AIRFLOW__OPENLINEAGE__NAMESPACE": "ioxhub-airflow"}
