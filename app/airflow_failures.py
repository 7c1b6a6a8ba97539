"""Failed tries and failed runs of the hub DAGs, recorded in the catalog so `ioxhub status` shows them.

Entry points (Airflow callbacks, set on every hub DAG by app.airflow_dags): `on_task_retry` (a try
failed, another follows), `on_task_failure` (the last try failed), `on_run_failure` (the run failed for
another reason than a failed task, e.g. `dagrun_timeout`). `failure_record` builds the document from the
callback context (pure). A callback never raises: a failure to record is logged, not added to the failure.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Mapping

log = logging.getLogger("app.airflow_failures")

ERROR_CHARS = 2000     # enough for the exception's message, bounded for the catalog document


def failure_record(context: Mapping[str, Any], outcome: str, now: dt.datetime | None = None) -> dict[str, Any]:
    """dag_id, task_id, run_id, try_number, max_tries, outcome, error and failed_at (UTC) of a callback context.

    `outcome`: "retrying" (another try follows), "failed" (tries exhausted) or "run-failed"."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    exception = context.get("exception")
    if exception is not None:
        error = f"{type(exception).__name__}: {exception}" if isinstance(exception, BaseException) else str(exception)
    else:
        error = f"run failed: {context.get('reason') or 'unknown reason'}"
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None),
        "task_id": getattr(ti, "task_id", None) if outcome != "run-failed" else None,
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "try_number": getattr(ti, "try_number", None) if outcome != "run-failed" else None,
        "max_tries": getattr(ti, "max_tries", None) if outcome != "run-failed" else None,
        "outcome": outcome,
        "error": error[:ERROR_CHARS],
        "failed_at": (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds"),
    }


def record(context: Mapping[str, Any], outcome: str) -> None:
    """Write the failure document to the catalog (never raises)."""
    try:
        from ioxhub.catalog import Catalog
        from ioxhub.storage import ObjectStore

        document = failure_record(context, outcome)
        Catalog(ObjectStore()).record_failure(document)
        log.info("recorded %s of %s/%s (run %s, try %s)", outcome, document["dag_id"], document["task_id"],
                 document["run_id"], document["try_number"])
    except Exception:      # a callback must not hide the task's own failure behind its own
        log.exception("could not record this failure (%s) in the catalog", outcome)


def on_task_retry(context: Mapping[str, Any]) -> None:
    record(context, "retrying")


def on_task_failure(context: Mapping[str, Any]) -> None:
    record(context, "failed")


def on_run_failure(context: Mapping[str, Any]) -> None:
    """DAG callback. A run failed by a task is already recorded (with its exception) by the task's
    callback; this records the other causes (reason "timed_out": the run exceeded dagrun_timeout)."""
    if context.get("reason") != "task_failure":
        record(context, "run-failed")
