"""The download encodings of consumers/stream.py, batch by batch: one valid document whatever the batches."""
from __future__ import annotations

import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from consumers.access import PullPlan
from consumers.stream import _csv, _json, _jsonl, _parquet

SCHEMA = pa.schema([("ref_area", pa.string()), ("year", pa.int32()), ("value", pa.float64())])
BATCHES = [pa.table({"ref_area": ["FRA", "DEU"], "year": pa.array([2020, 2021], pa.int32()), "value": [1.5, None]},
                    schema=SCHEMA),
           pa.table({"ref_area": ["ITA"], "year": pa.array([2022], pa.int32()), "value": [2.0]}, schema=SCHEMA)]
WHOLE = pa.concat_tables(BATCHES)


def plan() -> PullPlan:
    return PullPlan("x", {}, 3, ["k"], 100, SCHEMA.names, [], [], SCHEMA, snapshot_id=7001)


def test_csv_and_jsonl_equal_the_whole_table_written_at_once():
    csv = b"".join(_csv(iter(BATCHES), plan())).decode()
    assert csv == 'ref_area,year,value\n"FRA",2020,1.5\n"DEU",2021,\n"ITA",2022,2\n'   # pyarrow's writer
    assert csv == b"".join(_csv(iter([WHOLE]), plan())).decode()
    assert pd.read_csv(io.StringIO(csv)).equals(WHOLE.to_pandas().astype({"year": "int64"}))
    assert b"".join(_jsonl(iter(BATCHES), plan())).decode() == \
        WHOLE.to_pandas().to_json(orient="records", lines=True, date_format="iso")
    assert b"".join(_csv(iter([]), plan())).decode() == "ref_area,year,value\n"      # no row: the header


def test_csv_quotes_strings_and_odd_column_names_and_keeps_types_readable():
    table = pa.table({"a,b": ['x"y', "1,2", None], "when": pa.array([0, 1, None], pa.timestamp("s", tz="UTC")),
                      "ok": [True, False, None]})
    text = b"".join(_csv(iter([table]), PullPlan("x", {}, 1, [], 0, table.column_names, [], [], table.schema))).decode()
    assert text.splitlines() == ['"a,b","when","ok"', '"x""y",1970-01-01 00:00:00Z,true',
                                 '"1,2",1970-01-01 00:00:01Z,false', ',,']
    back = pd.read_csv(io.StringIO(text))
    assert back["a,b"].tolist()[:2] == ['x"y', "1,2"] and str(pd.to_datetime(back["when"]).iloc[1]) == "1970-01-01 00:00:01+00:00"


def test_json_is_one_document_with_count_and_cursor():
    doc = json.loads(b"".join(_json(iter(BATCHES), plan(), lambda n: f"next-{n}")))
    assert doc == {"dataset": "x", "snapshot": 3, "snapshot_id": 7001, "columns": ["ref_area", "year", "value"],
                   "rows": [{"ref_area": "FRA", "year": 2020, "value": 1.5}, {"ref_area": "DEU", "year": 2021, "value": None},
                            {"ref_area": "ITA", "year": 2022, "value": 2.0}], "count": 3, "next_cursor": "next-3"}
    assert json.loads(b"".join(_json(iter([]), plan(), lambda n: None)))["rows"] == []


def test_parquet_is_one_file_written_row_group_by_row_group():
    data = b"".join(_parquet(iter(BATCHES), plan()))
    back = pq.ParquetFile(io.BytesIO(data))
    assert back.read().equals(WHOLE) and back.num_row_groups == 2
    assert pq.read_table(io.BytesIO(b"".join(_parquet(iter([]), plan())))).schema == SCHEMA
