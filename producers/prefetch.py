"""Iterate in a background thread, a few items ahead: `Prefetched(items, depth)`.

Publishing reads and parses the next blocks of a file while the current one is validated and encoded
(pyarrow parses without the GIL). Errors met by the reading thread are raised in the consumer.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterator

_DONE = object()


class Prefetched:
    """Iterate `items` in a daemon thread started at once, `depth` items ahead; `close()` stops it."""

    def __init__(self, items: Iterator, depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name="ioxhub-reader", daemon=True)
        self._thread.start()

    def _run(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> "Prefetched":
        return self

    def __next__(self):
        item = self._queue.get()
        if item is _DONE:
            self._queue.put(_DONE)
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
