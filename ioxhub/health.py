"""`ioxhub status --check`: the problems a monitor pages on, one line each; none means healthy.

`check_hub(settings, thresholds)` gathers the facts (last runs and failures from the catalog, topic lag,
releases in staging/, the signing keys of infra/orgs.yaml and the local keyring) and `find_problems(facts,
thresholds, now)` judges them (pure: unit-tested). `Thresholds.from_settings` takes the IOXHUB_CHECK_*
defaults; the CLI's flags override them. What each check means: docs/operations.md.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from kafka.errors import KafkaError

from ioxhub.catalog import Catalog
from ioxhub.errors import IoxhubError
from ioxhub.ingest.staging import staged_releases
from ioxhub.keys import load_trust_store
from ioxhub.settings import Settings, get_settings
from ioxhub.signing import iso_utc
from ioxhub.status import topic_lag
from ioxhub.storage import ObjectStore

FAILED = ("failed", "run-failed")        # outcomes of a failure document that end a run (not "retrying")


@dataclass(frozen=True)
class Thresholds:
    max_lag: int
    staging_hours: float
    quarantine_rate: float
    key_expiry_days: float

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "Thresholds":
        base = cls(settings.check_max_lag, settings.check_staging_hours, settings.check_quarantine_rate,
                   settings.check_key_expiry_days)
        return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Problem:
    check: str          # dag-failing | lag | staging | quarantine-rate | key-expiring | cannot-check
    subject: str        # the DAG, topic, release or key concerned
    message: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def find_problems(facts: dict, limits: Thresholds, now: dt.datetime) -> list[Problem]:
    """`facts`: {"runs": {dag: last run}, "failures": [...], "lag": {kind: {topic: n}}, "staging": [...],
    "keys": [{"org", "key_id", "valid_until"}]}."""
    problems: list[Problem] = []
    for failure in sorted(facts.get("failures", []), key=lambda f: f.get("failed_at", ""), reverse=True):
        dag = failure.get("dag_id") or "unknown"
        if failure.get("outcome") not in FAILED or any(p.subject == dag for p in problems):
            continue
        last = (facts.get("runs", {}).get(dag) or {}).get("finished_at") or ""
        if failure.get("failed_at", "") > last:      # ISO 8601 UTC strings sort in time order
            error = (failure.get("error") or "").strip().splitlines()
            problems.append(Problem("dag-failing", dag, f"DAG {dag} failing: run {failure.get('run_id')} "
                                    f"{failure.get('outcome')} at {failure.get('failed_at')} "
                                    f"({error[-1] if error else 'no error text'}) and no run finished since"))
    for kind, topics in sorted(facts.get("lag", {}).items()):
        for topic, lag in sorted(topics.items()):
            if lag > limits.max_lag:
                problems.append(Problem("lag", topic, f"topic {topic} lag {lag:,} records > {limits.max_lag:,} "
                                                      f"(ingest_{kind} behind)"))
    for r in facts.get("staging", []):
        if r.get("age_hours") is not None and r["age_hours"] > limits.staging_hours:
            subject = f"{r['org']}/{r['dataset']}/{r['release']}"
            problems.append(Problem("staging", subject, f"release {subject} incomplete in staging/ for "
                                                        f"{r['age_hours']} h > {limits.staging_hours:g} h"))
    for dag, run in sorted(facts.get("runs", {}).items()):
        events = run.get("events") or {}
        consumed, quarantined = events.get("consumed") or 0, events.get("quarantined") or 0
        if consumed and quarantined / consumed > limits.quarantine_rate:
            problems.append(Problem("quarantine-rate", dag, f"DAG {dag} last run {run.get('run_id')} quarantined "
                                    f"{quarantined} of {consumed} events ({quarantined / consumed:.1%} > "
                                    f"{limits.quarantine_rate:.1%})"))
    horizon = now + dt.timedelta(days=limits.key_expiry_days)
    for key in facts.get("keys", []):
        until = key.get("valid_until")
        if until is not None and now <= until <= horizon:
            problems.append(Problem("key-expiring", key["key_id"], f"signing key {key['key_id']} of {key['org']} "
                                    f"ends {iso_utc(until)} (within {limits.key_expiry_days:g} days)"))
    return problems


def hub_facts(settings: Settings) -> tuple[dict, list[Problem]]:
    """The facts, and a `cannot-check` problem for each source that could not be read (S3 or the broker
    down, a bad key file): a monitor pages on that too, in one line."""
    store = ObjectStore(settings)
    catalog = Catalog(store)
    sources = {
        "runs": catalog.last_runs, "failures": catalog.recent_failures, "lag": lambda: topic_lag(settings),
        "staging": lambda: staged_releases(store),
        "keys": lambda: [{"org": k.org, "key_id": k.key.key_id, "valid_until": k.key.valid_until}
                         for k in load_trust_store(settings)],
    }
    facts, problems = {}, []
    for name, read in sources.items():
        try:
            facts[name] = read()
        except (IoxhubError, KafkaError, OSError) as exc:
            text = str(exc) if str(exc).startswith(type(exc).__name__) else f"{type(exc).__name__}: {exc}"
            problems.append(Problem("cannot-check", name, f"cannot read the {name}: {text}"))
    return facts, problems


def check_hub(settings: Settings | None = None, limits: Thresholds | None = None,
              now: dt.datetime | None = None) -> dict:
    """{"ok": bool, "problems": [...], "thresholds": {...}} of the hub now."""
    settings = settings or get_settings()
    limits = limits or Thresholds.from_settings(settings)
    facts, unreadable = hub_facts(settings)
    problems = unreadable + find_problems(facts, limits, now or dt.datetime.now(dt.timezone.utc))
    return {"ok": not problems, "problems": [p.as_dict() for p in problems], "thresholds": dataclasses.asdict(limits)}
