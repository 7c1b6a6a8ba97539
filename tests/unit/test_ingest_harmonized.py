"""The bounded-memory pieces of the ingest (ioxhub.ingest.spill, ioxhub.ingest.harmonized) against
plain Python references: spilled rows come back by key range in publisher order, duplicates keep the
last copy, merges count revisions, key ranges cover every key once."""
from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from ioxhub.ingest import harmonized, spill
from ioxhub.ingest.harmonized import (INTERNAL_SCHEMA, deduplicated_sorted, internal, key_ranges, keep_last, merge_current,
                                      sort_rows)
from ioxhub.ingest.observations import HARMONIZED_SCHEMA, SERIES_KEY
from ioxhub.ingest.spill import MemoryBudget, ReleaseSpill

AREAS = ["FRA", "DEU", "USA", "KEN", "JPN", "BRA", None]


def table(n: int, seed: int, release: str = "r1", published: int = 1_700_000_000_000, years=(2019, 2020, 2021)) -> pa.Table:
    """Harmonized-like rows (dictionary strings with per-table dictionaries, a few nulls), many repeats."""
    rng = np.random.default_rng(seed)

    def dict_col(values: list, n_pick: int | None = None) -> pa.Array:
        # a dictionary with a shuffled, partly repeated order, like the wire's
        dictionary = [v for v in values if v is not None]
        rng.shuffle(dictionary)
        picks = [values[i] for i in rng.integers(0, len(values), n)]
        idx = [dictionary.index(v) if v is not None else None for v in picks]
        return pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), pa.array(dictionary, pa.string()))

    year = rng.choice(years, n)
    start = np.array([dt.date(int(y), 1, 1) for y in year])
    return internal(pa.table({        # the unit and area detail columns null (rows harmonized before them)
        "release_id": pa.array([release] * n).dictionary_encode(),
        "schema_version": pa.array(["dataset_chunk/v1"] * n).dictionary_encode(),
        "indicator": dict_col(["A.X", "B.Y"]),
        "ref_area": dict_col([a for a in AREAS if a]),
        "counterpart_area": dict_col(AREAS),
        "commodity": dict_col(["01", "0101", None]),
        "dimensions": dict_col(["", "CURRENCY=USD"]),
        "freq": pa.array(["A"] * n).dictionary_encode(),
        "period": pa.array([str(y) for y in year]).dictionary_encode(),
        "period_start": pa.array(start, pa.date32()),
        "period_end": pa.array([dt.date(d.year, 12, 31) for d in start], pa.date32()),
        "value": pa.array(rng.normal(size=n)),
        "unit": dict_col(["USD", "KG"]),
        "obs_status": dict_col(["A", "E", None]),
        "published_at": pa.array(np.full(n, published), pa.timestamp("ms", tz="UTC")),
    }))


def rows(t: pa.Table) -> list[tuple]:
    return [tuple(r[c] for c in HARMONIZED_SCHEMA.names) for r in t.cast(HARMONIZED_SCHEMA).to_pylist()]


def series(row: dict) -> tuple:
    return tuple(row[k] for k in SERIES_KEY)


def reference_keep_last(t: pa.Table) -> list[tuple]:
    latest: dict = {}
    for i, r in enumerate(t.cast(HARMONIZED_SCHEMA).to_pylist()):
        latest[series(r)] = i
    every = rows(t)
    return [every[i] for i in sorted(latest.values())]


def test_keep_last_and_deduplicated_sorted():
    t = table(3000, 1)
    want = reference_keep_last(t)
    assert rows(keep_last(t)) == want
    got = rows(deduplicated_sorted(t))
    assert sorted(got, key=repr) == sorted(want, key=repr)
    at = [HARMONIZED_SCHEMA.names.index(c) for c in ("indicator", "ref_area", "period")]
    order = [tuple(r[i] for i in at) for r in got]
    assert order == sorted(order, key=lambda k: tuple((v is None, v or "") for v in k))
    assert rows(sort_rows(keep_last(t))) == got


def test_merge_counts_revisions_and_superseded():
    old = keep_last(table(2000, 2, "r1", 1_000))
    new = keep_last(table(2000, 3, "r2", 2_000))
    merged, revisions, superseded, deleted = merge_current(old, new, "r2")
    assert deleted == 0
    by_key: dict = {}
    for r in old.cast(HARMONIZED_SCHEMA).to_pylist() + new.cast(HARMONIZED_SCHEMA).to_pylist():
        by_key[series(r)] = r
    assert sorted(rows(merged), key=repr) == sorted([tuple(r[c] for c in HARMONIZED_SCHEMA.names) for r in by_key.values()], key=repr)
    old_keys = {series(r) for r in old.cast(HARMONIZED_SCHEMA).to_pylist()}
    assert revisions == len(old_keys & {series(r) for r in new.cast(HARMONIZED_SCHEMA).to_pylist()}) > 0
    assert superseded == 0
    # the older release applied after the newer one: its rows lose, counted as superseded
    merged2, revisions2, superseded2, _ = merge_current(merged, old, "r1")
    assert revisions2 == 0 and superseded2 == revisions and sorted(rows(merged2), key=repr) == sorted(rows(merged), key=repr)


