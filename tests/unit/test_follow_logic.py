"""Pure logic of follow mode and freshness: the lease's rules over an in-memory bucket with the same
conditional-PUT semantics as S3 (the real one: tests/integration/test_follow.py), lag in seconds, dataset ages."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from ioxhub.ingest.lease import Lease, LeaseLost, lease_key
from ioxhub.status import dataset_ages, lag_seconds


class Bucket:
    """Objects with ETags; put_if as S3's If-None-Match: * / If-Match."""

    def __init__(self):
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.n = 0

    def put_if(self, key, data, etag):
        current = self.objects.get(key)
        if (etag is None and current is not None) or (etag is not None and (current is None or current[1] != etag)):
            return None
        self.n += 1
        self.objects[key] = (data, f"e{self.n}")
        return f"e{self.n}"

    def get_with_etag(self, key):
        return self.objects.get(key)

    def get_bytes(self, key):
        return self.objects.get(key, (None,))[0]


def test_a_live_lease_refuses_a_second_run_and_release_frees_it():
    bucket = Bucket()
    first, second = Lease(bucket, "datasets", "follow", 60), Lease(bucket, "datasets", "ingest_datasets cli", 60)
    assert first.acquire()
    assert not second.acquire() and second.held_by["holder"].startswith("follow pid")
    first.renew()
    first.release()
    assert json.loads(bucket.get_bytes(lease_key("datasets")))["expires_at"] == 0.0
    assert second.acquire()
    second.release()


def test_an_expired_lease_is_taken_over_and_its_old_holder_can_neither_renew_nor_release_it():
    bucket = Bucket()
    old, new = Lease(bucket, "policies", "follow", 60), Lease(bucket, "policies", "follow", 60)
    assert old.acquire()
    old._stop.set()                                  # the holder stalls: no more renewals
    data, etag = bucket.objects[lease_key("policies")]
    bucket.objects[lease_key("policies")] = (json.dumps({**json.loads(data), "expires_at": 1.0}).encode(), etag)
    assert new.acquire()
    with pytest.raises(LeaseLost, match="taken over"):
        old.renew()
    old.release()                                    # must not expire the new holder's lease
    assert json.loads(bucket.get_bytes(lease_key("policies")))["expires_at"] > 1.0
    new.release()


def test_lag_seconds_counts_from_the_oldest_unread_record():
    lag = {"ioxhub.wco.datasets": 3, "ioxhub.who.datasets": 0, "ioxhub.imo.datasets": 2}
    oldest = {"ioxhub.wco.datasets": 1_000_000, "ioxhub.who.datasets": 999_000}
    assert lag_seconds(lag, oldest, now=1_012.5) == {"ioxhub.wco.datasets": 12.5, "ioxhub.who.datasets": None,
                                                     "ioxhub.imo.datasets": None}
    assert lag_seconds({"t": 1}, {"t": 2_000_000}, now=1_000.0) == {"t": 0.0}     # clock skew: never negative


def test_dataset_ages_from_the_tables_current_snapshots():
    now = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.timezone.utc)
    entries = [("indicator_panel_annual", now - dt.timedelta(minutes=2)),
               ("WCO.seizures", now - dt.timedelta(seconds=7.25))]
    assert dataset_ages(entries, now) == [
        {"dataset": "WCO.seizures", "updated_at": now - dt.timedelta(seconds=7.25), "age_seconds": 7.2},
        {"dataset": "indicator_panel_annual", "updated_at": now - dt.timedelta(minutes=2), "age_seconds": 120.0},
    ]


def test_a_killed_holder_on_this_host_is_taken_over_at_once():
    import subprocess
    import sys

    bucket = Bucket()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = Lease(bucket, "datasets", "ingest_datasets manual", 60)
    assert killed.acquire()
    killed._stop.set()
    data, etag = bucket.objects[lease_key("datasets")]
    bucket.objects[lease_key("datasets")] = (json.dumps({**json.loads(data), "pid": int(dead.stdout)}).encode(), etag)
    assert Lease(bucket, "datasets", "follow", 60).acquire()                      # its pid is gone
    alive = Lease(bucket, "policies", "follow", 60)
    assert alive.acquire() and not Lease(bucket, "policies", "follow", 60).acquire()   # this pid lives


@pytest.mark.parametrize("args, message", [
    (["ingest", "foo"], "error: ingest: KIND is datasets or policies, not 'foo'"),
    (["ingest", "datasets", "--derive"], "error: ingest: --derive and --metrics-port go with --follow"),
    (["ingest", "datasets", "--metrics-port", "9999"], "error: ingest: --derive and --metrics-port go with --follow"),
])
def test_ingest_usage_mistakes_are_one_line(args, message):
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run([str(Path(sys.executable).parent / "ioxhub"), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stderr.strip(), done.stdout) == (2, message, "")
