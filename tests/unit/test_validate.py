"""Validation: every reason reported with file, line and field; good rows kept as published."""
from __future__ import annotations

import pytest

from producers.mapping import ColumnMapping, MappingError
from producers.readers import open_source
from producers.validate import check_constants, validate_batch

HEADER = "IND,AREA,PARTNER,HS,PERIOD,VALUE,UNIT,MULT,STATUS,NOTE\n"
MAPPING = {"indicator": "IND", "ref_area": "AREA", "counterpart_area": "PARTNER", "commodity": "HS",
           "period": "PERIOD", "value": "VALUE", "unit": "UNIT", "unit_mult": "MULT", "obs_status": "STATUS",
           "attributes": {"NOTE": "NOTE"}}


def run(tmp_path, rows, mapping=None, name="f.csv", fmt=None):
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    src = open_source(path, fmt)
    m = ColumnMapping.from_dict(mapping or MAPPING).resolve(src.columns, src.name)
    value = m.fields["value"].column
    results = [validate_batch(b, m, path.name, nan_is_missing=src.nan_is_missing) for b in src.batches(m.source_columns(), value)]
    assert len(results) == 1
    return results[0]


def texts(obs, field):
    col = obs.text[field] if field in obs.text else obs.attributes[field]
    d = col.dictionary.to_pylist()
    return [d[i] if i >= 0 else None for i in col.indices]


def rejects_of(result):
    return [(r["file"], r["line"], r["field"], r["value"], r["reason"]) for r in result.rejects.to_pylist()] if result.rejects else []


GOOD = "SEIZ,FRA,DEU,3825,2024,1.5,KG,0,A,ok"


@pytest.mark.parametrize("row, field, value, reason", [
    (",FRA,DEU,3825,2024,1,KG,0,A,", "indicator", None, "missing-indicator"),
    ("SEIZ,,DEU,3825,2024,1,KG,0,A,", "ref_area", None, "missing-ref-area"),
    ("SEIZ,Atlantis,DEU,3825,2024,1,KG,0,A,", "ref_area", "Atlantis", "unknown-country"),
    ("SEIZ,FRA,XXX,3825,2024,1,KG,0,A,", "counterpart_area", "XXX", "unknown-country"),
    ("SEIZ,FRA,DEU,3899,2024,1,KG,0,A,", "commodity", "3899", "unknown-hs-code"),
    ("SEIZ,FRA,DEU,3825,,1,KG,0,A,", "period", None, "missing-period"),
    ("SEIZ,FRA,DEU,3825,2024-Q5,1,KG,0,A,", "period", "2024-Q5", "bad-period"),
    ("SEIZ,FRA,DEU,3825,2024,n/a,KG,0,A,", "value", "n/a", "not-a-number"),
    ("SEIZ,FRA,DEU,3825,2024,\"1,200\",KG,0,A,", "value", "1,200", "not-a-number"),
    ("SEIZ,FRA,DEU,3825,2024,1e999,KG,0,A,", "value", "inf", "not-a-number"),   # parsed as a number: inf
    ("SEIZ,FRA,DEU,3825,2024,1,KG,2.5,A,", "unit_mult", "2.5", "bad-unit-mult"),
    ("SEIZ,FRA,DEU,3825,2024,1,KG,thousand,A,", "unit_mult", "thousand", "bad-unit-mult"),
    ("SEIZ,FRA,DEU,3825,2024,1,KG,40,A,", "unit_mult", "40", "bad-unit-mult"),
])
def test_each_reason_names_file_line_field(tmp_path, row, field, value, reason):
    result = run(tmp_path, [GOOD, row, GOOD])
    assert rejects_of(result) == [("f.csv", 3, field, value, reason)]
    assert result.rejected_rows == 1
    assert result.observations.lines.tolist() == [2, 4]


def test_good_rows_are_sent_as_published(tmp_path):
    result = run(tmp_path, ["SEIZ,France,Germany,0301.11,2024-M03, 12.5 ,kilograms,3,E,x",
                            "SEIZ,fr,276,30,2024-Q1,,KG,,,"])
    obs = result.observations
    assert result.rejects is None
    assert texts(obs, "ref_area") == ["France", "fr"]                  # not rewritten to FRA
    assert texts(obs, "counterpart_area") == ["Germany", "276"]
    assert texts(obs, "commodity") == ["0301.11", "30"]
    assert texts(obs, "period") == ["2024-M03", "2024-Q1"]
    assert texts(obs, "unit") == ["kilograms", "KG"]                   # units are ingest's check
    assert texts(obs, "obs_status") == ["E", None]
    assert texts(obs, "NOTE") == ["x", None]
    assert obs.value.tolist() == [12.5, 0.0] and obs.missing.tolist() == [False, True]
    assert obs.unit_mult.tolist() == [3, 0]


def test_several_bad_fields_in_one_row_count_the_row_once(tmp_path):
    result = run(tmp_path, ["SEIZ,Atlantis,DEU,3825,1999-13,abc,KG,0,A,"])
    assert {r[2] for r in rejects_of(result)} == {"ref_area", "period", "value"}
    assert result.rejected_rows == 1 and len(result.observations) == 0


