"""One worker thread for the ingest's file writes and uploads, so they overlap with decoding and
harmonizing (zlib, Parquet encoding and sockets release the GIL: the second core does them).

Tasks run in submission order; at most `depth` wait, so memory held by queued work stays bounded.
A task's error is raised in the caller at the next `submit` or at `wait`.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Background:
    def __init__(self, name: str, depth: int = 2):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix=f"ioxhub-{name}")
        self.depth = depth
        self.pending: deque[Future] = deque()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while len(self.pending) >= self.depth:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(fn, *args))

    def wait(self) -> None:
        """Every submitted task done (raises the first error)."""
        while self.pending:
            self.pending.popleft().result()

    def close(self) -> None:
        """Stop the worker: after `wait` normally; on an error path, cancel what has not started."""
        for future in self.pending:
            future.cancel()
        self.pool.shutdown(wait=True)
        self.pending.clear()
