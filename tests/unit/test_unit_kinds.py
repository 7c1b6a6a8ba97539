"""The unit table says what kind each canonical unit is, and the derivations follow it (docs/units.md)."""
from __future__ import annotations

import ast
import logging
import math
from pathlib import Path

import pandas as pd
import pycountry
import pytest
from derive_dgp import make_panel, months, observations

import app.console
import consumers
from consumers.derive.impact import instrument_impact
from consumers.derive.panel import indicator_panel
from ioxhub.harmonize import units
from ioxhub.harmonize.units import FLOW, LEVEL, canonical_unit, canonical_units, unit_kind, unit_kinds

KINDS = sorted(unit_kinds().items())


def emitted_units() -> set[str]:
    """What the harmonizer emits for every spelling it accepts, found by running it on each."""
    spellings = list(units._base_units())     # every code of every shipped code list
    for s in spellings:
        assert canonical_unit(s).status == units.RECOGNIZED, s
    for s in [*units._code_lists()["hub_spellings.csv"], *(c.alpha_3 for c in pycountry.currencies)]:
        assert canonical_unit("thousand " + s).status == units.RECOGNIZED, s
    return {canonical_unit(s).unit for s in spellings}


def test_every_unit_the_harmonizer_emits_has_a_kind():
    emitted = emitted_units()
    assert emitted == set(canonical_units())
    assert sorted(u for u in emitted if unit_kind(u) is None) == []


def test_no_kind_for_a_unit_the_harmonizer_cannot_emit():
    assert sorted(set(unit_kinds()) - emitted_units()) == []


@pytest.mark.parametrize("unit, kind", [
    ("KG", FLOW), ("USD", FLOW), ("CHF", FLOW), ("XDR", FLOW), ("NUMBER", FLOW), ("PERSONS", FLOW),
    ("DOSES", FLOW), ("TEU", FLOW), ("HOURS", LEVEL), ("PERCENT", LEVEL), ("INDEX", LEVEL),
    ("T", None), ("DAYS", None), ("PASSENGERS", None), ("kg", None), (None, None),
])
def test_unit_kind(unit, kind):
    assert unit_kind(unit) == kind


def test_kinds_are_consistent():
    for unit, kind in KINDS:
        assert kind in (FLOW, LEVEL), unit
    assert FLOW == ("flow", "sum", "log") and LEVEL == ("level", "mean", "level")


# --- the derivations follow the table ----------------------------------------------------------------

def test_annual_panel_sums_flows_and_averages_levels_for_every_canonical_unit():
    rows = []
    for unit, _ in KINDS:
        rows += [{"indicator": f"X.{unit}", "ref_area": "FRA", "freq": "M", "start": s, "end": e,
                  "value": float(m), "unit": unit} for m, (s, e) in enumerate(months(2024), start=1)]
        rows += [{"indicator": f"X.{unit}", "ref_area": "DEU", "freq": "A", "start": "2024-01-01",
                  "end": "2024-12-31", "value": v, "unit": unit, "commodity": c} for c, v in (("01", 2.0), ("02", 3.0))]
    panel = indicator_panel(observations(rows), "A")
    value = dict(zip(zip(panel["indicator"], panel["ref_area"]), panel["value"]))
    for unit, kind in KINDS:
        assert value.get((f"X.{unit}", "FRA")) == (78.0 if kind.aggregation == "sum" else 6.5), unit
        # commodities summed into a country total: flows only
        assert value.get((f"X.{unit}", "DEU")) == (5.0 if kind.kind == "flow" else None), unit


def test_panel_does_not_aggregate_a_published_spelling(caplog):
    rows = [{"indicator": "X.PAX", "ref_area": "FRA", "freq": "M", "start": s, "end": e, "value": 1.0,
             "unit": "PASSENGERS"} for s, e in months(2024)]
    with caplog.at_level(logging.WARNING):
        panel = indicator_panel(observations(rows), "A")
    assert len(panel) == 0
    assert "PASSENGERS" in caplog.text


def test_impact_reads_each_canonical_unit_on_its_kinds_scale():
    base, adoptions = make_panel(0, indicator="X", unit="", effect=math.log(1.2), scale="log",
                                 cohorts={2015: 4, 2018: 4}, n_countries=16, noise=0.05)
    panel = pd.concat([base.assign(indicator=f"X.{u}", unit=u) for u, _ in KINDS], ignore_index=True)
    instruments = pd.DataFrame({"instrument_id": ["INS"], "related_indicators": [[f"X.{u}" for u, _ in KINDS]]})
    did = instrument_impact(panel, instruments, adoptions).did
    primary = did[did.primary].set_index("unit")["scale"]
    assert primary.to_dict() == {u: k.scale for u, k in KINDS}


# --- no unit names outside the table -----------------------------------------------------------------

def _upper_word(s: str) -> bool:
    return s == s.upper() and any(c.isalpha() for c in s)


def _is_unit_name(s: str) -> bool:
    """An upper-case string of two or more characters the harmonizer reads as a unit ("KG", "DAYS", "US$").
    Single letters ("T", "D", "H") are also other things (a date separator, a frequency): they count
    only inside a list of units."""
    return len(s) > 1 and _upper_word(s) and canonical_unit(s).status == units.RECOGNIZED


def unit_names_not_canonical(source: str) -> set[str]:
    """Unit names in Python source that are not canonical units: an accepted spelling that is not
    canonical ("T", "DAYS", "PASSENGERS"), or any upper-case string in a literal set, list, tuple or
    dict (keys) that also holds a unit name (a list of units: "FLIGHTS" next to "KG")."""
    canonical = canonical_units()
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _is_unit_name(node.value) and node.value not in canonical:
                found.add(node.value)
        elif isinstance(node, (ast.Set, ast.List, ast.Tuple, ast.Dict)):
            items = node.keys if isinstance(node, ast.Dict) else node.elts
            names = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
            if any(_is_unit_name(n) for n in names):
                found |= {n for n in names if _upper_word(n) and n not in canonical}
    return found


CONSUMER_SOURCES = sorted(Path(consumers.__path__[0]).rglob("*.py")) + [Path(app.console.__file__)]


@pytest.mark.parametrize("path", CONSUMER_SOURCES, ids=lambda p: p.name)
def test_consumers_name_only_canonical_units(path):
    assert unit_names_not_canonical(path.read_text()) == set(), path


def test_the_unit_name_check_finds_drift():
    drifted = '''
FLOW = frozenset({"KG", "T", "USD", "FLIGHTS"})
unit = {"HOURS": "h", "DAYS": "d"}
if u == "PERCENT": pass
'''
    assert unit_names_not_canonical(drifted) == {"T", "FLIGHTS", "DAYS"}
    clean = '''
FREQS = ("A", "Q", "M", "D")
x = f"{p:+.1f}%"
t.replace("T", " ")
y = {"KG", "CHF"}
'''
    assert unit_names_not_canonical(clean) == set()
