"""Watch the org topics of one event kind WITHOUT consuming: end offsets against the ingest group's
committed offsets, and when that says an ingest run should start.

Entry points: `OffsetWatch(settings, kind).snapshot()` -> `Offsets` (one read of the broker, no fetch,
no commit, no group join), `should_fire(fired, now)` (pure: fire for unread data no earlier firing was
for). Used by the Airflow trigger (app/airflow_triggers.py) and by `ioxhub status` (topic lag). Why these
rules: docs/airflow-runs.md "Event-triggered ingest".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from kafka.structs import TopicPartition

from ioxhub.kafka import make_consumer
from ioxhub.orgs import load_orgs
from ioxhub.settings import Settings

KINDS = ("datasets", "policies")


def group_id(settings: Settings, kind: str) -> str:
    """The consumer group of the ingest of `kind` (its committed offsets say what was ingested)."""
    return f"{settings.consumer_group}-{kind}"


@dataclass(frozen=True)
class Offsets:
    """End and committed offsets by "topic:partition" (string keys: it travels in trigger events as JSON)."""

    ends: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)

    def lag_by_topic(self) -> dict[str, int]:
        """Records not yet committed, per topic (a lower bound on tansu, whose end offsets may under-report)."""
        lag: dict[str, int] = {}
        for key, end in self.ends.items():
            topic = key.rpartition(":")[0]
            lag[topic] = lag.get(topic, 0) + max(0, end - self.committed.get(key, 0))
        return lag

    def lag(self) -> int:
        return sum(self.lag_by_topic().values())


def should_fire(fired: Offsets | None, now: Offsets, quiet_s: float = 0.0, safety_s: float = float("inf")) -> bool:
    """Start an ingest run? `fired`: the offsets at the last firing (None: none yet), `quiet_s`: seconds
    since the last firing (or since watching began). Fire when records wait (lag), and either

    - no firing is remembered (first look, or the triggerer restarted: data left is picked up), or
    - some partition's end offset moved past where it was at the last firing (new records arrived), or
    - the committed offsets moved since the last firing (a run finished) and records are still left
      (a run bounded by max_records, or records that came in during that run);

    and in any case once `safety_s` passed without a firing (a safety net: records a failed run left, or
    records behind end offsets that under-report, as tansu's do).

    A run in progress commits nothing until it ends, so while it works this stays quiet unless new
    records arrive; those firings coalesce in Airflow's asset queue into one next run."""
    if quiet_s >= safety_s:
        return True
    if now.lag() == 0:
        return False
    if fired is None:
        return True
    if any(end > fired.ends.get(key, 0) for key, end in now.ends.items()):
        return True
    return now.committed != fired.committed


class OffsetWatch:
    """A consumer of the ingest group of `kind` that only reads offsets (never polls records)."""

    def __init__(self, settings: Settings, kind: str, **consumer_options):
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}; one of: {', '.join(KINDS)}")
        spec = load_orgs(settings.orgs_file)
        self.topics = [getattr(o, kind).name for o in spec.orgs]
        self.consumer = make_consumer(group_id(settings, kind), settings, **consumer_options)

    def snapshot(self) -> Offsets:
        partitions = [TopicPartition(t, p) for t in self.topics
                      for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        ends = self.consumer.end_offsets(partitions) if partitions else {}
        committed = {tp: self.consumer.committed(tp) or 0 for tp in partitions}
        return Offsets({f"{tp.topic}:{tp.partition}": ends.get(tp, 0) for tp in partitions},
                       {f"{tp.topic}:{tp.partition}": committed[tp] for tp in partitions})

    def close(self) -> None:
        self.consumer.close(autocommit=False)

    def __enter__(self) -> "OffsetWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
