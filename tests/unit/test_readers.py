"""Readers: each format into bounded Arrow batches with exact source lines; malformed files -> one error."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from producers.filecheck import SourceError
from producers.readers import open_source

HEADER = "INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,NOTE\n"


def read_all(src, columns=None, value="OBS_VALUE"):
    batches = list(src.batches(columns or src.columns, value))
    table = pa.concat_tables([b.table.cast(pa.schema([(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                                                        for f in b.table.schema])) for b in batches])
    lines = np.concatenate([b.lines for b in batches]) if batches else np.zeros(0, np.int64)
    rejects = [r for b in batches if b.rejects is not None for r in b.rejects.to_pylist()]
    return batches, table, lines, rejects


def write(tmp_path, name, text, mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# -------------------------------------------------------------------------------------------------- CSV
def test_csv_columns_types_and_lines(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "SEIZ,FRA,2024,1.5,x\nSEIZ,DEU,2024,,\nSEIZ,ITA,2023,7,y\n")
    src = open_source(path)
    assert src.format == "csv" and src.columns == ["INDICATOR", "REF_AREA", "TIME_PERIOD", "OBS_VALUE", "NOTE"]
    batches, table, lines, rejects = read_all(src)
    assert pa.types.is_dictionary(batches[0].table["REF_AREA"].type)      # text columns come dictionary-encoded
    assert batches[0].table["OBS_VALUE"].type == pa.float64()
    assert table["REF_AREA"].to_pylist() == ["FRA", "DEU", "ITA"]
    assert table["OBS_VALUE"].to_pylist() == [1.5, None, 7.0]
    assert table["NOTE"].to_pylist() == ["x", None, "y"]
    assert lines.tolist() == [2, 3, 4] and rejects == []
    assert batches[-1].bytes_read == path.stat().st_size


def test_csv_non_numeric_value_falls_back_to_text(tmp_path):
    path = write(tmp_path, "a.csv", HEADER + "SEIZ,FRA,2024,n/a,\nSEIZ,DEU,2024,3,\n")
    _, table, _, _ = read_all(open_source(path))
    assert table["OBS_VALUE"].to_pylist() == ["n/a", "3"]


def test_csv_quoted_newlines_blank_lines_and_malformed_rows_keep_exact_lines(tmp_path):
    text = (HEADER
            + 'SEIZ,FRA,2024,1,"a note\nover two lines"\n'     # lines 2-3
            + "\n"                                              # line 4: blank
            + "SEIZ,DEU,2024,2,b\n"                             # line 5
            + "SEIZ,ITA,2024,3\n"                               # line 6: 4 fields
            + "SEIZ,ESP,2024,4,c\n")                            # line 7
    path = write(tmp_path, "q.csv", text)
    _, table, lines, rejects = read_all(open_source(path))
    assert table["REF_AREA"].to_pylist() == ["FRA", "DEU", "ESP"]
    assert table["NOTE"].to_pylist() == ["a note\nover two lines", "b", "c"]
    assert lines.tolist() == [2, 5, 7]
    assert [(r["line"], r["reason"]) for r in rejects] == [(6, "malformed row: expected 5 fields, found 4")]
    assert rejects[0]["value"] == "SEIZ,ITA,2024,3" and rejects[0]["file"] == str(path)


def test_csv_small_blocks_never_split_a_quoted_record(tmp_path):
    rows = [f'SEIZ,FRA,2024,{i},"line one\nline ""two"" {i}"\n' for i in range(300)]
    path = write(tmp_path, "b.csv", HEADER + "".join(rows))
    src = open_source(path, block_size=256)
    batches, table, lines, rejects = read_all(src)
    assert len(batches) > 20 and rejects == []
    assert table["OBS_VALUE"].to_pylist() == [float(i) for i in range(300)]
    assert table["NOTE"][299].as_py() == 'line one\nline "two" 299'
    assert lines.tolist() == list(range(2, 2 + 600, 2))


def test_csv_streams_in_bounded_batches(tmp_path):
    path = write(tmp_path, "big.csv", HEADER + "".join(f"SEIZ,FRA,2024,{i},\n" for i in range(20_000)))
    src = open_source(path, block_size=16 << 10)
    batches, table, lines, _ = read_all(src)
    assert len(batches) > 10
    assert max(b.table.num_rows for b in batches) < 2_000        # 16 kB of ~19-byte rows per batch
    assert table.num_rows == 20_000 and lines.tolist() == list(range(2, 20_002))
    assert [b.bytes_read for b in batches] == sorted(b.bytes_read for b in batches)


def test_csv_delimiter_bom_and_leading_blank_lines(tmp_path):
    path = write(tmp_path, "s.csv", b"\xef\xbb\xbf\n" + b"A;B;OBS_VALUE\n1;x;2,5\n", mode="wb")
    src = open_source(path)
    assert src.columns == ["A", "B", "OBS_VALUE"]
    _, table, lines, _ = read_all(src)
    assert table["B"].to_pylist() == ["x"] and lines.tolist() == [3]
    assert table["OBS_VALUE"].to_pylist() == ["2,5"]           # a decimal comma is not a number here


def test_sdmx_csv_is_recognized_and_checked(tmp_path):
    path = write(tmp_path, "d.csv", "DATAFLOW,REF_AREA,TIME_PERIOD,OBS_VALUE\nWCO:DF(1.0),FRA,2024,NaN\n")
    src = open_source(path)
    assert src.format == "sdmx-csv" and src.nan_is_missing
    not_sdmx = write(tmp_path, "e.csv", HEADER + "SEIZ,FRA,2024,1,\n")
    with pytest.raises(SourceError, match="not SDMX-CSV: the first column is 'INDICATOR'"):
        open_source(not_sdmx, "sdmx-csv")


@pytest.mark.parametrize("content, fmt, message", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "csv", "looks binary (NUL bytes, the first at byte 8)"),
    (b'{"a": 1}\n', "csv", "expected CSV text, but the file looks like JSON"),
    (b"<?xml version='1.0'?><a/>", "csv", "expected CSV text, but the file looks like XML"),
    (b"", "csv", "is empty (0 bytes)"),
    (b"\n\n  \n", "jsonl", "holds only blank space (expected JSON Lines)"),
    (b'[{"a": 1}]', "jsonl", "a JSON array"),
    (b"a,b\n1,2\n", "jsonl", "expected JSON Lines, but the file looks like plain text"),
    (b'{"REF_AREA": "FRA"}\n', "sdmx-ml", "expected an SDMX-ML 2.1 or 3.0 XML data message, but the file looks like JSON"),
    (b"<html><body>not sdmx</body></html>", "sdmx-ml", "not an SDMX-ML data message"),
    (b"a,b\n1,2\n", "parquet", "unknown format 'parquet'"),
])
def test_wrong_format_is_one_clear_error(tmp_path, content, fmt, message):
    path = write(tmp_path, "input.data", content, mode="wb")
    with pytest.raises(SourceError) as err:
        open_source(path, fmt)
    assert message in str(err.value) and str(path) in str(err.value)


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(SourceError, match="cannot tell the format"):
        open_source(write(tmp_path, "x.dat", "a,b\n"))
    with pytest.raises(SourceError, match="data file not found"):
        open_source(tmp_path / "nope.csv")


def test_invalid_utf8_names_the_line(tmp_path):
    path = write(tmp_path, "l.csv", HEADER.encode() + b"SEIZ,FRA,2024,1,ok\nSEIZ,C\xf4te,2024,2,x\n", mode="wb")
    with pytest.raises(SourceError, match=r"not UTF-8 text \(byte 0xF4 at line 3, column 7\); save it as UTF-8"):
        open_source(path)      # seen in the first 64 kB


def test_duplicate_header_is_refused(tmp_path):
    with pytest.raises(SourceError, match="repeats column"):
        open_source(write(tmp_path, "h.csv", "A,B,A\n1,2,3\n"))


# -------------------------------------------------------------------------------------------- JSON Lines
def test_jsonl_fast_path_and_lines(tmp_path):
    rows = [{"ind": "X", "area": "FRA", "period": 2024, "v": 1.5}, {"ind": "X", "area": "DEU", "period": 2023, "v": 2}]
    path = write(tmp_path, "a.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    src = open_source(path)
    assert src.format == "jsonl" and src.columns == ["ind", "area", "period", "v"]
    _, table, lines, rejects = read_all(src, value="v")
    assert table["area"].to_pylist() == ["FRA", "DEU"]
    assert table["period"].to_pylist() == ["2024", "2023"]
    assert table["v"].to_pylist() == [1.5, 2.0]
    assert lines.tolist() == [1, 2] and rejects == []


def test_jsonl_mixed_types_blank_lines_and_broken_lines(tmp_path):
    text = ('{"area": "FRA", "v": 1}\n'
            '\n'
            '{"area": "DEU", "v": "n/a"}\n'        # line 3: value changes type
            '{"area": "ITA", "v": 3\n'             # line 4: broken JSON
            '{"area": {"x": 1}, "v": 3}\n'         # line 5: nested
            '{"area": "ESP"}\n')                   # line 6: value absent
    path = write(tmp_path, "m.jsonl", text)
    _, table, lines, rejects = read_all(open_source(path), columns=["area", "v"], value="v")
    assert table["area"].to_pylist() == ["FRA", "DEU", "ESP"]
    assert table["v"].to_pylist() == ["1", "n/a", None]
    assert lines.tolist() == [1, 3, 6]
    assert [(r["line"], r["field"]) for r in rejects] == [(4, ""), (5, "area")]
    assert rejects[0]["reason"].startswith("not valid JSON")


def test_jsonl_first_line_not_json_is_a_file_error(tmp_path):
    with pytest.raises(SourceError, match="line 1: not JSON Lines"):
        open_source(write(tmp_path, "b.jsonl", "{not json}\n"))


# ----------------------------------------------------------------------------------------------- SDMX-ML
GENERIC = """<?xml version="1.0" encoding="UTF-8"?>
<message:GenericData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"
    xmlns:generic="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/generic"
    xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common">
  <message:Header>
    <message:ID>TEST</message:ID>
    <message:Test>true</message:Test>
    <message:Prepared>2025-01-01T00:00:00</message:Prepared>
    <message:Sender id="WCO"/>
    <message:Structure structureID="DSD_SEIZ" dimensionAtObservation="TIME_PERIOD">
      <common:Structure><Ref agencyID="WCO" id="DSD_SEIZ" version="1.0"/></common:Structure>
    </message:Structure>
  </message:Header>
  <message:DataSet structureRef="DSD_SEIZ">
    <generic:Series>
      <generic:SeriesKey>
        <generic:Value id="INDICATOR" value="SEIZ"/>
        <generic:Value id="REF_AREA" value="FRA"/>
      </generic:SeriesKey>
      <generic:Attributes><generic:Value id="UNIT_MEASURE" value="KG"/></generic:Attributes>
      <generic:Obs>
        <generic:ObsDimension value="2024"/>
        <generic:ObsValue value="1.5"/>
        <generic:Attributes><generic:Value id="OBS_STATUS" value="A"/></generic:Attributes>
      </generic:Obs>
      <generic:Obs>
        <generic:ObsDimension value="2025"/>
        <generic:ObsValue value="NaN"/>
      </generic:Obs>
    </generic:Series>
    <generic:Series>
      <generic:SeriesKey>
        <generic:Value id="INDICATOR" value="SEIZ"/>
        <generic:Value id="REF_AREA" value="DEU"/>
      </generic:SeriesKey>
      <generic:Obs>
        <generic:ObsDimension value="2024"/>
        <generic:ObsValue value="7"/>
      </generic:Obs>
    </generic:Series>
  </message:DataSet>
