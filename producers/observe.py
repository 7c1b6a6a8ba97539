"""Lineage events and metrics of one publish: `PublishTrace(summary, columns, settings)` emits START,
`.complete(summary)` COMPLETE and the metrics of the run, `.fail(exc)` FAIL and a failed run.

Input: the partner files (`file://<host>`, absolute path, their columns); output: the org's topic with the
observation fields, rows and bytes sent, rows refused by reason and the release id (docs/lineage-and-metrics.md).
"""
from __future__ import annotations

import time
from typing import Sequence

from ioxhub import lineage, metrics
from ioxhub.settings import Settings
from producers.summary import PublishSummary


class PublishTrace:
    @lineage.safely
    def __init__(self, summary: PublishSummary, settings: Settings, columns: Sequence[str] = (),
                 file_columns: Sequence[Sequence[str]] = ()):
        self.settings = settings
        self.columns = list(columns)
        self.started = time.perf_counter()
        suffix = summary.dataset_id if summary.kind == "dataset" else "policies"
        self.run = lineage.LineageRun(f"publish.{summary.org}.{suffix}", settings)
        self.inputs = [lineage.file_dataset(path, schema=lineage.schema_facet([(c, "string") for c in cols]) if cols else None)
                       for path, cols in zip(summary.files, list(file_columns) + [()] * len(summary.files))]
        self.run.start(self.inputs, [lineage.kafka_dataset(settings, summary.topic)])

    def output(self, summary: PublishSummary) -> dict:
        """The topic as this publish wrote it."""
        releases = ([lineage.release_ref(summary.org, summary.dataset_id, summary.release_id)]
                    if summary.release_id and summary.sent else [])
        return lineage.kafka_dataset(
            self.settings, summary.topic,
            schema=lineage.schema_facet([(c, "") for c in self.columns]) if self.columns else None,
            outputStatistics=lineage.output_statistics(summary.rows_sent, summary.bytes_sent),
            ioxhub_refused=lineage.refused_facet(summary.rejected_by_reason, "rows"),
            ioxhub_releases=lineage.releases_facet(releases) if releases else None)

    @lineage.safely
    def complete(self, summary: PublishSummary) -> None:
        self.run.complete(self.inputs, [self.output(summary)])
        metrics.record_publish(self.settings, kind=summary.kind, org=summary.org, rows=summary.rows_sent,
                               bytes_sent=summary.bytes_sent, bytes_read=summary.bytes_read,
                               rejected_by_reason=summary.rejected_by_reason,
                               seconds=time.perf_counter() - self.started)

    @lineage.safely
    def fail(self, kind: str, exc: BaseException) -> None:
        self.run.fail(exc, self.inputs)
        metrics.record_failure(self.settings, f"publish_{kind}", time.perf_counter() - self.started)
