"""Provider unit codes and areas beyond countries, published and ingested on the real broker and S3.

A small file with Eurostat unit codes (CP_MEUR, CLV10_MEUR, PC_GDP, THS_PER, I15, MIO_EUR), an unknown
unit, a code the mapping translates (PC -> NUMBER), an EU aggregate, a world code, historic and subnational
areas: every harmonized row written here by hand from the file; nothing dead-lettered but the one row
whose area is unknown (refused at publish); a replay from raw/ gives the same rows (translation included)."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest

from app.demo import ensure_keys
from ioxhub.catalog import Catalog
from ioxhub.ingest.letters import read_letters
from ioxhub.ingest.replay import replay
from ioxhub.ingest.run import ingest
from ioxhub.storage import ObjectStore
import hub_tables
from producers import publish_dataset

pytestmark = pytest.mark.integration

MAPPING = {"indicator": "IND", "ref_area": "AREA", "counterpart_area": "PARTNER", "period": "PERIOD",
           "value": "VALUE", "unit": "UNIT", "title": "Provider codes", "units": {"PC": "NUMBER"}}
CSV = """IND,AREA,PARTNER,PERIOD,VALUE,UNIT
GDP,FRA,,2023,2500,CP_MEUR
GDP,FRA,,2023,2300,CLV10_MEUR
DEBT,EU27_2020,,2023,81.5,PC_GDP
EMP,DEU,,2023,45000,THS_PER
PRICES,W00,,2023,104.2,I15
CARGO,SUHH,,1990,12,pallets
CARGO,FR-75C,,2023,7,PC
TRADE,FRA,DDR,1989,3,MIO_EUR
GDP,Atlantis,,2023,1,CP_MEUR
"""
COLUMNS = ("indicator", "ref_area", "area_type", "counterpart_area", "counterpart_area_type", "period", "value",
           "unit", "unit_code", "unit_status", "currency", "price_basis", "base_year", "unit_denominator")
EXPECTED = sorted([
    ("GDP", "FRA", "country", None, None, "2023", 2.5e9, "EUR", "CP_MEUR", "recognized", "EUR", "current", None, None),
    ("GDP", "FRA", "country", None, None, "2023", 2.3e9, "EUR", "CLV10_MEUR", "recognized", "EUR", "chain-linked", 2010, None),
    ("DEBT", "EU27_2020", "aggregate", None, None, "2023", 81.5, "PERCENT", "PC_GDP", "recognized", None, None, None, "GDP"),
    ("EMP", "DEU", "country", None, None, "2023", 45_000_000.0, "PERSONS", "THS_PER", "recognized", None, None, None, None),
    ("PRICES", "WLD", "aggregate", None, None, "2023", 104.2, "INDEX", "I15", "recognized", None, None, 2015, None),
    ("CARGO", "SUN", "historic", None, None, "1990", 12.0, "pallets", "pallets", "unrecognized", None, None, None, None),
    ("CARGO", "FR-75C", "subnational", None, None, "2023", 7.0, "NUMBER", "PC", "translated", None, None, None, None),
    ("TRADE", "FRA", "country", "DDR", "historic", "1989", 3e6, "EUR", "MIO_EUR", "recognized", "EUR", None, None, None),
], key=repr)


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys(["WCO"], provisioned_settings)
    return provisioned_settings


def test_provider_codes_and_areas_round_trip(hub, tmp_path):
    ingest("datasets", idle_ms=1500)            # what earlier tests left
    dataset_id = f"CODES-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "codes.csv"
    path.write_text(CSV)
    published = publish_dataset("WCO", dataset_id, [path], MAPPING, settings=hub)
    assert (published.rows_sent, published.rows_rejected) == (8, 1)     # Atlantis: unknown-country, at publish
    counts = ingest("datasets", idle_ms=1500)
    assert counts is not None

    store = ObjectStore(hub)
    rows = hub_tables.current_rows("WCO", dataset_id, settings=hub).to_pylist()
    got = sorted((tuple(r[c] for c in COLUMNS) for r in rows), key=repr)
    assert got == EXPECTED
    assert all(r["published_at"] > dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) for r in rows)

    letters = [l for l in read_letters(store, org="WCO") if l["event_id"] in published.event_ids]
    assert letters == []                        # the unknown unit is kept, the aggregates too
    entry = Catalog(store).dataset(f"WCO.{dataset_id}")
    assert entry["unrecognized_units"] == {"pallets": 1}
    assert entry["rows"] == 8
    assert entry["coverage"]["countries"] == ["DEU", "FRA"]
    assert entry["coverage"]["other_areas"] == ["EU27_2020", "FR-75C", "SUN", "WLD"]

    again = replay("WCO", dataset_id, settings=hub)     # from raw/: the manifest's translation applies again
    assert again["releases"]["unchanged"] == 1 and again["releases"]["replayed"] == 0