</message:GenericData>
"""

STRUCTURE_SPECIFIC = """<?xml version="1.0" encoding="UTF-8"?>
<message:StructureSpecificData xmlns:message="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/message"
    xmlns:ss="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/data/structurespecific"
    xmlns:common="http://www.sdmx.org/resources/sdmxml/schemas/v2_1/common"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <message:Header>
    <message:ID>TEST</message:ID>
    <message:Test>true</message:Test>
    <message:Prepared>2025-01-01T00:00:00</message:Prepared>
    <message:Sender id="WCO"/>
    <message:Structure structureID="WCO_DSD_SEIZ_1_0" namespace="urn:x" dimensionAtObservation="TIME_PERIOD">
      <common:Structure><Ref agencyID="WCO" id="DSD_SEIZ" version="1.0"/></common:Structure>
    </message:Structure>
  </message:Header>
  <message:DataSet ss:structureRef="WCO_DSD_SEIZ_1_0">
    <Series INDICATOR="SEIZ" REF_AREA="FRA" UNIT_MEASURE="KG">
      <Obs TIME_PERIOD="2024" OBS_VALUE="1.5" OBS_STATUS="A"/>
      <Obs TIME_PERIOD="2025" OBS_VALUE="2"/>
    </Series>
  </message:DataSet>
