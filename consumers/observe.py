"""Lineage events and metrics of one derivation: `DeriveTrace(harmonized_docs, settings)` emits START,
`.complete(summary, frames)` COMPLETE and the run's metrics, `.fail(exc)` FAIL.

Inputs: the harmonized datasets the derivation reads, at their catalog snapshot, with the release ids they
hold; outputs: the curated datasets written (`curated/<name>`, the snapshot as dataset version, columns,
rows, bytes). docs/lineage-and-metrics.md.
"""
from __future__ import annotations

import time

import pandas as pd
import pyarrow as pa

from ioxhub import lineage, metrics
from ioxhub.settings import Settings
from ioxhub.ingest.harmonized import observations_location
from ioxhub.tables import INSTRUMENTS_PREFIX, identifier_of, object_key, tables_for

READ_INSTRUMENTS = (INSTRUMENTS_PREFIX + "instrument_versions", INSTRUMENTS_PREFIX + "adoptions")
JOB = "derive_evidence"


def read_by_derivation(doc: dict) -> bool:
    """Whether the derivation reads this harmonized catalog dataset (observations, two instrument tables)."""
    return doc["name"] in READ_INSTRUMENTS if doc["name"].startswith(INSTRUMENTS_PREFIX) else \
        bool(doc.get("org") and doc.get("dataset_id"))


def input_path(settings: Settings, doc: dict) -> str:
    """The lineage name of a harmonized input, as the ingest names its outputs: the observations'
    dataset path, an instrument table's location."""
    if doc["name"].startswith(INSTRUMENTS_PREFIX):
        return object_key(tables_for(settings).location(*identifier_of(doc["name"])), settings.bucket)
    return observations_location(settings, doc["org"], doc["dataset_id"])


def input_dataset(settings: Settings, doc: dict) -> dict:
    releases = sorted({s["last_release"] for s in doc.get("snapshots", []) if s.get("last_release")})
    org, dataset_id = doc.get("org"), doc.get("dataset_id")
    refs = [lineage.release_ref(org, dataset_id, r) for r in releases] if org and dataset_id else []
    return lineage.s3_dataset(settings, input_path(settings, doc), version=lineage.version_facet(doc.get("snapshot")),
                              ioxhub_releases=lineage.releases_facet(refs) if refs else None)


class DeriveTrace:
    @lineage.safely
    def __init__(self, harmonized: list[dict], settings: Settings):
        self.settings = settings
        self.started = time.perf_counter()
        self.inputs = [input_dataset(settings, d) for d in harmonized if read_by_derivation(d)]
        self.run = lineage.LineageRun(JOB, settings)
        self.run.start(self.inputs)

    @lineage.safely
    def fail(self, exc: BaseException) -> None:
        self.run.fail(exc, self.inputs)
        metrics.record_failure(self.settings, JOB, time.perf_counter() - self.started)

    @lineage.safely
    def complete(self, summary: dict, frames: dict[str, pd.DataFrame]) -> None:
        outputs = []
        for name, written in summary.get("datasets", {}).items():
            schema = pa.Schema.from_pandas(frames[name].reset_index(drop=True), preserve_index=False)
            outputs.append(lineage.s3_dataset(
                self.settings, f"curated/{name}", version=lineage.version_facet(written["snapshot"]),
                schema=lineage.schema_facet([(f.name, str(f.type)) for f in schema]),
                outputStatistics=lineage.output_statistics(written["rows"], written.get("bytes"))))
        self.run.complete(self.inputs, outputs)
        metrics.record_derive(self.settings, summary)
