"""Lineage events and metrics of one ingest run: `IngestTrace(kind, topics, settings)` emits START;
`.complete(summary, handler, dead, consumed_by_topic)` COMPLETE and the run's metrics; `.fail(exc)` FAIL.

Inputs: the org topics; outputs: the harmonized datasets the run changed (with the releases applied and
the observations harmonized) and the quarantine/ paths it wrote (refused counts by reason). Built from what
the run already counted: no extra request (docs/lineage-and-metrics.md).
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict

from ioxhub import lineage, metrics
from ioxhub.ingest.datasets import DatasetIngest
from ioxhub.ingest.harmonized import observations_location
from ioxhub.ingest.observations import HARMONIZED_SCHEMA
from ioxhub.ingest.policies import ADOPTIONS_SCHEMA, VERSIONS_SCHEMA, PolicyIngest
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.names import org_of_topic
from ioxhub.settings import Settings
from ioxhub.storage import quarantine_rows_key
from ioxhub.tables import HARMONIZED, object_key, tables_for


def _columns(schema) -> list[tuple[str, str]]:
    return [(f.name, str(f.type)) for f in schema]


class IngestTrace:
    @lineage.safely
    def __init__(self, kind: str, topics: list[str], settings: Settings):
        self.kind, self.settings = kind, settings
        self.started = time.perf_counter()
        self.inputs = [lineage.kafka_dataset(settings, t) for t in topics]
        self.run = lineage.LineageRun(f"ingest_{kind}", settings)
        self.run.start(self.inputs)

    @lineage.safely
    def fail(self, exc: BaseException) -> None:
        self.run.fail(exc, self.inputs)
        metrics.record_failure(self.settings, f"ingest_{self.kind}", time.perf_counter() - self.started)

    @lineage.safely
    def complete(self, summary: dict, handler: DatasetIngest | PolicyIngest, dead: DeadLetters,
                 consumed_by_topic: dict[str, int]) -> None:
        self.applied = applied = getattr(handler, "applied", [])      # policies: no releases
        outputs = self._harmonized(applied) if self.kind == "datasets" else self._instruments(handler)
        outputs += self._quarantine(dead)
        self.run.complete(self.inputs, outputs)
        consumed_by_org: Counter = Counter()
        for topic, n in consumed_by_topic.items():
            consumed_by_org[org_of_topic(topic)] += n
        applied_by_org: Counter = Counter()
        for (org, _, _), events, _, _ in applied:
            applied_by_org[org] += events
        letters = [l for ls in dead.letters.values() for l in ls]
        quarantined = Counter((l["org"] or "", l["reason"]) for l in letters
                              if not l["observations"] and not l["earlier_run"])
        refused: Counter = Counter()
        harmonized: Counter = Counter()
        for (org, dataset_id, _), _, rows, refused_rows in applied:
            harmonized[(org, dataset_id)] += rows
            for reason, n in refused_rows.items():
                refused[(org, reason)] += n
        metrics.record_ingest(self.settings, summary, consumed_by_org=consumed_by_org, applied_by_org=applied_by_org,
                              quarantined=[(*k, n) for k, n in quarantined.items()],
                              harmonized=[(*k, n) for k, n in harmonized.items()],
                              refused=[(*k, n) for k, n in refused.items()])

    def _harmonized(self, applied: list) -> list[dict]:
        by_dataset: dict[tuple[str, str], list] = defaultdict(list)
        for key, _, rows, _ in applied:
            by_dataset[key[:2]].append((key, rows))
        return [lineage.s3_dataset(
            self.settings, observations_location(self.settings, org, dataset_id),
            schema=lineage.schema_facet(_columns(HARMONIZED_SCHEMA)),
            outputStatistics=lineage.output_statistics(sum(rows for _, rows in releases)),
            ioxhub_releases=lineage.releases_facet([lineage.release_ref(*key) for key, _ in releases]))
            for (org, dataset_id), releases in sorted(by_dataset.items())]

    def _instruments(self, handler: PolicyIngest) -> list[dict]:
        counts = handler.counts
        if not counts.events_applied:
            return []
        tables, bucket = tables_for(self.settings), self.settings.bucket
        return [lineage.s3_dataset(self.settings, object_key(tables.location(HARMONIZED, table), bucket),
                                   schema=lineage.schema_facet(_columns(schema)),
                                   outputStatistics=lineage.output_statistics(rows) if rows is not None else None)
                for table, schema, rows in (("instrument_versions", VERSIONS_SCHEMA, None),
                                            ("adoptions", ADOPTIONS_SCHEMA, counts.adoptions),
                                            ("instruments", VERSIONS_SCHEMA, counts.instruments))]

    def _quarantine(self, dead: DeadLetters) -> list[dict]:
        """quarantine/events/topic=<topic> (the dead letters written; whole events refused, by reason) and
        quarantine/observations/org=/dataset= (refused observations by reason, with their releases)."""
        events: dict[str, Counter] = defaultdict(Counter)
        rows: dict[tuple[str, str], Counter] = defaultdict(Counter)
        releases: dict[tuple[str, str], set] = defaultdict(set)
        written: Counter = Counter()
        for (topic, _), letters in dead.letters.items():
            written[topic] += len(letters)      # every letter is a row of quarantine/events/ ...
            for l in letters:
                if not l["observations"]:       # ... whole events refused; refused rows are counted below
                    events[topic][l["reason"]] += 1
        outputs = [lineage.s3_dataset(self.settings, f"quarantine/events/topic={topic}",
                                      outputStatistics=lineage.output_statistics(n),
                                      ioxhub_refused=lineage.refused_facet(events[topic], "events"))
                   for topic, n in sorted(written.items())]
        for (org, dataset_id, release_id), _, _, refused in self.applied:
            if refused:
                rows[(org, dataset_id)].update(refused)
                releases[(org, dataset_id)].add(release_id)
        for (org, dataset_id), c in sorted(rows.items()):
            path = quarantine_rows_key(org, dataset_id, "-").rsplit("/", 1)[0]
            refs = [lineage.release_ref(org, dataset_id, r) for r in sorted(releases[(org, dataset_id)])]
            outputs.append(lineage.s3_dataset(self.settings, path, outputStatistics=lineage.output_statistics(sum(c.values())),
                                              ioxhub_refused=lineage.refused_facet(c, "observations"),
                                              ioxhub_releases=lineage.releases_facet(refs)))
        return outputs

