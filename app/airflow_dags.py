"""The hub's DAG definitions (imported by the thin files in dags/; this module imports airflow).

- `ingest_dag(kind)`: ingest_datasets / ingest_policies, started by the event trigger of the kind's org topics
  (app.airflow_triggers, which also fires after a long quiet safety interval), one run at a time, one bounded ingest run
  (ioxhub.ingest.run.ingest); the harmonized Asset is announced only when the run applied something.
- `derive_dag()`: derive_evidence, triggered by either harmonized Asset.
- `maintain_dag()`: maintain_tables, daily: `ioxhub maintain` on every table (ioxhub.maintain).
- `lineage_parent(ti)`: the hub's lineage runs inside a task name the task run as their parent.
- `run_policy()`: retries with backoff, `execution_timeout`, `dagrun_timeout` from the IOXHUB_TASK_* and
  IOXHUB_DAGRUN_TIMEOUT_MINUTES settings; failures are recorded by app.airflow_failures (docs/airflow-runs.md).
"""
from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, dag, task  # noqa: F401

from ioxhub import lineage
from app.airflow_assets import CURATED, HARMONIZED_INSTRUMENTS, HARMONIZED_OBSERVATIONS
from app.airflow_failures import on_run_failure, on_task_failure, on_task_retry
from app.airflow_triggers import topics_asset
from ioxhub.settings import Settings, get_settings

log = logging.getLogger("ioxhub.airflow")
START = datetime(2026, 1, 1)
INGEST_OUTPUTS: dict[str, Asset] = {"datasets": HARMONIZED_OBSERVATIONS, "policies": HARMONIZED_INSTRUMENTS}


def run_policy(settings: Settings | None = None) -> dict:
    """The DAG arguments every hub DAG shares: task retries, backoff, timeouts and failure callbacks."""
    s = settings or get_settings()
    return {
        "default_args": {
            "retries": s.task_retries,
            "retry_delay": timedelta(seconds=s.task_retry_delay_seconds),
            "retry_exponential_backoff": s.task_retry_backoff,
            "max_retry_delay": timedelta(seconds=s.task_max_retry_delay_seconds),
            "execution_timeout": timedelta(minutes=s.task_timeout_minutes),
            "on_retry_callback": on_task_retry,
            "on_failure_callback": on_task_failure,
        },
        "dagrun_timeout": timedelta(minutes=s.dagrun_timeout_minutes),
        "on_failure_callback": on_run_failure,
    }


def lineage_parent(ti):
    """Inside a task: the hub's lineage runs carry a parent run facet naming this task run, with the ids the
    OpenLineage provider gives it (its macros), and the DAG run as root. Without the provider: no parent."""
    try:
        from airflow.providers.openlineage.plugins import macros

        root = {"run": {"runId": macros.lineage_root_run_id(ti)},
                "job": {"namespace": macros.lineage_root_job_namespace(ti), "name": macros.lineage_root_job_name(ti)}}
        ids = macros.lineage_job_namespace(), macros.lineage_job_name(ti), macros.lineage_run_id(ti)
    except Exception as exc:   # no provider, no task instance: lineage must not fail the task
        log.warning("lineage: no parent run ids from the OpenLineage provider (%s: %s)", type(exc).__name__, exc)
        return contextlib.nullcontext()
    return lineage.parent_run(*ids, root)


def ingest_dag(kind: str) -> DAG:
    """The ingest DAG of one event kind ("datasets" or "policies"): started when records arrive on the org
    topics of the kind (and at the latest every IOXHUB_INGEST_SAFETY_INTERVAL_MINUTES, by the same trigger)."""

    @dag(
        dag_id=f"ingest_{kind}",
        schedule=topics_asset(kind),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        **run_policy(),
        tags=["ioxhub", "ingest"],
        doc_md=f"Consume the {kind} topics of every org, harmonize, write to object storage, then commit offsets.",
        params={
            "max_records": Param(None, type=["null", "integer"], description="Most Kafka records this run reads."),
            "fail_before_commit": Param(False, type="boolean",
                                        description="Fault injection (tests): fail after the writes, before the commit."),
        },
    )
    def ingest_kind():
        @task
        def ingest(params=None, run_id=None, ti=None) -> dict:
            from ioxhub.ingest.run import ingest as run_ingest
            from ioxhub.logs import configure

            configure(get_settings())

            with lineage_parent(ti):
                return run_ingest(kind, max_records=params["max_records"],
                                  fail_before_commit=params["fail_before_commit"], run_id=run_id)

        @task(outlets=[INGEST_OUTPUTS[kind]])
        def announce(summary: dict) -> None:
            from ioxhub.ingest.run import announce_or_skip

            announce_or_skip(summary)

        announce(ingest())

    return ingest_kind()


def derive_dag() -> DAG:
    """derive_evidence: runs when either harmonized Asset was updated (data-triggered, not clocked)."""

    @dag(
        dag_id="derive_evidence",
        schedule=(HARMONIZED_OBSERVATIONS | HARMONIZED_INSTRUMENTS),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        **run_policy(),
        tags=["ioxhub", "derive"],
        doc_md="Derive the evidence datasets (compendium, panels, impact, coverage) into curated/ snapshots.",
        params={"force": Param(False, type="boolean", description="Derive even when the inputs did not change.")},
    )
    def derive_evidence():
        @task(outlets=[CURATED])
        def derive(params=None, run_id=None, ti=None) -> dict:
            from airflow.sdk.exceptions import AirflowSkipException

            from consumers.evidence import derive_evidence as run_derive
            from ioxhub.logs import configure

            configure(get_settings())

            with lineage_parent(ti):
                summary = run_derive(force=params["force"], run_id=run_id)
            if not summary["changed"]:
                raise AirflowSkipException(summary["reason"])
            return summary

        derive()

    return derive_evidence()


def maintain_dag() -> DAG:
    """maintain_tables: once a day, compaction, snapshot expiry and orphan removal on every table."""

    @dag(
        dag_id="maintain_tables",
        schedule="@daily",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        **run_policy(),
        tags=["ioxhub", "maintenance"],
        doc_md="Compact small files, expire old snapshots and remove orphan files of every Iceberg table "
               "(docs/maintenance.md).",
    )
    def maintain_tables():
        @task
        def maintain(run_id=None) -> dict:
            from ioxhub.logs import configure
            from ioxhub.maintain import maintain as run_maintain

            configure(get_settings())
            summary = run_maintain(run_id=run_id)
            for table in summary["tables"]:
                if table["problem"]:
                    log.warning("maintain %s: %s", table["table"], table["problem"])
            return {k: summary[k] for k in ("totals", "problems", "seconds")}

        maintain()

    return maintain_tables()
