"""Extra dimensions, ACTION and commodity classifications from the mapping to the harmonized row, without
servers: the mapping keys, the validation, the chunk on the wire (decoded fast and by fastavro) and
`harmonize_chunk`. Expected values are written out by hand from the small files below."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ioxhub.contracts import codec, dataset_chunk
from ioxhub.harmonize.dimensions import dimensions_column, format_dimensions, parse_dimensions
from ioxhub.ingest.observations import DELETED, harmonize_chunk
from producers.chunks import ChunkBuilder, ReleaseInfo
from producers.dimensions import KeyTracker, decide_commodity, hs_shaped
from producers.mapping import COMMODITY_DIMENSION, ColumnMapping, MappingError
from producers.publish import source_batches
from producers.readers import open_source
from producers.validate import validate_batch

EXR = """\
KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,REF_AREA
M.USD.EUR.SP00.A,M,USD,EUR,SP00,A,2024-01,1.0905,U2
M.JPY.EUR.SP00.A,M,JPY,EUR,SP00,A,2024-01,159.46,U2
M.USD.EUR.SP00.E,M,USD,EUR,SP00,E,2024-01,1.0875,U2
M.USD.EUR.SP00.A,M,USD,EUR,SP00,A,2024-02,1.0795,U2
"""
EXR_MAPPING = {"indicator": "EXR_TYPE", "ref_area": {"const": "DEU"}, "period": "TIME_PERIOD", "value": "OBS_VALUE",
               "unit": {"const": "NUMBER"}}


def source(tmp_path: Path, text: str, name: str = "f.csv", **attrs):
    path = tmp_path / name
    path.write_text(text)
    src = open_source(path)
    for key, value in attrs.items():
        setattr(src, key, value)
    return src


def validated(src, mapping: ColumnMapping):
    m = mapping.resolve(src.columns, src.name, src.dimensions, action_column=src.action_column)
    (_, m, batch), = list(source_batches([src], [m]))
    return m, validate_batch(batch, m, src.path.name)


def wire(observations, classification: str | None = None, extra_chunks: bool = False) -> list[dict]:
    """Encode into chunks, then decode each both ways (fast and fastavro) and check they agree."""
    info = ReleaseInfo("ECB", "EXR", "r1", 1_764_000_000_000, commodity_classification=classification)
    builder = ChunkBuilder(info)
    chunks = list(builder.add(observations)) + list(builder.finish())
    records = []
    for c in chunks:
        fast, slow = dataset_chunk.decode(c.value), codec.decode(c.value)
        assert fast.version == slow.version
        dataset_chunk.check_chunk(fast.record)
        for name in ("dimensions",):
            assert [(d["name"], list(d["values"])) for d in fast.record[name]] == \
                [(d["name"], list(d["values"])) for d in slow.record[name]]
        assert list(fast.record["action"]) == list(slow.record["action"])
        records.append(fast)
    return records


def harmonized_rows(decoded) -> list[dict]:
    result = harmonize_chunk(decoded.record, f"dataset_chunk/v{decoded.version}", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    table = result.harmonized
    return [{k: r[k] for k in ("indicator", "commodity", "dimensions", "period", "value", DELETED)}
            for r in table.to_pylist()], result.refused


# ------------------------------------------------------------------------------------------- mapping
def test_explicit_dimensions_travel_and_become_the_key_text(tmp_path):
    src = source(tmp_path, EXR)
    m, checked = validated(src, ColumnMapping.from_dict({**EXR_MAPPING, "dimensions": ["CURRENCY", "EXR_SUFFIX"]}))
    assert m.extra_dimensions == {"CURRENCY": "CURRENCY", "EXR_SUFFIX": "EXR_SUFFIX"}
    (decoded,) = wire(checked.observations)
    assert decoded.version == 2
    rows, refused = harmonized_rows(decoded)
    assert refused.num_rows == 0
    assert [(r["indicator"], r["dimensions"], r["period"], r["value"], r[DELETED]) for r in rows] == [
        ("SP00", "CURRENCY=USD|EXR_SUFFIX=A", "2024-01", 1.0905, False),
        ("SP00", "CURRENCY=JPY|EXR_SUFFIX=A", "2024-01", 159.46, False),
        ("SP00", "CURRENCY=USD|EXR_SUFFIX=E", "2024-01", 1.0875, False),
        ("SP00", "CURRENCY=USD|EXR_SUFFIX=A", "2024-02", 1.0795, False),
    ]


def test_auto_keeps_the_file_dimensions_not_mapped_to_a_field_and_not_freq(tmp_path):
    src = source(tmp_path, EXR, dimensions=("FREQ", "CURRENCY", "CURRENCY_DENOM", "EXR_TYPE", "EXR_SUFFIX"))
    m = ColumnMapping.from_dict(EXR_MAPPING).resolve(src.columns, src.name, src.dimensions)
    assert m.extra_dimensions == {"CURRENCY": "CURRENCY", "CURRENCY_DENOM": "CURRENCY_DENOM", "EXR_SUFFIX": "EXR_SUFFIX"}
    # the same from the flag, and an explicit list wins over the file's
    flags = ColumnMapping.from_flags(dims=["auto"])
    assert ColumnMapping.from_dict(EXR_MAPPING).merged(flags).resolve(src.columns, src.name, src.dimensions).extra_dimensions == \
        m.extra_dimensions
    only = ColumnMapping.from_dict(EXR_MAPPING).merged(ColumnMapping.from_flags(dims=["CURRENCY"]))
    assert only.resolve(src.columns, src.name, src.dimensions).extra_dimensions == {"CURRENCY": "CURRENCY"}


def test_a_plain_csv_without_dimensions_stays_v1_and_byte_identical(tmp_path):
    src = source(tmp_path, EXR)
    m, checked = validated(src, ColumnMapping.from_dict(EXR_MAPPING))
    assert m.extra_dimensions == {} and m.action is None
    (decoded,) = wire(checked.observations)
    assert decoded.version == 1
    rows, _ = harmonized_rows(decoded)
    assert {r["dimensions"] for r in rows} == {""}


@pytest.mark.parametrize("data, message", [
    ({"dimensions": "all"}, "dimensions must be 'auto'"),
    ({"dimensions": [""]}, "dimensions must be"),
    ({"action": 3}, "action must be a non-empty string"),
    ({"commodity_classification": ""}, "commodity_classification must be a non-empty string"),
])
def test_bad_mapping_keys_are_one_line_errors(data, message):
    with pytest.raises(MappingError, match=message):
        ColumnMapping.from_dict({**EXR_MAPPING, **data})


def test_a_dimension_column_not_in_the_file_is_named(tmp_path):
    src = source(tmp_path, EXR)
    with pytest.raises(MappingError, match=r"dimensions.COUNTERPART -> 'COUNTERPART'"):
        ColumnMapping.from_dict({**EXR_MAPPING, "dimensions": ["COUNTERPART"]}).resolve(src.columns, src.name)


def test_mapping_keys_are_part_of_the_release_identity_only_when_given():
    plain = ColumnMapping.from_dict(EXR_MAPPING).canonical()
    assert "dimensions" not in plain and "action" not in plain
    assert ColumnMapping.from_dict({**EXR_MAPPING, "dimensions": ["CURRENCY"]}).canonical()["dimensions"] == {"CURRENCY": "CURRENCY"}


# ------------------------------------------------------------------------------------------- action
SDMX_ACTIONS = """\
STRUCTURE,STRUCTURE_ID,ACTION,INDICATOR,REF_AREA,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE
dataflow,OECD:DF(1.0),I,GDP,FRA,2023,100,USD
dataflow,OECD:DF(1.0),R,GDP,DEU,2023,200,USD
dataflow,OECD:DF(1.0),D,GDP,ITA,2023,,
dataflow,OECD:DF(1.0),,GDP,ESP,2023,50,USD
dataflow,OECD:DF(1.0),X,GDP,PRT,2023,10,USD
"""


def test_action_rows_travel_and_d_rows_are_marked_deleted(tmp_path):
    src = source(tmp_path, SDMX_ACTIONS, action_column="ACTION")
    m, checked = validated(src, ColumnMapping())
    assert m.action == "ACTION"
    assert checked.rejected_rows == 1
    assert checked.rejects.to_pylist()[0] | {"file": None} == \
        {"file": None, "line": 6, "field": "action", "value": "X", "reason": "bad-action"}
    (decoded,) = wire(checked.observations)
    assert decoded.version == 2
    rows, refused = harmonized_rows(decoded)
    assert refused.num_rows == 0
    assert [(r["value"], r[DELETED]) for r in rows] == [(100.0, False), (200.0, False), (None, True), (50.0, False)]


def test_ingest_refuses_an_unknown_action_letter_sent_by_another_producer():
    strings = ["GDP", "FRA", "2023", "USD", "f.csv", "Z", "D"]
    rec = {"event_id": "e", "org": "O", "dataset_id": "d", "release_id": "r", "chunk_seq": 0, "chunk_count": 1,
           "produced_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "licence": None, "source_url": None,
           "strings": strings, "indicator": [0, 0, 0], "ref_area": [1, 1, 1], "counterpart_area": [-1] * 3,
           "commodity": [-1] * 3, "period": [2, 2, 2], "value": [1.0, 2.0, 0.0], "missing_values": [2],
           "unit": [3, 3, -1], "unit_mult": [0] * 3, "obs_status": [-1] * 3, "attributes": [],
           "source_file": [4] * 3, "source_line": [2, 3, 4], "dimensions": [], "action": [-1, 5, 6],
           "commodity_classification": None}
    decoded = dataset_chunk.decode(codec.encode("dataset_chunk", rec))
    rows, refused = harmonized_rows(decoded)
    assert [(r["value"], r[DELETED]) for r in rows] == [(1.0, False), (None, True)]
    assert refused.select(["source_line", "field", "value", "reason"]).to_pylist() == \
        [{"source_line": 3, "field": "action", "value": "Z", "reason": "bad-action"}]


# ------------------------------------------------------------------------------------------- commodity
PCPS = """\
INDICATOR,REF_AREA,COMMODITY,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE
PRICE,W00,PZINC,2024-01,2503.2,USD
PRICE,W00,PCOPP,2024-01,8291.5,USD
"""
TRADE = """\
INDICATOR,REF_AREA,COMMODITY,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE
IMP,FRA,8501.10,2024,12,USD
IMP,FRA,030211,2024,7,USD
"""


def test_non_hs_commodity_codes_become_the_commodity_dimension(tmp_path):
    src = source(tmp_path, PCPS)
    m, checked = validated(src, ColumnMapping.from_dict({"ref_area": {"const": "FRA"}}))
    assert "commodity" not in m.fields and m.extra_dimensions == {"COMMODITY": "COMMODITY"}
    assert "kept as the dimension COMMODITY" in m.note and "'PZINC'" in m.note
    assert checked.rejected_rows == 0
    (decoded,) = wire(checked.observations)
    rows, refused = harmonized_rows(decoded)
    assert refused.num_rows == 0
    assert [(r["commodity"], r["dimensions"], r["value"]) for r in rows] == \
        [(None, "COMMODITY=PZINC", 2503.2), (None, "COMMODITY=PCOPP", 8291.5)]


def test_hs_shaped_codes_stay_the_hs_field(tmp_path):
    src = source(tmp_path, TRADE)
    m, checked = validated(src, ColumnMapping())
    assert m.fields["commodity"].column == "COMMODITY" and m.extra_dimensions == {} and m.note is None
    (decoded,) = wire(checked.observations)
    rows, _ = harmonized_rows(decoded)
    assert [(r["commodity"], r["dimensions"]) for r in rows] == [("850110", ""), ("030211", "")]


def test_a_declared_classification_decides_without_looking(tmp_path):
    src = source(tmp_path, TRADE)
    m = ColumnMapping.from_dict({"commodity_classification": "CPC21"}).resolve(src.columns, src.name)
    assert "commodity" not in m.fields and m.extra_dimensions == {"COMMODITY": "COMMODITY"} and m.commodity_decided


def test_an_hs_edition_without_a_shipped_list_is_checked_by_shape(tmp_path):
    """7777 is no HS 2022 heading: refused as HS2022, accepted (unchecked) as HS2017; 'ABC' refused by both."""
    text = ("INDICATOR,REF_AREA,COMMODITY,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE\n"
            "IMP,FRA,7777,2024,1,USD\nIMP,FRA,ABC,2024,2,USD\nIMP,FRA,0101,2024,3,USD\n")
    src = source(tmp_path, text)
    for edition, lines, codes in (("HS2022", [2, 3], ["0101"]), ("HS2017", [3], ["7777", "0101"])):
        m, checked = validated(src, ColumnMapping.from_dict({"commodity_classification": edition}))
        assert sorted(checked.rejects["line"].to_pylist()) == lines
        (decoded,) = wire(checked.observations, classification=edition)
        assert decoded.record["commodity_classification"] == edition
        rows, refused = harmonized_rows(decoded)
        assert [r["commodity"] for r in rows] == codes and refused.num_rows == 0


def test_hs_shape():
    values = pa.array(["01", "0101", "010121", "0101.21", "85 01 10", "101", "85011000", "TOTAL", "PZINC", "A01", "12345678901", ""])
    assert hs_shaped(values).tolist() == [True, True, True, True, True, True, True, True, False, False, False, False]


def test_mostly_hs_codes_with_a_typo_stay_hs():
    m = ColumnMapping().resolve(["INDICATOR", "REF_AREA", "COMMODITY", "TIME_PERIOD", "OBS_VALUE"], "f.csv")
    table = pa.table({"COMMODITY": ["0101", "0102", "85O1", "0101"]})
    decided, note = decide_commodity(m, table)
    assert decided.fields["commodity"].column == "COMMODITY" and note is None


# ------------------------------------------------------------------------------------------- keys
def test_repeated_keys_are_counted_with_an_example(tmp_path):
    """With CURRENCY kept but not EXR_SUFFIX, line 4 (USD, suffix E, 2024-01) repeats line 2's key (USD,
    suffix A, 2024-01); line 3 differs by CURRENCY, line 5 by period. With both kept, nothing repeats;
    a second file repeating the first one's rows repeats all of them."""
    src = source(tmp_path, EXR)
    with KeyTracker(tmp_path) as keys:
        _, checked = validated(src, ColumnMapping.from_dict({**EXR_MAPPING, "dimensions": ["CURRENCY"]}))
        keys.add(checked.observations)
        assert keys.repeated() == (1, "f.csv line 2 and f.csv line 4")
    both = ColumnMapping.from_dict({**EXR_MAPPING, "dimensions": ["CURRENCY", "EXR_SUFFIX"]})
    with KeyTracker(tmp_path) as keys:
        _, checked = validated(src, both)
        keys.add(checked.observations)
        _, again = validated(source(tmp_path, EXR, name="g.csv"), both)
        keys.add(again.observations)
        count, example = keys.repeated()
        assert count == 4 and example.startswith("f.csv line ") and " and g.csv line " in example
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("ioxhub-keys-")] == []


