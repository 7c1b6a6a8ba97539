"""bench/chaos_state.py: the checksums and key counts the fault benchmark compares hubs by."""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from chaos_state import RUN_DEPENDENT, compare, table_state  # noqa: E402

KEYS = ("org", "dataset", "indicator", "ref_area", "counterpart_area", "commodity", "period", "unit")
NAME = "harmonized/observations"


def observations(rows: list[tuple], published: int = 0) -> pa.Table:
    data = {k: [f"{k}{r[0]}" for r in rows] for k in KEYS}
    data["value"] = [r[1] for r in rows]
    data["published_at"] = pa.array([published] * len(rows), pa.timestamp("ms", tz="UTC"))
    return pa.table(data)


ROWS = [(1, 1.5), (2, 2.5), (3, None)]


def test_checksum_ignores_row_order_encoding_and_run_dependent_columns():
    a = observations(ROWS, published=1)
    b = observations(list(reversed(ROWS)), published=999)
    b = b.set_column(b.schema.get_field_index("indicator"), "indicator", b["indicator"].dictionary_encode())
    assert "published_at" in RUN_DEPENDENT
    assert table_state(a).checksum == table_state(b).checksum


def test_checksum_sees_a_changed_value_and_names_the_column():
    ref = {NAME: table_state(observations(ROWS), KEYS)}
    got = {NAME: table_state(observations([(1, 1.5), (2, 2.75), (3, None)]), KEYS)}
    diff = compare(ref, got)
    assert (diff.lost, diff.duplicated) == (0, 0)
    assert len(diff.mismatches) == 1 and "columns differing: value" in diff.mismatches[0]


def test_lost_and_duplicated_observations_are_counted_by_key():
    ref = {NAME: table_state(observations(ROWS), KEYS)}
    got = {NAME: table_state(observations([(1, 1.5), (1, 1.5), (1, 1.5), (2, 2.5)]), KEYS)}
    diff = compare(ref, got)
    assert (diff.lost, diff.duplicated) == (1, 2)
    assert diff.mismatches


def test_a_missing_or_extra_table_is_a_mismatch():
    state = table_state(observations(ROWS), KEYS)
    assert compare({NAME: state}, {}).mismatches == [f"{NAME}: missing"]
    assert compare({}, {"curated/x": state}).mismatches == ["curated/x: not in the reference"]
    assert not compare({NAME: state}, {NAME: state}).mismatches
