"""Shared column plumbing of the harmonization rules (ioxhub.harmonize.columns)."""
from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from ioxhub.harmonize.columns import Codebook, split_unique, wire_column


class Upper(NamedTuple):
    text: str | None
    length: int | None
    reason: str | None


def make_codebook(calls: list, max_size: int = 1_000_000) -> Codebook:
    def fn(text):
        calls.append(text)
        if text is None:
            return Upper(None, None, None)
        if text.startswith("?"):
            return Upper(None, None, "bad")
        return Upper(text.upper(), len(text), None)
    return Codebook(fn, strings=("text", "reason"), plain={"length": pa.int16()}, max_size=max_size)


def test_wire_column_maps_minus_one_to_null():
    column = wire_column(["a", "b", "c"], [2, -1, 0, 2])
    assert column.type == pa.dictionary(pa.int32(), pa.string())
    assert column.to_pylist() == ["c", None, "a", "c"]


def test_split_unique_plain_chunked_and_null_typed():
    dictionary, indexes = split_unique(pa.chunked_array([pa.array(["x", None]), pa.array(["y", "x"])]))
    assert [dictionary[i].as_py() if i is not None else None for i in indexes.to_pylist()] == ["x", None, "y", "x"]
    dictionary, indexes = split_unique(pa.array([None, None]))
    assert indexes.to_pylist() == [None, None]


def test_each_distinct_text_is_harmonized_once_and_unused_entries_never():
    calls: list = []
    book = make_codebook(calls)
    strings = ["aa", "b", "?x", "only-other-columns-use-me"]
    for _ in range(3):  # three chunks with the same table
        rows = book.rows(wire_column(strings, [0, 1, 1, -1, 2, 0]))
        assert rows.strings("text").to_pylist() == ["AA", "B", "B", None, None, "AA"]
        assert rows.strings("reason").to_pylist() == [None, None, None, None, "bad", None]
        assert rows.plain("length").to_pylist() == [2, 1, 1, None, None, 2]
    assert sorted(calls, key=str) == sorted([None, "aa", "b", "?x"], key=str)


def test_string_outputs_share_one_dictionary_without_nulls_or_repeats():
    book = make_codebook([])
    first = book.rows(pa.array(["a", "A", "?", None])).strings("text")
    assert first.to_pylist() == ["A", "A", None, None]
    assert first.dictionary.to_pylist() == ["A"] and first.dictionary.null_count == 0
    assert first.null_count == 2  # the nulls are in the indices
    second = book.rows(pa.array(["a"])).strings("text")
    assert second.dictionary.equals(first.dictionary)


def test_all_null_output_and_reset():
    calls: list = []
    book = make_codebook(calls)
    out = book.rows(pa.array(["a", "b"])).strings("reason")
    assert out.to_pylist() == [None, None] and out.type == pa.dictionary(pa.int32(), pa.string())
    book.reset()
    book.rows(pa.array(["a"]))
    assert calls.count("a") == 2


def test_max_size_starts_afresh_and_old_rows_stay_valid():
    calls: list = []
    book = make_codebook(calls, max_size=3)
    old = book.rows(pa.array(["a", "b", "c"]))
    new = book.rows(pa.array(["d", "e"]))  # over the limit: a fresh state
    assert old.strings("text").to_pylist() == ["A", "B", "C"]
    assert new.strings("text").to_pylist() == ["D", "E"]
    assert new.strings("text").dictionary.to_pylist() == ["D", "E"]


def test_null_where():
    book = make_codebook([])
    rows = book.rows(pa.array(["a", "b", "c"]))
    assert rows.strings("text", null_where=np.array([False, True, False])).to_pylist() == ["A", None, "C"]


def test_threads_get_consistent_results():
    book = make_codebook([])
    rng = np.random.default_rng(1)
    pool = [f"t{i}" for i in range(2000)]
    errors: list = []

    def work(seed: int) -> None:
        r = np.random.default_rng(seed)
        for _ in range(30):
            values = [pool[i] for i in r.integers(0, len(pool), 500)]
            got = book.rows(pa.array(values)).strings("text").to_pylist()
            if got != [v.upper() for v in values]:
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(int(s),)) for s in rng.integers(0, 1000, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
