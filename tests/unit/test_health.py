"""`status --check` judges the hub's facts: one problem per failing DAG, lagging topic, old staged release,
quarantine-heavy run and key about to end; none when healthy."""
from __future__ import annotations

import datetime as dt

from ioxhub.health import Thresholds, find_problems

NOW = dt.datetime(2026, 12, 6, 3, 12, tzinfo=dt.timezone.utc)
LIMITS = Thresholds(max_lag=100, staging_hours=24, quarantine_rate=0.05, key_expiry_days=14)
HEALTHY = {
    "runs": {"ingest_datasets": {"run_id": "r2", "finished_at": "2026-12-06T03:00:00+00:00",
                                 "events": {"consumed": 100, "quarantined": 5}}},
    "failures": [{"dag_id": "ingest_datasets", "run_id": "r1", "outcome": "failed", "failed_at": "2026-12-06T02:00:00+00:00"},
                 {"dag_id": "derive_evidence", "run_id": "d1", "outcome": "retrying", "failed_at": "2026-12-06T03:05:00+00:00"}],
    "lag": {"datasets": {"ioxhub.wco.datasets": 100}},
    "staging": [{"org": "WCO", "dataset": "D", "release": "R", "age_hours": 24.0}],
    "keys": [{"org": "WCO", "key_id": "k1", "valid_until": None},
             {"org": "WHO", "key_id": "k2", "valid_until": NOW + dt.timedelta(days=15)},
             {"org": "WHO", "key_id": "old", "valid_until": NOW - dt.timedelta(days=1)}],
}


def test_healthy_at_the_limits():
    assert find_problems(HEALTHY, LIMITS, NOW) == []


def test_one_problem_per_thing_beyond_a_limit():
    facts = {
        "runs": {"ingest_datasets": {"run_id": "r2", "finished_at": "2026-12-06T01:00:00+00:00",
                                     "events": {"consumed": 100, "quarantined": 6}}},
        "failures": [{"dag_id": "ingest_datasets", "run_id": "r3", "outcome": "failed", "error": "x\nStorageError: down",
                      "failed_at": "2026-12-06T02:00:00+00:00"},
                     {"dag_id": "ingest_datasets", "run_id": "r4", "outcome": "run-failed", "failed_at": "2026-12-06T02:10:00+00:00"},
                     {"dag_id": "derive_evidence", "run_id": "d9", "outcome": "run-failed", "failed_at": "2026-12-06T02:00:00+00:00"}],
        "lag": {"datasets": {"ioxhub.wco.datasets": 101, "ioxhub.who.datasets": 3}},
        "staging": [{"org": "WCO", "dataset": "D", "release": "R", "age_hours": 24.1}],
        "keys": [{"org": "WHO", "key_id": "k2", "valid_until": NOW + dt.timedelta(days=13)}],
    }
    problems = find_problems(facts, LIMITS, NOW)
    assert [(p.check, p.subject) for p in problems] == [
        ("dag-failing", "ingest_datasets"), ("dag-failing", "derive_evidence"), ("lag", "ioxhub.wco.datasets"),
        ("staging", "WCO/D/R"), ("quarantine-rate", "ingest_datasets"), ("key-expiring", "k2")]
    assert "run r4 run-failed" in problems[0].message and "no error text" in problems[0].message
    assert "(6.0% > 5.0%)" in problems[4].message
