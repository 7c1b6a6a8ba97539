"""One ingest run of a kind at a time, whoever starts it (an Airflow DAG run, `ioxhub ingest`, a follow
process, a replay, a quarantine retry): a lease object in the bucket, taken and renewed by conditional PUTs.

`Lease(store, kind, holder, seconds)`: `acquire()` (False while another holder's lease is live),
`renew()` (raises `LeaseLost` when another holder took it over), `release()`; a background thread renews
it every third of its duration while held. `holding(...)`: the lease for a replay or a quarantine retry,
waiting for it a while. A holder killed on this host (its pid gone) is taken over at
once, one on another host when its lease expires. The ingest assigns partitions itself (no consumer group join),
so the group alone would let two runs read and apply the same records: docs/freshness.md.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time

from ioxhub.errors import IoxhubError
from ioxhub.storage import ObjectStore


class LeaseLost(IoxhubError):
    """Another run took over this run's lease (it expired unrenewed): this run must not commit."""


def lease_key(kind: str) -> str:
    return f"catalog/leases/ingest_{kind}.json"


def describe(document: dict) -> str:
    """'follow pid 12 on host-a since 2026-12-06T12:00:00Z' for a lease document."""
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(document.get("acquired_at", 0)))
    return f"{document.get('holder', '?')} since {since}"


def holder_gone(document: dict) -> bool:
    """True when the holder ran on this host and its process is gone (killed: its lease need not be waited
    out); a holder on another host is only known gone once its lease expires."""
    if document.get("host") != socket.gethostname() or not isinstance(document.get("pid"), int):
        return False
    try:
        os.kill(document["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Lease:
    def __init__(self, store: ObjectStore, kind: str, run: str, seconds: float):
        self.store, self.key, self.seconds = store, lease_key(kind), seconds
        self.holder = f"{run} pid {os.getpid()} on {socket.gethostname()}"
        self.etag: str | None = None
        self.acquired_at = 0.0
        self.held_by: dict | None = None       # the other live holder after a refused acquire()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lost: LeaseLost | None = None

    def _document(self, expires: float) -> bytes:
        return json.dumps({"holder": self.holder, "pid": os.getpid(), "host": socket.gethostname(),
                           "acquired_at": self.acquired_at, "expires_at": expires}).encode()

    def acquire(self) -> bool:
        """Take the lease when nobody holds it or the holder's lease expired; False when held by someone else
        (`held_by` says who)."""
        current = self.store.get_with_etag(self.key)
        etag = None
        if current is not None:
            document = json.loads(current[0] or b"{}")
            if document.get("expires_at", 0) > time.time() and not holder_gone(document):
                self.held_by = document
                return False
            etag = current[1]
        self.acquired_at = time.time()
        self.etag = self.store.put_if(self.key, self._document(self.acquired_at + self.seconds), etag)
        if self.etag is None:                   # another run was faster
            self.held_by = json.loads((self.store.get_bytes(self.key) or b"{}"))
            return False
        self._stop.clear()
        self._lost = None
        self._thread = threading.Thread(target=self._keep, name=f"lease-{self.key}", daemon=True)
        self._thread.start()
        return True

    def renew(self) -> None:
        """Extend the lease now; raises LeaseLost when another run holds it (then nothing may be committed)."""
        with self._lock:
            if self._lost is not None:
                raise self._lost
            etag = self.store.put_if(self.key, self._document(time.time() + self.seconds), self.etag)
            if etag is None:
                self._lost = LeaseLost(f"{self.key}: lease of {self.holder} was taken over by another run "
                                       f"(not renewed within {self.seconds:g} s); nothing committed")
                raise self._lost
            self.etag = etag

    def _keep(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except LeaseLost:
                return
            except IoxhubError:                 # storage hiccup: try again next time, renew() before commit decides
                continue

    def release(self) -> None:
        """Give the lease up (expire it now, conditionally: never someone else's)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.etag is not None and self._lost is None:
                self.store.put_if(self.key, self._document(0.0), self.etag)
            self.etag = None


class LeaseHeld(IoxhubError):
    """Another run of the kind held the lease for longer than the caller would wait (the message names it)."""


@contextlib.contextmanager
def holding(store: ObjectStore, kind: str, run: str, seconds: float, wait_seconds: float):
    """The lease of `kind` for a one-off job (a replay, a quarantine retry): waits up to `wait_seconds` while
    another run holds it, then raises LeaseHeld naming the holder; released on exit."""
    lease = Lease(store, kind, run, seconds)
    deadline = time.monotonic() + wait_seconds
    while not lease.acquire():
        if time.monotonic() >= deadline:
            raise LeaseHeld(f"the {kind} ingest lease (s3://{store.bucket}/{lease.key}) is held by "
                            f"{describe(lease.held_by or {})}; try again when it has finished "
                            f"(a follow process holds it until stopped)")
        time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
    try:
        yield lease
    finally:
        lease.release()
