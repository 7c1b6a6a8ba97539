"""The sample feeds through the hub without Airflow (the same functions its DAGs call), for tests that
need the demo's data: `feed_samples(settings, directory, derivations=1)`."""
from __future__ import annotations

from pathlib import Path

from app.demo import ensure_keys, publish_samples
from consumers.evidence import derive_evidence
from ioxhub.ingest.run import ingest
from ioxhub.settings import Settings

ORGS = ["WCO", "WHO", "ICAO", "WTO", "UPU", "IMO", "ICC"]


def feed_samples(settings: Settings, directory: Path, derivations: int = 1) -> Settings:
    """Publish the sample feeds, ingest datasets and policies, derive the evidence `derivations` times
    (each a new snapshot of every curated table)."""
    ensure_keys(ORGS, settings)
    publish_samples(directory, settings)
    for kind in ("datasets", "policies"):
        ingest(kind, idle_ms=1500)
    for _ in range(derivations):
        derive_evidence(settings, force=True)
    return settings
