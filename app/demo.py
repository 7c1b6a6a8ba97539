"""`ioxhub demo`, the main job: the whole hub end to end on the local stack.

stack up (Airflow standalone starting in the background meanwhile) -> provision -> signing keys ->
sample feeds -> publish them all (bad rows included) -> wait, through Airflow's REST API, for the ingest
runs the arriving records start (event triggers, no manual trigger) and for the derivation run their
new data starts -> summary of this demo's runs, headline impact estimates and a report -> the web portal
started (`ioxhub serve`) with an analyst key `demo-analyst` to sign in with. The stack, Airflow and the
portal included, stay up (`ioxhub stack down` stops it). Every step is idempotent, so running it again
is safe and doubles nothing: releases and policy updates have deterministic ids (ingest counts them as
duplicates), and no derivation run comes when no ingest run applied anything.
"""
from __future__ import annotations

import datetime as dt
import time
import urllib.error
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kafka.errors import KafkaError

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings, reset_settings_cache

INGEST_DAGS = {"datasets": "ingest_datasets", "policies": "ingest_policies"}
DERIVE_DAG = "derive_evidence"
REPORT_INSTRUMENT = "WCO-FOS-ECOM"
DEMO_KEY_NAME = "demo-analyst"
WAIT_TIMEOUT_S = 900.0       # Airflow's start (~25 s alone), the runs, their retries on a busy machine
ACTIVE = ("queued", "running")


class DemoError(IoxhubError):
    """A step of the demo failed; the message names the step and where its log is."""


@dataclass
class DemoResult:
    published: list[dict] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)        # DAG id -> the counts of this demo's runs, summed
    run_counts: dict[str, int] = field(default_factory=dict)   # DAG id -> how many runs this demo waited for
    datasets: list[dict] = field(default_factory=list)
    impact: list[dict] = field(default_factory=list)
    report: Path | None = None
    portal_url: str | None = None
    portal_key: str | None = None     # the analyst key `demo-analyst` (shown once; a new one each run)
    seconds: dict[str, float] = field(default_factory=dict)


def _step(result: DemoResult, name: str, started: float) -> None:
    result.seconds[name] = round(time.monotonic() - started, 1)


def ensure_keys(orgs: list[str], settings: Settings) -> list[str]:
    """A signing key for every org that has none yet on this machine; returns the orgs given a new key."""
    from ioxhub.keys import generate_org_key, load_signer
    from ioxhub.signing import KeyFileError

    created = []
    for org in orgs:
        try:
            load_signer(org, settings=settings)
        except KeyFileError:
            generate_org_key(org, settings=settings)
            created.append(org)
    return created


def publish_samples(out_dir: Path, settings: Settings) -> list[dict]:
    """Generate the sample feeds (deterministic) and publish every file; returns one summary per file."""
    from producers import publish_dataset, publish_policy
    from producers.mapping import ColumnMapping
    from producers.samples import generate

    manifest = generate(out_dir)
    summaries = []
    for f in manifest.files:
        path = out_dir / f.path
        if f.kind == "dataset":
            s = publish_dataset(f.org, f.dataset_id, [path], ColumnMapping.from_file(out_dir / f.mapping),
                                rejects_path=path.with_name(path.name + ".rejects.csv"), settings=settings,
                                progress=False)
        else:
            s = publish_policy(f.org, path, settings=settings)
        summaries.append({"file": f.path, "org": f.org, "release_id": s.release_id, "rows_read": s.rows_read,
                          "rows_sent": s.rows_sent, "rows_rejected": s.rows_rejected, "chunks": s.chunks,
                          "rejected_by_reason": s.rejected_by_reason, "event_ids": s.event_ids})
    return summaries


