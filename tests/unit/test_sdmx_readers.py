"""The SDMX readers on the corpus files (no servers): rows, columns, dimensions, attributes, ACTION, and
the SDMX-CSV rules (labels, decimal comma, multi-valued cells); zero-mapping and the proposed flags."""
from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from producers.filecheck import SourceError
from producers.mapping import ColumnMapping, MappingError
from producers.readers import open_source
from producers.readers.structure import load_structure

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "sdmx"
ECB_DSD = CORPUS / "ecb_exr_ss21" / "ecb_exr1_dsd.xml"


def rows(path, structure=None, value="OBS_VALUE"):
    src = open_source(path, structure=load_structure(structure) if structure else None)
    batches = list(src.batches(src.columns, value))
    table = pa.concat_tables([b.table for b in batches])
    rejected = [r for b in batches if b.rejects is not None for r in b.rejects.to_pylist()]
    lines = [int(x) for b in batches for x in b.lines]
    return src, table.to_pylist(), lines, rejected


# (file, structure, format, rows, dimensions, attributes, action column): counted by hand from each file.
CASES = [
    ("eurostat_nama_csv20/nama_10_gdp.csv", None, "sdmx-csv", 6, ("freq", "unit", "na_item", "geo"), ("OBS_FLAG", "CONF_STATUS"), None),
    ("ecb_exr_ss21/exr.xml", ECB_DSD, "sdmx-ml", 5, ("FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX"),
     ("TIME_FORMAT", "OBS_STATUS", "OBS_CONF", "COLLECTION", "DECIMALS", "TITLE", "UNIT", "UNIT_MULT"), None),   # DSD order
    ("imf_pcps_json10/pcps.json", None, "sdmx-json", 4, ("FREQ", "REF_AREA", "COMMODITY", "UNIT_MEASURE"), ("UNIT_MULT", "OBS_STATUS"), "ACTION"),
    ("imf_pcps_json20/pcps.json", None, "sdmx-json", 4, ("FREQ", "REF_AREA", "COMMODITY", "UNIT_MEASURE"), ("UNIT_MULT", "OBS_STATUS"), "ACTION"),
    ("oecd_csv20_labels/release1.csv", None, "sdmx-csv", 4, ("FREQ", "REF_AREA", "MEASURE", "UNIT_MEASURE", "PRICE_BASE"),
     ("UNIT_MULT", "OBS_STATUS"), "ACTION"),
    ("oecd_csv20_labels/release2.csv", None, "sdmx-csv", 2, ("FREQ", "REF_AREA", "MEASURE", "UNIT_MEASURE", "PRICE_BASE"),
     ("UNIT_MULT", "OBS_STATUS"), "ACTION"),
    ("un_wb_csv10/wdi_gdp.csv", None, "sdmx-csv", 5, ("FREQ", "REF_AREA", "INDICATOR"), ("UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS"), None),
    ("sdmx_ml30/data.xml", None, "sdmx-ml", 3, ("FREQ", "REF_AREA", "INDICATOR", "URBANISATION"), ("UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS"), None),
    ("generic21/ilo_emp.xml", None, "sdmx-ml", 3, ("FREQ", "REF_AREA", "INDICATOR", "SEX"), ("UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS"), None),
    ("hs2017_trade/trade.csv", None, "sdmx-csv", 4, ("FREQ", "REF_AREA", "COUNTERPART_AREA", "TRADE_FLOW", "COMMODITY"),
     ("UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS"), None),
]


@pytest.mark.parametrize("file, structure, fmt, n, dims, attrs, action", CASES, ids=[c[0] for c in CASES])
def test_each_corpus_file_reads_its_rows_and_structure(file, structure, fmt, n, dims, attrs, action):
    src, got, lines, rejected = rows(CORPUS / file, structure)
    assert (src.format, len(got), src.dimensions, src.attributes, src.action_column) == (fmt, n, dims, attrs, action)
    assert not rejected and len(lines) == n


