"""A bounded in-process cache of encoded responses, with single-flight.

`ResponseCache(max_bytes, item_max_bytes)`; `get_or_compute(key, compute, size)` -> (value, hit): the cached
value of `key`, or `compute()` run once however many threads ask for the same key at the same time (the
others wait for it and share its value). Values whose `size(value)` is None or above `item_max_bytes` are
returned but not kept; least recently used values are dropped beyond `max_bytes`. Keys must name
everything the value depends on (the HTTP API: dataset, snapshot, filters, columns, format, page), which an
immutable snapshot makes possible. Why and figures: docs/api.md "Caching".
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class _Flight:
    """One computation in progress: its waiters block on `done`, then take `value`; when the value was too
    large to keep (`kept` False and no error) each waiter computes its own (large values are streamed)."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value = None
        self.kept = False
        self.failed = True


class ResponseCache:
    def __init__(self, max_bytes: int, item_max_bytes: int | None = None):
        self.max_bytes = max_bytes
        self.item_max_bytes = max_bytes if item_max_bytes is None else min(item_max_bytes, max_bytes)
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self.bytes = 0
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], size: Callable[[T], int | None]) -> tuple[T, bool]:
        """The value of `key` and whether it came from the cache (or from another thread's computation)."""
        if self.max_bytes <= 0:
            return compute(), False
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0], True
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.kept:
                with self._lock:
                    self.hits += 1
                return flight.value, True
            if flight.failed:                                   # its error is the leader's: ask again
                return self.get_or_compute(key, compute, size)
            return compute(), False
        try:
            value = compute()
            nbytes = size(value)
            if nbytes is not None and nbytes <= self.item_max_bytes:
                flight.value, flight.kept = value, True
                self._put(key, value, nbytes)
            flight.failed = False
            return value, False
        finally:
            with self._lock:
                self.misses += 1
                del self._flights[key]
            flight.done.set()

    def _put(self, key: Hashable, value: object, nbytes: int) -> None:
        with self._lock:
            self._entries[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0