# ------------------------------------------------------------------------------------------- the text
def test_dimension_text_is_canonical_and_escaped():
    assert format_dimensions({"B": "x|y", "A": "1=2", "C": None}) == "A=1%3D2|B=x%7Cy"
    assert parse_dimensions("A=1%3D2|B=x%7Cy") == {"A": "1=2", "B": "x|y"}
    assert parse_dimensions("") == {}
    strings = ["USD", "JPY", "A"]
    col = dimensions_column(strings, [("SUFFIX", np.array([2, 2, -1])), ("CURRENCY", np.array([0, 1, 0]))], 3)
    assert col.to_pylist() == ["CURRENCY=USD|SUFFIX=A", "CURRENCY=JPY|SUFFIX=A", "CURRENCY=USD"]
    assert dimensions_column(strings, [], 2).to_pylist() == ["", ""]


def test_a_column_mapped_to_one_field_is_no_other_fields_fallback():
    columns = ["COMMODITY", "REF_AREA", "TIME_PERIOD", "OBS_VALUE"]
    m = ColumnMapping.from_dict({"indicator": "COMMODITY"}).resolve(columns, "pcps.json")
    assert m.fields["indicator"].column == "COMMODITY"
    assert "commodity" not in m.fields and COMMODITY_DIMENSION not in m.extra_dimensions
    assert ColumnMapping().resolve(columns + ["INDICATOR"], "f.csv").fields["commodity"].column == "COMMODITY"