class RunWatch:
    """What the demo waits for, read from Kafka (is anything left to ingest) and Airflow's REST API (the
    runs since `since`); `ingest_done()` and `derive_done()` say whether those runs are over, and raise
    DemoError for a failed run."""

    def __init__(self, settings: Settings, since: dt.datetime):
        from ioxhub.ingest.watch import OffsetWatch
        from ioxhub.stack.airflow import Api

        self.settings, self.since = settings, since.isoformat()
        self.api = Api(settings)
        self.watches = {kind: OffsetWatch(settings, kind) for kind in INGEST_DAGS}

    def close(self) -> None:
        for watch in self.watches.values():
            watch.close()

    def runs(self, dag_id: str) -> list[dict]:
        try:
            return self.api.get(f"dags/{dag_id}/dagRuns", run_after_gte=self.since, limit=100)["dag_runs"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:                      # not parsed yet
                return []
            raise

    def _check(self, dag_id: str, runs: list[dict]) -> None:
        for run in runs:
            if run["state"] == "failed":
                logs = self.settings.resolved_airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run['dag_run_id']}"
                raise DemoError(f"DAG {dag_id} run {run['dag_run_id']} failed: see {logs}")

    def ingest_done(self) -> bool:
        """Nothing left on the topics and no ingest run queued or running."""
        for kind, dag_id in INGEST_DAGS.items():
            runs = self.runs(dag_id)
            self._check(dag_id, runs)
            if not runs and (errors := self.api.get("importErrors", limit=1)["import_errors"]):
                raise DemoError(f"Airflow cannot import {errors[0]['filename']}: "
                                f"{errors[0]['stack_trace'].strip().splitlines()[-1]}")
            if any(r["state"] in ACTIVE for r in runs) or self.watches[kind].snapshot().lag():
                return False
        return True

    def derive_done(self) -> bool:
        """A derivation run since `since` succeeded, none is queued or running, and no asset event waits."""
        runs = self.runs(DERIVE_DAG)
        self._check(DERIVE_DAG, runs)
        if not runs or any(r["state"] in ACTIVE for r in runs):
            return False
        try:
            waiting = self.api.get(f"dags/{DERIVE_DAG}/assets/queuedEvents")["total_entries"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            waiting = 0
        return not waiting


def wait_for_runs(settings: Settings, airflow: Future, since: dt.datetime, progress=print,
                  timeout_s: float = WAIT_TIMEOUT_S) -> dict[str, list[dict]]:
    """Wait for the event-triggered ingest runs, then (when they applied something) the derivation run;
    returns the catalog records of this demo's runs by DAG."""
    from ioxhub.catalog import Catalog
    from ioxhub.stack.process import log_path
    from ioxhub.storage import ObjectStore

    deadline = time.monotonic() + timeout_s
    try:
        airflow.result(timeout=timeout_s)
    except Exception as exc:
        raise DemoError(f"Airflow did not start: {exc} (see {log_path(settings.data_dir, 'airflow')})") from None
    catalog = Catalog(ObjectStore(settings))
    stamp = since.isoformat(timespec="seconds")
    watch = RunWatch(settings, since)
    try:
        progress("waiting for the ingest runs the published events trigger...")
        _wait(watch.ingest_done, deadline, "ingest_datasets / ingest_policies", settings)
        runs = {dag_id: catalog.runs(dag_id, stamp) for dag_id in INGEST_DAGS.values()}
        if any(r["events"]["applied"] for rs in runs.values() for r in rs):
            progress(f"waiting for the {DERIVE_DAG} run the new harmonized data triggers...")
            _wait(watch.derive_done, deadline, DERIVE_DAG, settings)
        else:
            progress(f"no new harmonized data: no {DERIVE_DAG} run to wait for")
        runs[DERIVE_DAG] = catalog.runs(DERIVE_DAG, stamp)
        return runs
    finally:
        watch.close()


def _wait(done, deadline: float, what: str, settings: Settings) -> None:
    """Poll `done` every second until it says yes; a slow or unreachable API (a loaded machine) or broker
    is retried until the deadline, then named in the error."""
    problem = ""
    while True:
        try:
            if done():
                return
        except (OSError, KafkaError) as exc:     # urllib's URLError, timeouts, refused connections
            problem = f"; last error: {type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            logs = settings.resolved_airflow_home / "logs"
            raise DemoError(f"timed out waiting for DAG {what} (task logs under {logs}){problem}")
        time.sleep(1.0)


def run_demo(settings: Settings | None = None, *, progress=print) -> DemoResult:
    from ioxhub.catalog import add_counts
    from consumers.access import list_datasets, pull
    from ioxhub.orgs import load_orgs
    from ioxhub.provision.apply import provision
    from ioxhub.stack import local

    result = DemoResult()
    settings = settings or get_settings()

    t = time.monotonic()
    progress("starting the local stack (SeaweedFS S3 + tansu Kafka, durable)...")
    up = local.up(settings)
    for note in up.notes:  # a leftover server of this data directory, stopped
        progress(note)
    reset_settings_cache()
    settings = up.settings
    _step(result, "stack up", t)

    progress("starting Airflow (scheduler, triggerer, ...) in the background...")
    with ThreadPoolExecutor(1) as pool:
        airflow = pool.submit(local.up, settings, with_airflow=True)
        t = time.monotonic()
        progress("provisioning topics, bucket and identities from infra/orgs.yaml...")
        provision(settings)
        spec = load_orgs(settings.orgs_file)
        ensure_keys([o.id for o in spec.orgs], settings)
        _step(result, "provision", t)

        t = time.monotonic()
        since = dt.datetime.now(dt.timezone.utc)
        progress("generating and publishing the sample feeds of the partner IOs...")
        result.published = publish_samples(settings.data_dir / "samples", settings)
        _step(result, "publish", t)

        t = time.monotonic()
        runs = wait_for_runs(settings, airflow, since, progress)
        _step(result, "runs", t)
    result.runs = {dag_id: add_counts(docs) for dag_id, docs in runs.items() if docs}
    result.run_counts = {dag_id: len(docs) for dag_id, docs in runs.items()}

    result.datasets = list_datasets(settings)
    names = {d["name"] for d in result.datasets}
    if "impact_did" in names:
        did = pull("impact_did", where=["primary=True"], settings=settings)
        result.impact = did.to_dict("records")
        t = time.monotonic()
        result.report = write_report_for(REPORT_INSTRUMENT, settings.data_dir / "reports" / f"{REPORT_INSTRUMENT}.html",
                                         settings)
        _step(result, "report", t)

    t = time.monotonic()
    progress("starting the web portal (ioxhub serve), analyst key demo-analyst...")
    result.portal_url, result.portal_key = start_portal(settings)
    _step(result, "portal", t)
    return result


def start_portal(settings: Settings) -> tuple[str, str]:
    """The web server started if not running (read-only storage identity), and a fresh analyst key
    `demo-analyst` (an earlier one of that name is revoked): (the portal's address, the key)."""
    from ioxhub.apikeys import create_key, list_keys, revoke_key
    from ioxhub.stack import local, web
    from ioxhub.storage import ObjectStore

    local.up(settings, with_web=True)
    store = ObjectStore(settings)         # the hub's identity writes catalog/apikeys/ (the server only reads it)
    if any(k["name"] == DEMO_KEY_NAME and not k["revoked_at"] for k in list_keys(store)):
        revoke_key(store, DEMO_KEY_NAME)
    key, _ = create_key(store, DEMO_KEY_NAME, "analyst")
    return web.url(settings), key


def write_report_for(instrument_id: str, out: Path, settings: Settings | None = None) -> Path:
    """The report of one instrument, from the curated datasets only (what an analyst may read)."""
    from consumers.access import pull
    from consumers.derive.impact import Impact
    from consumers.report import write_report

    where = [f"instrument_id={instrument_id}"]
    impact = Impact(*(pull(name, where=where, settings=settings)
                      for name in ("impact_country_changes", "impact_did", "impact_event_study")))
    if impact.did.empty:
        known = sorted(set(pull("impact_did", columns=["instrument_id"], settings=settings)["instrument_id"]))
        raise DemoError(f"report: no impact estimate for instrument {instrument_id!r} "
                        f"(known instruments: {', '.join(known) or 'none yet'})")
    indicators = sorted(set(impact.did["indicator"]))
    panel = pull("indicator_panel_annual", where=[f"indicator={i}" for i in indicators], settings=settings)
    adoptions = pull("instrument_adoptions", where=where, settings=settings)
    out.parent.mkdir(parents=True, exist_ok=True)
    return write_report(instrument_id, panel, impact, adoptions, out)