def test_sdmx_csv_labels_decimal_comma_and_action():
    src, got, lines, _ = rows(CORPUS / "oecd_csv20_labels" / "release2.csv")
    assert src.layout.delimiter == ";" and src.layout.decimal_point == ","
    assert got[0] | {"STRUCTURE_ID": None, "STRUCTURE_NAME": None} == {
        "STRUCTURE": "dataflow", "STRUCTURE_ID": None, "STRUCTURE_NAME": None, "ACTION": "R", "FREQ": "A",
        "REF_AREA": "FRA", "MEASURE": "B1GQ", "UNIT_MEASURE": "USD", "PRICE_BASE": "V", "TIME_PERIOD": "2023",
        "OBS_VALUE": 2805112.4, "UNIT_MULT": "6", "OBS_STATUS": "A"}
    assert (got[1]["ACTION"], got[1]["REF_AREA"], got[1]["OBS_VALUE"]) == ("D", "DEU", None)
    assert lines == [2, 3]


def test_sdmx_json_and_ml_cells():
    _, pcps, _, _ = rows(CORPUS / "imf_pcps_json20" / "pcps.json")
    assert pcps[3] == {"ACTION": "I", "FREQ": "M", "REF_AREA": "W00", "COMMODITY": "PCOPP", "UNIT_MEASURE": "USD",
                       "UNIT_MULT": "0", "TIME_PERIOD": "2024-02", "OBS_VALUE": "8493.08", "OBS_STATUS": "E"}
    _, exr, lines, _ = rows(CORPUS / "ecb_exr_ss21" / "exr.xml", ECB_DSD)
    assert (exr[4]["CURRENCY"], exr[4]["EXR_SUFFIX"], exr[4]["UNIT"], exr[4]["OBS_VALUE"]) == ("USD", "E", "USD", "1.0837")
    assert lines == [14, 15, 18, 19, 22]          # each row's Obs element


def test_structure_specific_without_dsd_moves_known_attributes_out_of_the_key():
    src, _, _, _ = rows(CORPUS / "ecb_exr_ss21" / "exr.xml")
    assert src.dimensions == ("FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX")
    assert set(src.attributes) == {"TIME_FORMAT", "COLLECTION", "DECIMALS", "TITLE", "UNIT", "UNIT_MULT", "OBS_STATUS", "OBS_CONF"}


def test_multi_valued_cells_are_refused_and_one_value_brackets_unwrapped(tmp_path):
    path = tmp_path / "mv.csv"
    path.write_text("STRUCTURE,STRUCTURE_ID,ACTION,REF_AREA,INDICATOR,TIME_PERIOD,OBS_VALUE,COMMENT\n"
                    "dataflow,X:Y(1.0),I,FRA,GDP,2020,1.5,[a|b]\n"
                    "dataflow,X:Y(1.0),I,DEU,GDP,2020,2,[single]\n"
                    "dataflow,X:Y(1.0),I,[ITA|ESP],GDP,2020,3,[c|d]\n")
    _, got, lines, rejected = rows(path)
    assert [(r["REF_AREA"], r["COMMENT"]) for r in got] == [("DEU", "single")] and lines == [3]
    assert [(r["line"], r["field"], r["value"], r["reason"]) for r in rejected] == [
        (2, "COMMENT", "[a|b]", "multi-valued-cell"), (4, "REF_AREA", "[ITA|ESP]", "multi-valued-cell")]


