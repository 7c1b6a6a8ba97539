"""The run lock of an event kind: one ingest, replay or quarantine retry of `datasets` (or `policies`) at a time.

`RunLock(store, settings, kind, holder)`: `acquire()` (a conditional PUT of `catalog/locks/<kind>.json`,
waiting up to `lock_wait_seconds`), `renew()`, `release()`; `is_stale(lock)` tells a lock whose holder died.
How it works and why: docs/operations.md, "Replay, retries and live ingest never overlap".
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import time
import uuid

from ioxhub.errors import IoxhubError
from ioxhub.s3 import S3_ERRORS
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore, StorageError

LOCKS_PREFIX = "catalog/locks/"
_HELD_HERE: set[str] = set()          # tokens of the locks this process holds now


class LockHeld(IoxhubError):
    """Another ingest, replay or retry of the same kind holds the run lock (the message names it)."""


def lock_key(kind: str) -> str:
    return f"{LOCKS_PREFIX}{kind}.json"


class RunLock:
    def __init__(self, store: ObjectStore, settings: Settings, kind: str, holder: str, lease_seconds: float | None = None):
        self.store, self.settings, self.kind, self.holder = store, settings, kind, holder
        # A DAG task try is stopped after task_timeout_minutes: its lock cannot outlive it by more.
        self.lease = lease_seconds if lease_seconds is not None else settings.task_timeout_minutes * 60
        self.token = uuid.uuid4().hex
        self.etag: str | None = None

    @property
    def key(self) -> str:
        return lock_key(self.kind)

    def _document(self) -> bytes:
        now = dt.datetime.now(dt.timezone.utc)
        return json.dumps({"holder": self.holder, "token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                           "acquired_at": now.isoformat(timespec="seconds"),
                           "expires_at": (now + dt.timedelta(seconds=self.lease)).isoformat(timespec="seconds")},
                          sort_keys=True).encode()

    def _put(self, condition: dict[str, str]) -> bool:
        """One conditional PUT of the lock document; False when the condition failed."""
        data = self._document()
        try:
            # minio's public put_object cannot send If-None-Match / If-Match; its _put_object sends headers as given.
            result = self.store.client._put_object(self.store.bucket, self.key, data,
                                                   headers={"Content-Type": "application/json", **condition})
        except S3_ERRORS as exc:
            if getattr(exc, "code", None) == "PreconditionFailed":
                return False
            raise self.store._fail("put", self.key, exc) from None
        self.etag = result.etag
        return True

    def _current(self) -> tuple[dict | None, str | None]:
        try:
            stat = self.store.client.stat_object(self.store.bucket, self.key)
        except S3_ERRORS as exc:
            if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None, None
            raise self.store._fail("stat", self.key, exc) from None
        data = self.store.get_bytes(self.key)
        try:
            return (json.loads(data) if data else None), stat.etag
        except ValueError:
            return {}, stat.etag           # unreadable: treated as stale

    def acquire(self, wait_seconds: float | None = None) -> "RunLock":
        wait = self.settings.lock_wait_seconds if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + wait
        while True:
            if self._put({"If-None-Match": "*"}):
                break
            held, etag = self._current()
            if held is None:
                continue                      # released in between: try again at once
            if etag and is_stale(held) and self._put({"If-Match": etag}):
                break
            if time.monotonic() >= deadline:
                raise LockHeld(f"the {self.kind} run lock (s3://{self.store.bucket}/{self.key}) is held by "
                               f"{held.get('holder', '?')} since {held.get('acquired_at', '?')} "
                               f"(lease until {held.get('expires_at', '?')}); try again when it has finished")
            time.sleep(min(1.0, max(0.05, deadline - time.monotonic())))
        _HELD_HERE.add(self.token)
        return self

    def renew(self) -> None:
        """Push the lease forward (long replays call it between releases)."""
        if self.etag is None:
            return
        if not self._put({"If-Match": self.etag}):
            raise LockHeld(f"the {self.kind} run lock was taken over by another run while {self.holder} held it")

    def release(self) -> None:
        """Delete the lock if this holder still has it (a no-op when never acquired)."""
        if self.etag is None:
            return
        _HELD_HERE.discard(self.token)
        held, _ = self._current()
        if held and held.get("token") == self.token:
            self.store.delete(self.key)
        self.etag = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release_quietly()

    def release_quietly(self) -> None:
        """release(), but a storage outage (the reason a run is failing) does not hide the run's error:
        the lock is then taken over as stale."""
        try:
            self.release()
        except StorageError:
            _HELD_HERE.discard(self.token)
            self.etag = None


def is_stale(held: dict, now: dt.datetime | None = None) -> bool:
    """A lock whose lease ran out, or whose holder was a process of this machine that is gone (or this
    process, which no longer holds it: a failed release)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        if dt.datetime.fromisoformat(held["expires_at"]) <= now:
            return True
    except (KeyError, TypeError, ValueError):
        return True
    if held.get("host") != socket.gethostname() or not isinstance(held.get("pid"), int):
        return False
    if held["pid"] == os.getpid():
        return held.get("token") not in _HELD_HERE
    return not _pid_alive(held["pid"])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
