"""Analyst access (consumers/access.py): --where parsing, snapshot choice (--as-of), typed filters, clear errors,
output formats. The pure parts run without servers; pulls run against the session's real SeaweedFS."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual, In, LessThan

from consumers.access import (Filter, PullError, PullResult, _constant_keeps, _expression, _prune_expression,
                              _year_filters, dataset_entry, parse_where, pull, pull_table, write_pull)
from consumers.evidence import write_curated
from ioxhub.errors import IoxhubError
from ioxhub.storage import ObjectStore
from ioxhub.tables import tables_for
from table_writes import commit_snapshot


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


def test_constant_columns_keep_or_drop_the_whole_dataset():
    assert _constant_keeps("WCO", [Filter("org", "=", ("WCO",))]) and not _constant_keeps("WHO", [Filter("org", "=", ("WCO",))])
    assert _constant_keeps("WCO", [Filter("org", "in", ("WHO", "WCO"))])
    assert not _constant_keeps("WCO", [Filter("org", "!=", ("WCO",))])
    assert _constant_keeps("seizures", [Filter("dataset", ">=", ("s",))])


def test_year_filters_become_period_start_ranges():
    assert _year_filters(parse_where(["year>=2015", "year>2015", "year<2015", "year<=2015"])) == [
        Filter("period_start", ">=", ("2015-01-01",)), Filter("period_start", ">=", ("2016-01-01",)),
        Filter("period_start", "<", ("2015-01-01",)), Filter("period_start", "<", ("2016-01-01",))]
    assert _year_filters(parse_where(["year=2015"])) == [Filter("period_start", ">=", ("2015-01-01",)),
                                                         Filter("period_start", "<", ("2016-01-01",))]
    several = parse_where(["year=in:2015,2017", "year!=2016"])       # not one range: filters of the year column
    assert _year_filters(several) == several
    with pytest.raises(PullError, match=r"--where year='x': not a valid year"):
        _year_filters(parse_where(["year=x"]))


def test_filters_become_one_iceberg_pruning_expression():
    schema = pa.schema([("ref_area", pa.string()), ("year", pa.int32()), ("day", pa.date32()),
                        ("at", pa.timestamp("us", "UTC"))])
    got = _prune_expression(parse_where(["ref_area=FRA", "ref_area=DEU", "year>=2015", "year!=2016",
                                         "day<2020-01-01", "at=2026-01-01"]), schema)
    assert got == And(GreaterThanOrEqual("year", 2015), LessThan("day", dt.date(2020, 1, 1)),
                      In("ref_area", {"FRA", "DEU"}), EqualTo("at", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)))
    assert _prune_expression([], schema) == AlwaysTrue()
    assert _prune_expression(parse_where(["year!=2016"]), schema) == AlwaysTrue()    # != prunes nothing
    with pytest.raises(PullError, match=r"--where year>='x': not a valid int32"):
        _prune_expression(parse_where(["year>=x"]), schema)


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
        time.sleep(1.1 if snapshot == 1 else 0)     # snapshot times are shown to the second: one second apart
    return name, store


@pytest.fixture(scope="module")
def harmonized(stack_settings):
    """A harmonized-shaped dataset partitioned by year(period_start), one file per year."""
    store = ObjectStore(stack_settings)
    org, dataset_id = "TST", f"access_{uuid.uuid4().hex[:8]}"
    years = [2014, 2015, 2015, 2016, 2017, 2017]
    table = pa.table({
        "indicator": ["TST.X"] * 6, "ref_area": ["FRA", "FRA", "DEU", "FRA", "DEU", "FRA"],
        "period": [str(y) for y in years], "period_start": pa.array([dt.date(y, 1, 1) for y in years]),
        "value": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    name = f"{org}.{dataset_id}"
    commit_snapshot(store, name, table, {"kind": "harmonized", "org": org, "dataset_id": dataset_id},
                    partition_by=[("period_start", "year")])
    return name, store, dataset_id


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
    by_id = pull_table(name, ["ref_area=FRA"], ["value"], as_of=str(old.snapshot_id), store=store)
    assert by_id.snapshot == 1 and by_id.table.equals(old.table)
    current = pull_table(name, ["ref_area=FRA"], ["value"], store=store)
    assert current.snapshot == 2 and current.snapshot_id != old.snapshot_id
    created = {s["snapshot"]: s["created_at"] for s in dataset_entry(name, store=store)["snapshots"]}
    for number, shown in created.items():         # a time as `ioxhub datasets` shows it names that snapshot
        assert pull_table(name, as_of=shown, store=store).snapshot == number
        assert pull_table(name, as_of=shown[:19], store=store).snapshot == number          # no zone: UTC
    tomorrow = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).date().isoformat()
    assert pull_table(name, as_of=tomorrow, store=store).snapshot_id == current.snapshot_id
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
    with pytest.raises(PullError, match=rf"{name[:5]}.* has no snapshot 7 \(snapshots kept: 1\.\.2; or give a snapshot id\)"):
        pull_table(name, as_of="7", store=store)
    with pytest.raises(PullError, match=rf"has no snapshot as of 2000-01-01 \(first kept: "):
        pull_table(name, as_of="2000-01-01", store=store)
    with pytest.raises(PullError, match=r"--as-of 'last week': expected a snapshot number, a snapshot id or an ISO"):
        pull_table(name, as_of="last week", store=store)


@pytest.mark.integration
def test_harmonized_pull_adds_org_dataset_year_and_prunes_years(harmonized):
    name, store, dataset_id = harmonized
    every = pull_table(name, store=store)
    assert every.table.column_names == ["indicator", "ref_area", "period", "period_start", "value"]
    assert every.objects_read == 4 and every.table["period"].to_pylist() == ["2014", "2015", "2015", "2016", "2017", "2017"]
    got = pull_table(name, ["year>=2015", "year<2017", "ref_area=FRA"], ["org", "dataset", "year", "value"], store=store)
    assert got.table.schema == pa.schema([("org", pa.string()), ("dataset", pa.string()), ("year", pa.string()),
                                          ("value", pa.float64())])
    assert got.table.to_pylist() == [{"org": "TST", "dataset": dataset_id, "year": "2015", "value": 2.0},
                                     {"org": "TST", "dataset": dataset_id, "year": "2016", "value": 4.0}]
    assert got.objects_read == 2 and got.bytes_read < every.bytes_read        # 2014 and 2017 pruned by Iceberg
    assert pull_table(name, ["year=2017"], ["value"], store=store).objects_read == 1
    several = pull_table(name, ["year=in:2014,2017", "year!=2014"], ["year", "value"], store=store)
    assert several.table.to_pylist() == [{"year": "2017", "value": 5.0}, {"year": "2017", "value": 6.0}]
    assert pull_table(name, ["org=TST"], store=store).table.num_rows == 6
    nothing = pull_table(name, ["org=WHO"], store=store)
    assert nothing.objects_read == 0 and nothing.table.num_rows == 0
    with pytest.raises(PullError, match=r"--where year='20x1': not a valid year"):
        pull_table(name, ["year=20x1"], store=store)
    assert pull_table(name, as_of="1", store=store).table.num_rows == 6      # harmonized snapshots are addressable
