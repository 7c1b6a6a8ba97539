"""When the ingest DAGs' event trigger fires (ioxhub.ingest.watch.should_fire): only for records waiting
that no earlier firing was for; quiet while a run works on them; again when a run leaves records behind.
The trigger with real Airflow and a real broker: tests/integration/test_event_ingest.py."""
from __future__ import annotations

import importlib

from app.airflow_triggers import OrgTopicsTrigger
from ioxhub.ingest.watch import Offsets, should_fire


def offsets(ends: dict[str, int], committed: dict[str, int] | None = None) -> Offsets:
    return Offsets(ends, committed or {})


def test_lag_sums_partitions_per_topic_and_never_goes_negative():
    now = offsets({"a:0": 10, "a:1": 5, "b:0": 3}, {"a:0": 4, "a:1": 7, "b:0": 3})
    assert now.lag_by_topic() == {"a": 6, "b": 0}        # a:1 committed past the (under-reported) end
    assert now.lag() == 6


def test_nothing_waiting_never_fires():
    assert not should_fire(None, offsets({"a:0": 5}, {"a:0": 5}))
    assert not should_fire(None, offsets({}))                      # no topic yet


def test_first_look_with_records_waiting_fires():
    assert should_fire(None, offsets({"a:0": 5}, {"a:0": 2}))      # also after a triggerer restart


def test_quiet_while_a_run_works_on_what_it_was_fired_for():
    fired = offsets({"a:0": 5, "a:1": 3})
    assert not should_fire(fired, offsets({"a:0": 5, "a:1": 3}))


def test_new_records_on_any_partition_fire_again():
    fired = offsets({"a:0": 5, "a:1": 3})
    assert should_fire(fired, offsets({"a:0": 5, "a:1": 4}))
    assert should_fire(fired, offsets({"a:0": 5, "a:1": 3, "b:0": 1}))   # a new topic or partition


def test_a_run_that_left_records_behind_fires_again_one_that_took_all_does_not():
    fired = offsets({"a:0": 500}, {"a:0": 0})
    assert should_fire(fired, offsets({"a:0": 500}, {"a:0": 200}))       # bounded by max_records
    assert not should_fire(fired, offsets({"a:0": 500}, {"a:0": 500}))
    refired = offsets({"a:0": 500}, {"a:0": 200})
    assert not should_fire(refired, offsets({"a:0": 500}, {"a:0": 200}))  # once per commit, not per poll


def test_a_burst_fires_once_per_poll_that_sees_it_grow_not_per_release():
    fired = offsets({"a:0": 1})
    polls = [offsets({"a:0": n}) for n in (1, 1, 9, 9, 9, 30)]
    firings = []
    for now in polls:
        if should_fire(fired, now):
            fired = now
            firings.append(now.ends["a:0"])
    assert firings == [9, 30]


def test_the_safety_interval_fires_whatever_the_offsets_say():
    fired = offsets({"a:0": 5}, {"a:0": 2})
    assert not should_fire(fired, fired, quiet_s=59.0, safety_s=60.0)
    assert should_fire(fired, fired, quiet_s=60.0, safety_s=60.0)              # a failed run left records
    assert should_fire(None, offsets({"a:0": 5}, {"a:0": 5}), 60.0, 60.0)      # end offsets may under-report


def test_trigger_serializes_to_what_rebuilds_it():
    trigger = OrgTopicsTrigger(kind="policies", poll_seconds=0.5, safety_seconds=60.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "app.airflow_triggers.OrgTopicsTrigger"
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs) == (
        classpath, {"kind": "policies", "poll_seconds": 0.5, "safety_seconds": 60.0})
