"""`ioxhub status`'s list of releases waiting in staging/ (grouping and order; the real S3 path is in
tests/integration/test_ingest.py)."""
from __future__ import annotations

import datetime as dt

from ioxhub.status import internal_errors, staged_releases
from ioxhub.storage import ObjectEntry

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)


class Store:
    def __init__(self, entries):
        self._entries = entries

    def entries(self, prefix, recursive=True):
        return [e for e in self._entries if e.key.startswith(prefix)]

    def get_bytes(self, key):
        return f"Traceback (most recent call last):\nValueError: at {key}\n".encode()


def entry(key: str, size: int, hours_ago: float) -> ObjectEntry:
    return ObjectEntry(key, size, NOW - dt.timedelta(hours=hours_ago))


def test_staged_events_are_grouped_by_release_oldest_first():
    store = Store([
        entry("staging/org=WHO/dataset=d1/release=r1/p0-o1.avro", 100, 2),
        entry("staging/org=WHO/dataset=d1/release=r1/p0-o2.avro", 50, 30),
        entry("staging/org=WCO/dataset=d2/release=r9/p1-o7.avro", 10, 1),
        entry("staging/_provision-test/run.txt", 3, 0),          # not a staged event
        entry("raw/org=WHO/x.avro", 999, 99),                   # another zone
    ])
    rows = staged_releases(store, now=NOW)
    assert [(r["org"], r["dataset"], r["release"], r["events"], r["bytes"], r["age_hours"]) for r in rows] == [
        ("WHO", "d1", "r1", 2, 150, 30.0),
        ("WCO", "d2", "r9", 1, 10, 1.0),
    ]
    assert rows[0]["oldest"] == NOW - dt.timedelta(hours=30)


def test_nothing_staged_is_an_empty_list():
    assert staged_releases(Store([]), now=NOW) == []


def test_internal_errors_newest_first_and_one_without_a_time_last():
    store = Store([
        entry("quarantine/errors/topic=t/partition=0/offset=5.txt", 1, 2),
        ObjectEntry("quarantine/errors/topic=t/partition=1/offset=9.txt", 1, None),
        entry("quarantine/errors/topic=t/partition=0/offset=7.txt", 1, 1),
    ])
    rows = internal_errors(store)
    assert [(r["partition"], r["offset"], r["at"]) for r in rows] == [
        (0, 7, NOW - dt.timedelta(hours=1)), (0, 5, NOW - dt.timedelta(hours=2)), (1, 9, None)]
    assert rows[0]["error"] == "ValueError: at quarantine/errors/topic=t/partition=0/offset=7.txt"


def test_internal_errors_newest_first_also_without_a_modification_time():
    class Errors(Store):
        def get_bytes(self, key):
            return b"Traceback (most recent call last):\n  ...\nValueError: " + key.encode()

    store = Errors([ObjectEntry("quarantine/errors/topic=t/partition=1/offset=7.txt", 10, None),
                    entry("quarantine/errors/topic=t/partition=0/offset=5.txt", 10, 1)])
    rows = internal_errors(store)
    assert [(r["partition"], r["offset"]) for r in rows] == [(0, 5), (1, 7)]
    assert rows[1]["error"] == "ValueError: quarantine/errors/topic=t/partition=1/offset=7.txt"