def test_label_stripping_leaves_free_text_alone(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("DATAFLOW,REF_AREA: Reference area,INDICATOR: Indicator,TIME_PERIOD: Time,OBS_VALUE,COMMENT: Comment\n"
                    "X:Y(1.0),FRA: France,GDP: Gross domestic product,2020,1.5,Note: revised\n"
                    "X:Y(1.0),DEU: Germany,GDP: Gross domestic product,2020,2,plain\n")
    src, got, _, _ = rows(path)
    assert src.columns == ["DATAFLOW", "REF_AREA", "INDICATOR", "TIME_PERIOD", "OBS_VALUE", "COMMENT"]
    assert [(r["REF_AREA"], r["INDICATOR"], r["TIME_PERIOD"], r["COMMENT"]) for r in got] == [
        ("FRA", "GDP", "2020", "Note: revised"), ("DEU", "GDP", "2020", "plain")]


def test_semicolon_file_with_decimal_points_keeps_them(tmp_path):
    path = tmp_path / "dot.csv"
    path.write_text("STRUCTURE;STRUCTURE_ID;REF_AREA;INDICATOR;TIME_PERIOD;OBS_VALUE\ndataflow;X;FRA;GDP;2020;1.25\n")
    src, got, _, _ = rows(path)
    assert src.layout.decimal_point == "." and math.isclose(got[0]["OBS_VALUE"], 1.25)


def test_sdmx_json_is_told_from_json_lines(tmp_path):
    jsonl = tmp_path / "rows.json"
    jsonl.write_text('{"REF_AREA": "FRA", "OBS_VALUE": 1}\n')
    assert open_source(jsonl).format == "jsonl"
    assert open_source(CORPUS / "imf_pcps_json10" / "pcps.json").format == "sdmx-json"


def test_structure_file_errors_are_one_line(tmp_path):
    with pytest.raises(SourceError, match="holds no data structure definition|not an SDMX structure message"):
        load_structure(CORPUS / "generic21" / "ilo_emp.xml")
    with pytest.raises(SourceError, match="no such structure file"):
        load_structure(tmp_path / "nope.xml")
    plain = tmp_path / "plain.csv"
    plain.write_text("a,b\n1,2\n")
    with pytest.raises(SourceError, match="--structure applies to the SDMX formats, not to CSV"):
        open_source(plain, structure=load_structure(ECB_DSD))


def resolve(path, structure=None, mapping=None):
    src = open_source(path, structure=load_structure(structure) if structure else None)
    return (mapping or ColumnMapping()).resolve(src.columns, src.name, src.dimensions, src.attributes)


def test_zero_mapping_for_standard_concepts_and_the_indicator_fallback():
    eurostat = resolve(CORPUS / "eurostat_nama_csv20" / "nama_10_gdp.csv")
    assert {k: v.column for k, v in eurostat.fields.items()} == {
        "indicator": "na_item", "ref_area": "geo", "period": "TIME_PERIOD", "value": "OBS_VALUE", "unit": "unit"}
    trade = resolve(CORPUS / "hs2017_trade" / "trade.csv")
    assert trade.fields["indicator"].column == "TRADE_FLOW" and trade.fields["commodity"].column == "COMMODITY"
    ml30 = resolve(CORPUS / "sdmx_ml30" / "data.xml")
    assert (ml30.fields["indicator"].column, ml30.fields["unit"].column) == ("INDICATOR", "UNIT_MEASURE")


def test_no_indicator_lists_dimensions_and_proposes_flags():
    with pytest.raises(MappingError) as err:
        resolve(CORPUS / "ecb_exr_ss21" / "exr.xml", ECB_DSD)
    message = str(err.value)
    assert "\n" not in message
    assert "no source for required field(s) indicator, ref_area" in message
    assert "dimensions are FREQ, CURRENCY, CURRENCY_DENOM, EXR_TYPE, EXR_SUFFIX" in message
    assert "attributes TIME_FORMAT, OBS_STATUS, OBS_CONF, COLLECTION, DECIMALS, TITLE, UNIT, UNIT_MULT" in message
    assert "try --map indicator=EXR_TYPE --const ref_area=VALUE" in message
    with pytest.raises(MappingError, match="try --map indicator=COMMODITY"):
        resolve(CORPUS / "imf_pcps_json10" / "pcps.json")
    flags = ColumnMapping.from_flags(["indicator=EXR_TYPE"], ["ref_area=EA20"])
    assert resolve(CORPUS / "ecb_exr_ss21" / "exr.xml", ECB_DSD, flags).fields["unit"].column == "UNIT"


def test_a_structure_that_is_not_the_files_is_refused():
    with pytest.raises(SourceError, match=r"not data of the structure in ecb_exr1_dsd.xml: no column for its dimension\(s\) "
                                          "CURRENCY, CURRENCY_DENOM, EXR_TYPE, EXR_SUFFIX"):
        rows(CORPUS / "un_wb_csv10" / "wdi_gdp.csv", ECB_DSD)
    with pytest.raises(SourceError, match="not data of the structure"):
        rows(CORPUS / "imf_pcps_json20" / "pcps.json", ECB_DSD)
