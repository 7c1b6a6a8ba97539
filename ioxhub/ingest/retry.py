"""`ioxhub quarantine retry`: resubmit quarantined events, or a whole refused release, through the ingest.

`retry(letter_ids, release=(org, dataset, release_id))` runs the letters' events as received through
`ingest.run.handle` and the handler's `finish` under the ingest lease of their kind, marks each letter with
its outcome in quarantine/retries/ (letters are never deleted) and records run `quarantine_retry`.
Method: docs/operations.md, "Fixing rejects".
"""
from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from ioxhub.catalog import Catalog
from ioxhub.contracts.registry import get_registry
from ioxhub.errors import IoxhubError
from ioxhub.ingest.datasets import DatasetIngest
from ioxhub.ingest.letters import find_letters, payload_release, read_letters, retries
from ioxhub.ingest.lease import holding
from ioxhub.ingest.markers import release_applied
from ioxhub.ingest.policies import PolicyIngest
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.replay import RawRecord
from ioxhub.ingest.run import handle, reconcile, run_summary
from ioxhub.keys import load_trust_store
from ioxhub.logs import with_context
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import ObjectStore, quarantine_retry_key

log = logging.getLogger("ioxhub.retry")
DAG_ID = "quarantine_retry"
DONE = ("applied", "duplicate")          # outcomes after which a letter is not retried again


class RetryError(IoxhubError):
    """Nothing to retry, or a letter that cannot be retried (the message says why and what to do)."""


def retry(letter_ids: list[str] = (), release: tuple[str, str, str] | None = None, *,
          settings: Settings | None = None, run_id: str | None = None) -> dict:
    """Resubmit the events of the given letters (or of every letter of `release`); see the module doc."""
    settings = settings or get_settings()
    started = time.monotonic()
    store = ObjectStore(settings)
    registry = get_registry(settings.schemas_dir)
    letters = _chosen(store, registry, list(letter_ids), release)
    run_id = run_id or f"retry-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for letter in letters:
        by_kind["policies" if letter["topic"].endswith(".policies") else "datasets"].append(letter)
    spec = load_orgs(settings.orgs_file)
    trust = load_trust_store(settings, spec) if settings.require_signatures else None
    catalog = Catalog(store)
    result = {"kind": "quarantine_retry", "run_id": run_id, "letters": len(letters), "outcomes": {}, "by_letter": [],
              "runs": {}}
    for kind, chosen in sorted(by_kind.items()):
        with holding(store, kind, f"quarantine retry {run_id}", settings.ingest_lease_seconds, settings.lock_wait_seconds):
            summary, outcomes = _resubmit(kind, chosen, store, catalog, settings, trust, registry, run_id)
        result["runs"][kind] = summary
        for letter in chosen:
            outcome = outcomes[(letter["topic"], letter["partition"], letter["offset"])]
            _mark(store, letter, outcome, run_id)
            result["by_letter"].append({"id": letter["id"], **outcome})
            result["outcomes"][outcome["outcome"]] = result["outcomes"].get(outcome["outcome"], 0) + 1
    result["seconds"] = round(time.monotonic() - started, 3)
    catalog.record_run(DAG_ID, run_id, {k: v for k, v in result.items() if k != "run_id"})
    with_context(log, run_id=run_id).info("quarantine retry: %s", result["outcomes"])
    return result


def _chosen(store: ObjectStore, registry, letter_ids: list[str], release: tuple[str, str, str] | None) -> list[dict]:
    """The letters to retry: one record each (its first letter), only whole events kept as received."""
    if not letter_ids and release is None:
        raise RetryError("quarantine retry: name letter ids (see `ioxhub quarantine list`) or --release ORG/DATASET/RELEASE")
    letters = [l for text in letter_ids for l in find_letters(store, text)]
    if release is not None:
        org, dataset, release_id = release
        of_release = [l for l in read_letters(store, org=org)
                      if (r := payload_release(l, registry)) and (r["dataset"], r["release_id"]) == (dataset, release_id)]
        if not of_release:
            raise RetryError(f"quarantine retry: no quarantined event of release {release_id} of {org}/{dataset}")
        letters += of_release
    not_events = [l["id"] for l in letters if not l["retryable"]]
    if not_events and len(not_events) == len(letters):
        raise RetryError(f"quarantine retry: {', '.join(not_events[:5])}: refused observations of an applied release, "
                         "not a whole event: fix the rule, then `ioxhub replay --org ORG --dataset DATASET`")
    unique: dict[tuple, dict] = {}
    for letter in letters:
        if letter["retryable"]:
            unique.setdefault((letter["topic"], letter["partition"], letter["offset"]), letter)
    done = [l["id"] for l in unique.values() if any(a["outcome"] in DONE for a in l.get("retries", []))]
    if done and len(done) == len(unique):
        raise RetryError(f"quarantine retry: {', '.join(done[:5])} already retried with success (see `ioxhub quarantine show`)")
    return [l for l in unique.values() if l["id"] not in done]


def _resubmit(kind: str, letters: list[dict], store: ObjectStore, catalog: Catalog, settings: Settings, trust,
              registry, run_id: str) -> tuple[dict, dict]:
    """One ingest batch of the letters' events; (its counts, the outcome of each event by coordinates)."""
    dead = DeadLetters()
    records = [RawRecord(l["topic"], l["partition"], l["offset"], int(l["quarantined_at"].timestamp() * 1000),
                         list((l.get("headers") or {}).items()), l["payload"]) for l in letters]
    applied_before = {}
    with tempfile.TemporaryDirectory(prefix="ioxhub-retry-") as tmp:
        handler = (DatasetIngest(store, catalog, dead, Path(tmp), registry) if kind == "datasets"
                   else PolicyIngest(store, catalog, dead, registry))
        for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
            handle(record, handler, dead, trust, registry)
        if kind == "datasets":
            applied_before = {key: r.applied_before for key, r in handler.releases.items()}
        handled = handler.finish()
    letters_written = dead.write(store, settings, attempt=run_id)
    handler.settle()
    summary = run_summary(kind, len(records), handled, dead, letters_written)
    reconcile(summary)
    refused = {(l["topic"], l["partition"], l["offset"]): l for ls in dead.letters.values() for l in ls
               if not l["observations"]}
    outcomes = {}
    for letter, record in zip(letters, records):
        where = (record.topic, record.partition, record.offset)
        if where in refused:
            outcomes[where] = {"outcome": "quarantined", "reason": refused[where]["reason"], "detail": refused[where]["detail"]}
        elif kind == "policies":
            outcomes[where] = {"outcome": "applied" if handled.events_applied else "duplicate"}
        else:
            r = payload_release(letter, registry)
            if r is None:
                outcomes[where] = {"outcome": "accepted"}
                continue
            key = (r["org"], r["dataset"], r["release_id"])
            state = ("duplicate" if applied_before.get(key) else
                     "applied" if release_applied(catalog, *key) else "staged")
            outcomes[where] = {"outcome": state, "release_id": r["release_id"]}
    return summary, outcomes


def _mark(store: ObjectStore, letter: dict, outcome: dict, run_id: str) -> None:
    """Add this attempt to the letter's retries (the letter stays as it was)."""
    where = (letter["topic"], letter["partition"], letter["offset"])
    attempts = retries(store, *where)
    attempts.append({"at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "run_id": run_id,
                     "reason_before": letter["reason"], **outcome})
    store.put_json(quarantine_retry_key(*where), {"topic": where[0], "partition": where[1], "offset": where[2],
                                                  "attempts": attempts})
