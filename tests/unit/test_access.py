"""Analyst access (consumers/access.py): --where parsing, snapshot choice (--as-of), typed filters, clear errors,
output formats. The pure parts run without servers; pulls run against the session's real SeaweedFS."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumers.access import (Filter, PullError, PullResult, _expression, _partition_keeps, _snapshot_location, parse_where,
                              pull, pull_table, write_pull)
from ioxhub.errors import IoxhubError
from consumers.evidence import write_curated
from ioxhub.storage import ObjectStore
from ioxhub.tables import tables_for


# --- pure ------------------------------------------------------------------------------------------

def test_parse_where_pairs_and_errors():
    assert parse_where(["ref_area=FRA", " year =2020", "note=a=b", "unit="]) == [
        Filter("ref_area", "=", ("FRA",)), Filter("year", "=", ("2020",)), Filter("note", "=", ("a=b",)),
        Filter("unit", "=", ("",))]
    assert parse_where([]) == []
    for bad in ("FRA", "=FRA", " =x", ">=2015", "a b=1"):
        with pytest.raises(PullError, match=r"--where .*expected COLUMN=VALUE"):
            parse_where([bad])
    assert issubclass(PullError, IoxhubError)   # the CLI prints it as one `error:` line


def test_parse_where_ranges_in_lists_and_not_equal():
    assert parse_where(["year>=2015", "year<2020", "value>0.5", "value<=9", "unit!=t", "ref_area=in:FRA,DEU"]) == [
        Filter("year", ">=", ("2015",)), Filter("year", "<", ("2020",)), Filter("value", ">", ("0.5",)),
        Filter("value", "<=", ("9",)), Filter("unit", "!=", ("t",)), Filter("ref_area", "in", ("FRA", "DEU"))]
    assert parse_where(["note>=a=b"]) == [Filter("note", ">=", ("a=b",))]     # the first operator splits


def test_partition_pruning_compares_numbers_as_numbers():
    assert _partition_keeps("2015", [Filter("year", ">=", ("2015",))])
    assert not _partition_keeps("999", [Filter("year", ">=", ("2015",))])      # not "999" >= "2015" as text
    assert _partition_keeps("2016", [Filter("year", "in", ("2016", "2017")), Filter("year", "<", ("2017",))])
    assert not _partition_keeps("2017", [Filter("year", "in", ("2016", "2017")), Filter("year", "<", ("2017",))])
    assert not _partition_keeps("2015", [Filter("year", "!=", ("2015",))])
    assert _partition_keeps("WCO", [Filter("org", "=", ("WCO",))]) and not _partition_keeps("WHO", [Filter("org", "=", ("WCO",))])


def test_row_filters_become_one_typed_expression():
    schema = pa.schema([("ref_area", pa.string()), ("year", pa.int32()), ("value", pa.float64())])
    table = pa.table({"ref_area": ["FRA", "DEU", "ITA", "FRA"], "year": pa.array([2014, 2015, 2016, 2020], pa.int32()),
                      "value": [1.0, 2.0, 3.0, 4.0]})
    expr = _expression(parse_where(["ref_area=in:FRA,DEU", "year>=2015", "year<2020"]), schema)
    assert table.filter(expr).to_pydict()["year"] == [2015]
    expr = _expression(parse_where(["ref_area=FRA", "ref_area=ITA", "value!=4"]), schema)   # same column: OR
    assert table.filter(expr).to_pydict()["ref_area"] == ["FRA", "ITA"]
    with pytest.raises(PullError, match=r"--where year>='x': not a valid int32"):
        _expression(parse_where(["year>=x"]), schema)
    with pytest.raises(PullError, match=r"no column 'nope'"):
        _expression(parse_where(["nope=in:a,b"]), schema)


def _entry(kind="curated"):
    created = ["2026-03-01T10:00:00+00:00", "2026-03-02T12:00:00+00:00", "2026-03-05T08:30:00+00:00"]
    snaps = [{"snapshot": n, "created_at": c, "location": f"curated/x/snapshot={n:06d}/"}
             for n, c in enumerate(created, 1)]
    return {"name": "x", "kind": kind, "snapshot": 3, "location": snaps[-1]["location"], "snapshots": snaps}


@pytest.mark.parametrize("as_of, expected", [
    (None, 3), ("1", 1), ("2", 2), ("3", 3),
    ("2026-03-01", 1),                      # a date means the end of that day (UTC)
    ("2026-03-02", 2), ("2026-03-04", 2), ("2026-03-05", 3), ("2027-01-01", 3),
    ("2026-03-02T11:59:59", 1),             # a time without zone is UTC
    ("2026-03-02T12:00:00", 2),             # a snapshot created exactly then is included
    ("2026-03-02T12:00:00Z", 2),
    ("2026-03-02T13:00:00+02:00", 1),       # 11:00 UTC
])
def test_as_of_selects_the_last_snapshot_at_or_before(as_of, expected):
    snapshot, location = _snapshot_location(_entry(), as_of)
    assert snapshot == expected and location == f"curated/x/snapshot={expected:06d}/"


def test_as_of_errors_are_clear():
    with pytest.raises(PullError, match=r"x has no snapshot 4 \(snapshots 1\.\.3\)"):
        _snapshot_location(_entry(), "4")
    with pytest.raises(PullError, match=r"x has no snapshot 0"):
        _snapshot_location(_entry(), "0")
    with pytest.raises(PullError, match=r"no snapshot as of 2026-02-28 \(first: 2026-03-01T10:00:00\+00:00\)"):
        _snapshot_location(_entry(), "2026-02-28")
    with pytest.raises(PullError, match=r"--as-of 'last week': expected a snapshot number or an ISO date/time"):
        _snapshot_location(_entry(), "last week")
    with pytest.raises(PullError, match="harmonized dataset: only its current state"):
        _snapshot_location(_entry("harmonized"), "1")
    assert _snapshot_location(_entry("harmonized"), "3")[0] == 3


def _result():
    table = pa.table({"ref_area": ["FRA", "DEU"], "year": pa.array([2020, 2021], pa.int32()), "value": [1.5, None]})
    return PullResult(table, "x", 1, 1, 10, 100)


def test_write_pull_formats(tmp_path, capsys):
    result = _result()
    assert write_pull(result, "csv", tmp_path / "a.csv") == tmp_path / "a.csv"
    assert pd.read_csv(tmp_path / "a.csv").to_dict("list") == {"ref_area": ["FRA", "DEU"], "year": [2020, 2021],
                                                               "value": [1.5, pytest.approx(float("nan"), nan_ok=True)]}
    write_pull(result, "parquet", tmp_path / "a.parquet")
    assert pq.read_table(tmp_path / "a.parquet").equals(result.table)          # types kept (int32)
    write_pull(result, "json", tmp_path / "a.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert lines == [{"ref_area": "FRA", "year": 2020, "value": 1.5}, {"ref_area": "DEU", "year": 2021, "value": None}]

    assert write_pull(result, "csv", None) is None
    assert capsys.readouterr().out.splitlines() == ['ref_area,year,value', '"FRA",2020,1.5', '"DEU",2021,']
    write_pull(result, "json", None)
    assert [json.loads(line)["ref_area"] for line in capsys.readouterr().out.splitlines()] == ["FRA", "DEU"]


def test_write_pull_format_errors(tmp_path):
    with pytest.raises(PullError, match=r"--format 'xlsx': expected one of csv, parquet, json"):
        write_pull(_result(), "xlsx", tmp_path / "a.xlsx")
    with pytest.raises(PullError, match=r"--format parquet needs -o FILE"):
        write_pull(_result(), "parquet", None)
    assert not (tmp_path / "a.xlsx").exists()


# --- against the session's real S3 -----------------------------------------------------------------

@pytest.fixture(scope="module")
def curated(stack_settings):
    """A small curated dataset with two snapshots (string, int, float, bool, timestamp columns)."""
    store = ObjectStore(stack_settings)
    name = f"access_test_{uuid.uuid4().hex[:8]}"
    for snapshot, factor in ((1, 1.0), (2, 10.0)):
        table = pa.table({
            "ref_area": ["DEU", "DEU", "FRA", "FRA", "USA"],
            "year": pa.array([2020, 2021, 2020, 2021, 2020], pa.int32()),
            "value": [factor * v for v in (1.0, 2.0, 3.0, 4.0, 5.0)],
            "primary": [True, False, True, False, True],
            "published_at": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)] * 5, pa.timestamp("us", "UTC")),
        })
        written = write_curated(store, tables_for(stack_settings), name, table, {"kind": "curated", "rows": table.num_rows},
                                {"ioxhub.run_id": f"access-{snapshot}"}, row_group_size=2)
        assert written["snapshot"] == snapshot
    return name, store


@pytest.mark.integration
def test_pull_filters_are_typed(curated):
    name, store = curated
    got = pull_table(name, ["ref_area=FRA", "year=2021"], store=store)
    assert got.table.to_pylist() == [{"ref_area": "FRA", "year": 2021, "value": 40.0, "primary": False,
                                      "published_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}]
    assert got.snapshot == 2 and got.objects_read == 1 and 0 < got.bytes_read <= got.dataset_bytes
    assert pull_table(name, ["primary=True"], ["ref_area"], store=store).table["ref_area"].to_pylist() == \
        ["DEU", "FRA", "USA"]
    # the same column twice is OR, columns are AND; projection keeps the asked order
    both = pull_table(name, ["ref_area=DEU", "ref_area=USA", "year=2020"], ["value", "ref_area"], store=store)
    assert both.table.column_names == ["value", "ref_area"] and both.table.to_pydict() == {
        "value": [10.0, 50.0], "ref_area": ["DEU", "USA"]}
    assert pull_table(name, ["value=30"], ["ref_area"], store=store).table["ref_area"].to_pylist() == ["FRA"]
    assert pull_table(name, ["ref_area=ZZZ"], store=store).table.num_rows == 0
    for stamp in ("2026-01-01", "2026-01-01T00:00:00", "2026-01-01T01:00:00+01:00"):   # ISO, UTC without zone
        assert pull_table(name, [f"published_at={stamp}"], store=store).table.num_rows == 5
    assert pull_table(name, ["published_at=2026-01-02"], store=store).table.num_rows == 0


@pytest.mark.integration
def test_pull_as_of_reads_the_older_snapshot(curated):
    name, store = curated
    old = pull_table(name, ["ref_area=FRA"], ["value"], as_of="1", store=store)
    assert old.snapshot == 1 and old.table["value"].to_pylist() == [3.0, 4.0]
    frame = pull(name, ["ref_area=FRA"], ["value"], settings=store.settings)
    assert isinstance(frame, pd.DataFrame) and frame["value"].tolist() == [30.0, 40.0]


@pytest.mark.integration
def test_pull_errors_are_clear(curated):
    name, store = curated
    with pytest.raises(PullError, match=rf"--where country=\.\.\.: no column 'country' \(columns: ref_area, year"):
        pull_table(name, ["country=FRA"], store=store)
    with pytest.raises(PullError, match=r"--where year='20x1': not a valid int32"):
        pull_table(name, ["year=20x1"], store=store)
    with pytest.raises(PullError, match=r"--where published_at='yesterday': not a valid timestamp"):
        pull_table(name, ["published_at=yesterday"], store=store)
    with pytest.raises(PullError, match=r"--where primary='maybe': not a valid bool"):
        pull_table(name, ["primary=maybe"], store=store)
    with pytest.raises(PullError, match=rf"no column\(s\) country, gdp in {name}"):
        pull_table(name, columns=["ref_area", "country", "gdp"], store=store)
    with pytest.raises(PullError, match=rf"no dataset 'nope_{name}' in the catalog \(known: .*{name}"):
        pull_table(f"nope_{name}", store=store)
    with pytest.raises(PullError, match=rf"{name} has no snapshot 7 \(snapshots kept: 1\.\.2"):
        pull_table(name, as_of="7", store=store)
    with pytest.raises(PullError, match=rf"{name} has no snapshot as of 2000-01-01"):
        pull_table(name, as_of="2000-01-01", store=store)
