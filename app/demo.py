"""`ioxhub demo`, the main job: the whole hub end to end on the local stack.

stack up -> provision -> signing keys -> sample feeds -> publish them all (bad rows included) ->
the ingest and derivation DAGs through Airflow (`airflow dags test`) -> summary, headline impact
estimates and a report. Every step is idempotent, so running it again is safe and doubles nothing:
releases and policy updates have deterministic ids (ingest counts them as duplicates), and the
derivation writes no new snapshot when its inputs did not change.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings, reset_settings_cache

DAGS = ("ingest_datasets", "ingest_policies", "derive_evidence")
REPORT_INSTRUMENT = "WCO-FOS-ECOM"


class DemoError(IoxhubError):
    """A step of the demo failed; the message names the step and where its log is."""


@dataclass
class DemoResult:
    published: list[dict] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)
    datasets: list[dict] = field(default_factory=list)
    impact: list[dict] = field(default_factory=list)
    report: Path | None = None
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


def run_dag(dag_id: str, settings: Settings) -> None:
    """One DAG run through Airflow (`airflow dags test`), its output in <data_dir>/logs/demo-<dag>.log."""
    from ioxhub.stack.airflow import airflow_env

    log = settings.data_dir / "logs" / f"demo-{dag_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", dag_id], env=airflow_env(settings),
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=900)
    if done.returncode != 0:
        raise DemoError(f"DAG {dag_id} failed (exit {done.returncode}): see {log}")
    if "state=failed" in log.read_text(errors="replace"):
        raise DemoError(f"DAG {dag_id} had a failed task: see {log}")


def migrate_airflow(settings: Settings) -> None:
    from ioxhub.stack.airflow import airflow_env

    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=airflow_env(settings),
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
    if done.returncode != 0:
        raise DemoError(f"airflow db migrate failed: {done.stderr[-2000:]}")


def run_demo(settings: Settings | None = None, *, progress=print) -> DemoResult:
    from ioxhub.catalog import Catalog
    from consumers.access import list_datasets, pull
    from ioxhub.orgs import load_orgs
    from ioxhub.provision.apply import provision
    from ioxhub.stack import local
    from ioxhub.storage import ObjectStore

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

    t = time.monotonic()
    progress("provisioning topics, bucket and identities from infra/orgs.yaml...")
    provision(settings)
    spec = load_orgs(settings.orgs_file)
    ensure_keys([o.id for o in spec.orgs], settings)
    migrate_airflow(settings)
    _step(result, "provision", t)

    t = time.monotonic()
    progress("generating and publishing the sample feeds of the partner IOs...")
    result.published = publish_samples(settings.data_dir / "samples", settings)
    _step(result, "publish", t)

    for dag_id in DAGS:
        t = time.monotonic()
        progress(f"running DAG {dag_id} through Airflow...")
        run_dag(dag_id, settings)
        _step(result, dag_id, t)

    store = ObjectStore(settings)
    result.runs = Catalog(store).last_runs()
    result.datasets = list_datasets(settings)
    names = {d["name"] for d in result.datasets}
    if "impact_did" in names:
        did = pull("impact_did", where=["primary=True"], settings=settings)
        result.impact = did.to_dict("records")
        t = time.monotonic()
        result.report = write_report_for(REPORT_INSTRUMENT, settings.data_dir / "reports" / f"{REPORT_INSTRUMENT}.html",
                                         settings)
        _step(result, "report", t)
    return result


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