def with_deletions(t: pa.Table, every: int, unitless: bool = False) -> pa.Table:
    """`t` with every `every`-th row an ACTION D row (value null; without a unit when `unitless`)."""
    deleted = np.arange(t.num_rows) % every == 0
    t = t.set_column(t.schema.get_field_index("value"), "value", pa.array(t["value"].to_numpy(), mask=deleted))
    if unitless:
        unit = t["unit"].combine_chunks()
        t = t.set_column(t.schema.get_field_index("unit"), "unit",
                         pa.DictionaryArray.from_arrays(pa.array(unit.indices.to_numpy(zero_copy_only=False), mask=deleted), unit.dictionary))
    return t.append_column(harmonized.DELETED, pa.array(deleted))


@pytest.mark.parametrize("unitless", [False, True])
def test_merge_applies_deletions_like_a_plain_reference(unitless):
    """A newer release's D row removes its key (a D without a unit: the key in every unit); an older
    release's D row arriving later deletes nothing newer; D rows never become current rows."""
    old = keep_last(table(2000, 2, "r1", 1_000))
    new = with_deletions(keep_last(table(2000, 3, "r2", 2_000)), 3, unitless)
    merged, revisions, superseded, deleted = merge_current(old, new, "r2")
    no_unit = [k for k in SERIES_KEY if k != "unit"]
    current: dict = {series(r): r for r in old.cast(HARMONIZED_SCHEMA).to_pylist()}
    for r in new.cast(HARMONIZED_SCHEMA.append(pa.field(harmonized.DELETED, pa.bool_()))).to_pylist():
        if r[harmonized.DELETED]:
            for k in [k for k, c in current.items()
                      if k == series(r) or (r["unit"] is None and [c[f] for f in no_unit] == [r[f] for f in no_unit])]:
                del current[k]
        else:
            current[series(r)] = {k: v for k, v in r.items() if k != harmonized.DELETED}
    old_keys = {series(r) for r in old.cast(HARMONIZED_SCHEMA).to_pylist()}
    replaced = sum(k in current and current[k]["release_id"] != "r1" for k in old_keys)   # revised
    removed = sum(k not in current for k in old_keys)                                     # deleted
    assert sorted(rows(merged), key=repr) == sorted([tuple(r[c] for c in HARMONIZED_SCHEMA.names) for r in current.values()], key=repr)
    assert (revisions, deleted, superseded) == (replaced, removed, 0) and deleted > 0
    # the same D rows again, but as an older release: they lose against r2's rows and delete nothing of them
    stale = with_deletions(keep_last(table(2000, 3, "r0", 500)), 3, unitless)
    again, revisions2, _, deleted2 = merge_current(merged, stale, "r0")
    r2_rows = {r for r in rows(merged) if r[0] == "r2"}
    assert r2_rows <= set(rows(again)) and revisions2 == 0


def test_key_ranges_cover_every_key_once(monkeypatch):
    monkeypatch.setattr(harmonized, "SLICE_ROWS", 10)
    counts = Counter({("A", "FRA"): 4, ("A", "DEU"): 7, ("B", "USA"): 25, ("A", None): 3, ("B", "BRA"): 1})
    ranges = key_ranges(counts)
    order = sorted(counts, key=spill._sortable)
    covered = [[k for k in order if spill._sortable(lo) <= spill._sortable(k) <= spill._sortable(hi)] for lo, hi in ranges]
    assert [k for group in covered for k in group] == order
    assert all(sum(counts[k] for k in group) <= 10 or len(group) == 1 for group in covered)


@pytest.mark.parametrize("memory_rows", [0, 10**9])
@pytest.mark.parametrize("slice_rows", [40, 10**6])
def test_spill_gives_rows_back_by_range_in_publisher_order(tmp_path, monkeypatch, memory_rows, slice_rows):
    monkeypatch.setattr(harmonized, "SLICE_ROWS", slice_rows)
    chunks = [table(500, seed) for seed in range(4)]
    s = ReleaseSpill(tmp_path / "spill", MemoryBudget(memory_rows))
    s.add(2, chunks[2])
    s.add(0, table(50, 99))             # replaced below: a new copy of chunk 0 wins
    s.add(1, chunks[1])
    s.add(0, chunks[0])
    s.add(3, chunks[3])
    assert s.rows_total == 2000
    for year in s.years():
        ranges = key_ranges(s.key_counts(year))
        for (lo, hi), got in zip(ranges, s.rows_by_range(year, ranges), strict=True):
            want = []
            for c in chunks:     # chunk after chunk; inside a chunk, by key, publisher order among equal keys
                inside = [r for r in c.cast(HARMONIZED_SCHEMA).to_pylist() if r["period_start"].year == year
                          and spill._sortable(lo) <= spill._sortable((r["indicator"], r["ref_area"])) <= spill._sortable(hi)]
                inside.sort(key=lambda r: spill._sortable((r["indicator"], r["ref_area"])))
                want += [tuple(r[c] for c in HARMONIZED_SCHEMA.names) for r in inside]
            assert (rows(got) if got is not None else []) == want
    s.close()
    assert not (tmp_path / "spill").exists()
