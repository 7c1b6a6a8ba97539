"""consumers/response_cache.py: the byte bound, least-recently-used eviction, single-flight, failures."""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from consumers.response_cache import ResponseCache


def test_hits_and_misses_by_key():
    cache = ResponseCache(100)
    assert cache.get_or_compute(("a", 1), lambda: b"x" * 10, len) == (b"x" * 10, False)
    assert cache.get_or_compute(("a", 1), lambda: pytest.fail("computed again"), len) == (b"x" * 10, True)
    assert cache.get_or_compute(("a", 2), lambda: b"y", len) == (b"y", False)        # another snapshot: another key
    assert (cache.hits, cache.misses, cache.bytes, len(cache)) == (1, 2, 11, 2)


def test_byte_bound_drops_the_least_recently_used_and_large_values_are_not_kept():
    cache = ResponseCache(30, item_max_bytes=15)
    for key in "abc":
        cache.get_or_compute(key, lambda: b"." * 10, len)
    cache.get_or_compute("a", lambda: b"", len)                         # a used: b is now the oldest
    cache.get_or_compute("d", lambda: b"." * 10, len)
    assert [k in cache for k in "abcd"] == [True, False, True, True] and cache.bytes == 30
    assert cache.get_or_compute("big", lambda: b"." * 16, len) == (b"." * 16, False) and "big" not in cache
    assert cache.get_or_compute("stream", lambda: iter([b"x"]), lambda v: None)[1] is False and "stream" not in cache
    assert cache.bytes == 30


def test_off_when_its_size_is_zero():
    cache = ResponseCache(0)
    calls = []
    for _ in range(2):
        cache.get_or_compute("a", lambda: calls.append(1) or b"x", len)
    assert len(calls) == 2 and len(cache) == 0


def _concurrently(n: int, call):
    start = threading.Barrier(n)

    def one(_):
        start.wait()
        return call()
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_single_flight_concurrent_identical_requests_compute_once():
    cache, calls = ResponseCache(1000), []

    def compute():
        calls.append(1)
        time.sleep(0.2)
        return b"rows"
    results = _concurrently(10, lambda: cache.get_or_compute("k", compute, len))
    assert len(calls) == 1 and {value for value, _ in results} == {b"rows"}
    assert sorted(hit for _, hit in results) == [False] + [True] * 9


def test_a_failed_computation_is_not_shared_and_a_large_one_is_computed_by_each():
    cache, calls = ResponseCache(1000, item_max_bytes=10), []

    def failing_first():
        calls.append(1)
        time.sleep(0.1)
        if len(calls) == 1:
            raise ValueError("storage down")
        return b"ok"
    outcomes = _concurrently(4, lambda: _outcome(lambda: cache.get_or_compute("k", failing_first, len)))
    assert outcomes.count("ValueError") == 1 and outcomes.count((b"ok", False)) == 1 and outcomes.count((b"ok", True)) == 2
    assert len(calls) == 2

    big = []
    _concurrently(3, lambda: cache.get_or_compute("big", lambda: big.append(1) or b"." * 11, len))
    assert len(big) == 3 and "big" not in cache


def _outcome(call):
    try:
        return call()
    except ValueError:
        return "ValueError"