</message:StructureSpecificData>
"""


def test_sdmx_ml_generic_with_series_attributes_and_obs_lines(tmp_path):
    path = write(tmp_path, "g.xml", GENERIC)
    src = open_source(path)
    assert src.format == "sdmx-ml" and src.nan_is_missing
    assert {"INDICATOR", "REF_AREA", "TIME_PERIOD", "OBS_VALUE", "UNIT_MEASURE", "OBS_STATUS"} <= set(src.columns)
    _, table, lines, _ = read_all(src, value=None)
    assert table["REF_AREA"].to_pylist() == ["FRA", "FRA", "DEU"]
    assert table["TIME_PERIOD"].to_pylist() == ["2024", "2025", "2024"]
    assert table["OBS_VALUE"].to_pylist() == ["1.5", "NaN", "7"]
    assert table["UNIT_MEASURE"].to_pylist() == ["KG", "KG", None]     # series attribute reaches its obs
    assert table["OBS_STATUS"].to_pylist() == ["A", None, None]
    obs_lines = [i for i, text in enumerate(GENERIC.splitlines(), start=1) if "<generic:Obs>" in text]
    assert lines.tolist() == obs_lines


def test_sdmx_ml_structure_specific_without_dsd(tmp_path):
    src = open_source(write(tmp_path, "s.xml", STRUCTURE_SPECIFIC))
    _, table, lines, _ = read_all(src, value=None)
    assert table["OBS_VALUE"].to_pylist() == ["1.5", "2"]
    assert table["UNIT_MEASURE"].to_pylist() == ["KG", "KG"]
    assert lines.tolist() == [17, 18]


def test_invalid_utf8_deep_in_the_file_names_the_line(tmp_path):
    body = b"".join(b"SEIZ,FRA,2024,%d,ok\n" % i for i in range(5000))
    path = write(tmp_path, "deep.csv", HEADER.encode() + body + b"SEIZ,C\xf4te,2024,2,x\n", mode="wb")
    src = open_source(path, block_size=8 << 10)
    with pytest.raises(SourceError, match=r"not UTF-8 text \(byte 0xF4 at line 5002, column 7\)"):
        read_all(src)
