"""Unit codes of the shipped code lists (ioxhub/data/units/) and the mapping's unit translations.

Expectations are written by hand from the code lists' published labels (e.g. Eurostat CLV10_MEUR "Chain
linked volumes (2010), million euro"), not from the code's output."""
from __future__ import annotations

import pyarrow as pa
import pytest

from ioxhub.harmonize import units
from ioxhub.harmonize.units import (RECOGNIZED, TRANSLATED, UNRECOGNIZED, canonical_unit, normalize_values,
                                    translation_problem)
from producers.mapping import ColumnMapping, MappingError


# code -> (canonical unit, exp10, currency, price basis, base year, denominator)
@pytest.mark.parametrize("code, expected", [
    ("CP_MEUR", ("EUR", 6, "EUR", "current", None, None)),
    ("cp_meur", ("EUR", 6, "EUR", "current", None, None)),
    ("CP_MNAC", ("XDC", 6, "XDC", "current", None, None)),
    ("CLV10_MEUR", ("EUR", 6, "EUR", "chain-linked", 2010, None)),
    ("CLV15_MNAC", ("XDC", 6, "XDC", "chain-linked", 2015, None)),
    ("CLV_I20", ("INDEX", 0, None, "chain-linked", 2020, None)),
    ("CLV_PCH_PRE", ("PERCENT", 0, None, "chain-linked", None, "PREVIOUS_PERIOD")),
    ("PYP_MEUR", ("EUR", 6, "EUR", "previous-year", None, None)),
    ("I15", ("INDEX", 0, None, None, 2015, None)),
    ("I10", ("INDEX", 0, None, None, 2010, None)),
    ("PC_GDP", ("PERCENT", 0, None, None, None, "GDP")),
    ("PT_B1GQ", ("PERCENT", 0, None, None, None, "GDP")),
    ("PC_ACT", ("PERCENT", 0, None, None, None, "ACTIVE_POPULATION")),
    ("RCH_A", ("PERCENT", 0, None, None, None, "SAME_PERIOD_PREVIOUS_YEAR")),
    ("THS_PER", ("PERSONS", 3, None, None, None, None)),
    ("PS", ("PERSONS", 0, None, None, None, None)),
    ("MIO_EUR", ("EUR", 6, "EUR", None, None, None)),
    ("EUR_HAB", ("EUR", 0, "EUR", None, None, "INHABITANT")),
    ("THS_T", ("KG", 6, None, None, None, None)),
    ("KTN", ("KG", 6, None, None, None, None)),
    ("HLT", ("LITRE", 2, None, None, None, None)),
    ("GWH", ("KWH", 6, None, None, None, None)),
    ("XDC", ("XDC", 0, "XDC", None, None, None)),
    ("USD", ("USD", 0, "USD", None, None, None)),
    ("US$", ("USD", 0, "USD", None, None, None)),
    ("million USD", ("USD", 6, "USD", None, None, None)),
    ("KG", ("KG", 0, None, None, None, None)),
    ("PC", ("PERCENT", 0, None, None, None, None)),
])
def test_code_resolves_to_unit_scale_currency_price_basis(code, expected):
    f = canonical_unit(code)
    assert (f.unit, f.exp10, f.currency, f.price_basis, f.base_year, f.denominator) == expected
    assert f.status == RECOGNIZED and f.reason is None


@pytest.mark.parametrize("code", ["pallets", "THS_HAB", "CLV99_XYZ", "bags of 50 kg"])
def test_an_unknown_code_is_unrecognized_and_kept_verbatim(code):
    f = canonical_unit(code)
    assert (f.unit, f.exp10, f.status, f.reason) == (code, 0, UNRECOGNIZED, None)


def test_the_code_lists_agree_on_every_code_they_share():
    seen: dict[str, tuple] = {}
    for name, codes in units._code_lists().items():
        for code, f in codes.items():
            meaning = (f.unit, f.exp10, f.num, f.den, f.price_basis, f.base_year, f.denominator)
            assert seen.setdefault(code, (name, meaning))[1] == meaning, (code, name, seen[code][0])


def test_every_canonical_unit_of_the_code_lists_has_a_kind():
    assert sorted(u for u in units.canonical_units() if units.unit_kind(u) is None) == []


def test_vectorized_statuses_details_and_translations():
    values = pa.array([1.5, 2.0, 3.0, 4.0, None, 5.0])
    codes = pa.array(["CP_MEUR", "PC", "pallets", "I15", None, "pc"]).dictionary_encode()
    out = normalize_values(values, codes, pa.array([0, 0, 3, 0, 0, 0], pa.int32()), {"PC": "NUMBER"})
    assert out.value.to_pylist() == [1_500_000.0, 2.0, 3000.0, 4.0, None, 5.0]
    assert out.unit.to_pylist() == ["EUR", "NUMBER", "pallets", "INDEX", None, "NUMBER"]
    assert out.status.to_pylist() == [RECOGNIZED, TRANSLATED, UNRECOGNIZED, RECOGNIZED, None, TRANSLATED]
    assert out.currency.to_pylist() == ["EUR", None, None, None, None, None]
    assert out.price_basis.to_pylist() == ["current", None, None, None, None, None]
    assert out.base_year.to_pylist() == [None, None, None, 2015, None, None]
    assert out.reason.to_pylist() == [None] * 6
    plain = normalize_values(values, codes, 0)          # without the translation PC is percent
    assert plain.unit.to_pylist()[1] == "PERCENT" and plain.status.to_pylist()[1] == RECOGNIZED


def test_a_refused_row_has_no_unit_details():
    out = normalize_values(pa.array([1.0, 2.0]), pa.array([None, "CLV10_MEUR"]), pa.array([0, 0]))
    assert out.reason.cast(pa.string()).to_pylist() == ["missing-unit", None]
    assert out.base_year.to_pylist() == [None, 2010] and out.status.to_pylist() == [None, RECOGNIZED]


def test_translation_targets_must_be_codes_of_the_lists():
    assert translation_problem("PC", "NUMBER") is None
    assert "not a code" in translation_problem("PC", "PIECESS")


def test_mapping_units_key_is_parsed_canonical_and_part_of_the_release_identity():
    m = ColumnMapping.from_dict({"value": "V", "units": {" pc ": "number", "PAL": "C62"}})
    assert m.units == {"PC": "NUMBER", "PAL": "C62"}
    assert m.canonical()["units"] == {"PAL": "C62", "PC": "NUMBER"}
    assert "units" not in ColumnMapping.from_dict({"value": "V"}).canonical()   # ids of other mappings unchanged
    flags = ColumnMapping.from_dict({"units": {"PC": "PERCENT"}})
    assert m.merged(flags).units == {"PC": "PERCENT", "PAL": "C62"}


@pytest.mark.parametrize("units_value, message", [
    ({"PC": "PIECESS"}, "units.PC: target 'PIECESS' is not a code"),
    (["PC"], "units must be a mapping"),
    ({"PC": True}, "units.PC must be a unit code"),
    ({"pc": "NUMBER", "PC": "PERCENT"}, "translated twice"),
])
def test_mapping_units_errors_are_one_line_naming_the_key(units_value, message):
    with pytest.raises(MappingError) as err:
        ColumnMapping.from_dict({"value": "V", "units": units_value}, origin="mapping file m.yaml")
    assert message in str(err.value) and str(err.value).startswith("mapping file m.yaml: ") and "\n" not in str(err.value)