def test_nan_is_missing_only_for_sdmx(tmp_path):
    plain = run(tmp_path, ["SEIZ,FRA,DEU,3825,2024,NaN,KG,0,A,"])
    assert rejects_of(plain)[0][2:] == ("value", "nan", "not-a-number")
    sdmx_rows = "DATAFLOW,REF_AREA,TIME_PERIOD,OBS_VALUE,INDICATOR,UNIT_MEASURE\nDF,FRA,2024,NaN,SEIZ,KG\nDF,DEU,2024,3,SEIZ,KG\n"
    path = tmp_path / "s.csv"
    path.write_text(sdmx_rows)
    src = open_source(path)
    m = ColumnMapping().resolve(src.columns, src.name)
    result = validate_batch(next(src.batches(m.source_columns(), "OBS_VALUE")), m, "s.csv", nan_is_missing=src.nan_is_missing)
    assert result.rejects is None
    assert result.observations.missing.tolist() == [True, False]


def test_defaults_and_constants(tmp_path):
    mapping = {**MAPPING, "unit": {"const": "KG"}, "defaults": {"obs_status": "A", "unit_mult": 3},
               "indicator": {"const": "WCO.SEIZURES"}}
    result = run(tmp_path, ["x,FRA,,,2024,1,ignored,,,", "x,FRA,,,2024,2,ignored,1,E,"], mapping=mapping)
    obs = result.observations
    assert texts(obs, "indicator") == ["WCO.SEIZURES"] * 2
    assert texts(obs, "unit") == ["KG", "KG"]
    assert texts(obs, "obs_status") == ["A", "E"]
    assert obs.unit_mult.tolist() == [3, 1]
    assert texts(obs, "counterpart_area") == [None, None]


def test_blank_cells_are_absent(tmp_path):
    result = run(tmp_path, ["SEIZ,  ,DEU,3825,2024,1,KG,0,A,"])
    assert rejects_of(result) == [("f.csv", 2, "ref_area", None, "missing-ref-area")]


def test_a_mapping_file_with_a_key_twice_is_refused_at_its_line(tmp_path):
    path = tmp_path / "f.mapping.yaml"
    path.write_text("indicator: IND\nref_area: AREA\nperiod: PERIOD\nref_area: OTHER\n")
    with pytest.raises(MappingError, match=r"f\.mapping\.yaml:4: duplicate key 'ref_area' \(also on line 2\)$"):
        ColumnMapping.from_file(path)


@pytest.mark.parametrize("mapping, message", [
    ({**MAPPING, "ref_area": {"const": "Atlantis"}}, "Atlantis' is refused: unknown-country"),
    ({**MAPPING, "unit_mult": {"const": "x"}}, "is not an integer in -18..18"),
    ({**MAPPING, "defaults": {"period": "2024-Q9"}}, "defaults.period = '2024-Q9' is refused: bad-period"),
    ({**MAPPING, "value": {"const": "many"}}, "is not a number"),
])
def test_bad_constants_are_refused_up_front(mapping, message):
    with pytest.raises(MappingError, match=message):
        check_constants(ColumnMapping.from_dict(mapping))


def test_reader_rejects_are_carried_into_the_result(tmp_path):
    result = run(tmp_path, [GOOD, "SEIZ,FRA,2024"])
    assert [(r[1], r[4]) for r in rejects_of(result)] == [(3, "malformed row: expected 10 fields, found 3")]
    assert result.rejected_rows == 1 and len(result.observations) == 1


def test_jsonl_values_of_mixed_types(tmp_path):
    path = tmp_path / "v.jsonl"
    path.write_text('{"i":"S","a":"FRA","p":"2024","v":1}\n{"i":"S","a":"FRA","p":"2025","v":"2.5"}\n'
                    '{"i":"S","a":"FRA","p":"2026","v":"lots"}\n{"i":"S","a":"FRA","p":"2027","v":null}\n')
    src = open_source(path)
    m = ColumnMapping.from_dict({"indicator": "i", "ref_area": "a", "period": "p", "value": "v"}).resolve(src.columns, "v.jsonl")
    result = validate_batch(next(src.batches(m.source_columns(), "v")), m, "v.jsonl")
    assert rejects_of(result) == [("v.jsonl", 3, "value", "lots", "not-a-number")]
    assert result.observations.value.tolist() == [1.0, 2.5, 0.0]
    assert result.observations.missing.tolist() == [False, False, True]


def test_mapping_errors_name_the_problem(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + GOOD + "\n")
    src = open_source(path)
    with pytest.raises(MappingError, match=r"no source for required field\(s\) indicator, period, value"):
        ColumnMapping.from_dict({"ref_area": "AREA"}).resolve(src.columns, src.name)
    with pytest.raises(MappingError, match=r"ref_area -> 'COUNTRY'"):
        ColumnMapping.from_dict({**MAPPING, "ref_area": "COUNTRY"}).resolve(src.columns, src.name)
    with pytest.raises(MappingError, match="unknown field 'area'"):
        ColumnMapping.from_flags(["area=AREA"])
    flags = ColumnMapping.from_flags(["indicator=IND", "ref_area=AREA", "period=PERIOD", "value=VALUE",
                                      "attributes.NOTE=NOTE"], ["unit=KG"], ["obs_status=A"])
    resolved = flags.resolve(src.columns, src.name)
    assert resolved.attributes["NOTE"].column == "NOTE" and resolved.fields["unit"].const == "KG"
