"""Areas beyond countries (ioxhub.harmonize.countries: harmonize_area, to_area_array, ioxhub/data/areas/).

Expectations written by hand from the sources (ISO 3166-3, ISO 3166-2, M49, Eurostat compositions)."""
from __future__ import annotations

import pyarrow as pa
import pycountry
import pytest

from ioxhub.harmonize.countries import (UNKNOWN, Area, _read_areas, harmonize_area, harmonize_country,
                                        to_area_array)


@pytest.mark.parametrize("value, expected", [
    ("FRA", ("FRA", "country")), ("fr", ("FRA", "country")), ("250", ("FRA", "country")),
    ("Micronesia", ("FSM", "country")),       # the country, not the M49 sub-region of that name
    ("UK", ("GBR", "country")), ("EL", ("GRC", "country")),
    ("EU27_2020", ("EU27_2020", "aggregate")), ("EU27", ("EU27_2020", "aggregate")), ("EU28", ("EU28", "aggregate")),
    ("EA20", ("EA20", "aggregate")), ("European Union", ("EU", "aggregate")), ("euro area", ("EA", "aggregate")),
    ("W00", ("WLD", "aggregate")), ("WLD", ("WLD", "aggregate")), ("1W", ("WLD", "aggregate")),
    ("001", ("WLD", "aggregate")), ("World", ("WLD", "aggregate")), ("_T", ("WLD", "aggregate")),
    ("HIC", ("HIC", "aggregate")), ("LMC", ("LMC", "aggregate")), ("SSF", ("SSF", "region")),
    ("150", ("150", "region")), ("Europe", ("150", "region")), ("202", ("202", "region")),
    ("Sub-Saharan Africa", ("202", "region")),
    ("DDR", ("DDR", "historic")), ("DDDE", ("DDR", "historic")), ("SUHH", ("SUN", "historic")),
    ("SU", ("SUN", "historic")), ("Soviet Union", ("SUN", "historic")), ("YUCS", ("YUG", "historic")),
    ("Czechoslovakia", ("CSK", "historic")), ("ANT", ("ANT", "historic")),
    ("FQHH", ("FQHH", "historic")),           # its former alpha-3 ATF is a current country's
    ("ATF", ("ATF", "country")),
    ("FR-75C", ("FR-75C", "subnational")), ("de-by", ("DE-BY", "subnational")), ("US-CA", ("US-CA", "subnational")),
])
def test_area_code_and_type(value, expected):
    assert harmonize_area(value) == Area(*expected, None)


@pytest.mark.parametrize("value", ["Atlantis", "XXX", "ZZ", "FR-ZZZ", "CS", "999"])
def test_unknown_areas_are_still_refused(value):
    # "CS" was both Czechoslovakia and Serbia and Montenegro: ambiguous, so not accepted
    assert harmonize_area(value) == Area(None, None, UNKNOWN)


def test_absent():
    assert harmonize_area(None) == harmonize_area("  ") == Area(None, None, None)


def test_policy_members_stay_countries_only():
    assert harmonize_country("EU27_2020") == (None, "aggregate-area")
    assert harmonize_country("DDR") == (None, "unknown-country")
    assert harmonize_country("FR-75C") == (None, "unknown-country")


def test_compositions():
    rows = {r["code"]: r for r in _read_areas("groupings.csv")}
    members = {code: r["members"].split() for code, r in rows.items() if r["members"]}
    current = {c.alpha_3 for c in pycountry.countries}
    assert all(set(m) <= current for m in members.values())
    assert len(members["EU27_2020"]) == 27 and len(members["EU28"]) == 28 and len(members["EU15"]) == 15
    assert set(members["EU28"]) - set(members["EU27_2020"]) == {"GBR"}
    assert len(members["EA20"]) == 20 and set(members["EA20"]) <= set(members["EU27_2020"])
    assert set(members["EA20"]) - set(members["EA19"]) == {"HRV"}
    assert all(rows[r["canonical"]]["canonical"] == r["canonical"] for r in rows.values())   # canonical codes are rows


def test_vectorized_equals_scalar():
    values = ["FRA", None, "EU27_2020", "W00", "DDR", "FR-75C", "Atlantis", "FRA", "150"]
    out = to_area_array(pa.array(values).dictionary_encode())
    expected = [harmonize_area(v) for v in values]
    assert out.value.to_pylist() == [e.code for e in expected]
    assert out.area_type.to_pylist() == [e.area_type for e in expected]
    assert out.reason.to_pylist() == [e.reason for e in expected]
    assert out.invalid.to_pylist() == [e.reason is not None for e in expected]


def test_derivations_read_countries_only():
    from consumers.evidence import country_observations

    table = pa.table({"ref_area": ["FRA", "EU27_2020", "DEU", "FRA", "SUN"],
                      "area_type": ["country", "aggregate", "country", "country", "historic"],
                      "counterpart_area_type": [None, None, "country", "aggregate", None]})
    assert country_observations(table)["ref_area"].to_pylist() == ["FRA", "DEU"]
    before = pa.table({"ref_area": ["FRA", "DEU"]})          # harmonized before area types: countries only
    assert country_observations(before).equals(before)
