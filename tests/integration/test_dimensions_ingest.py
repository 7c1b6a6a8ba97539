"""Extra dimensions, ACTION deletions and commodity classifications end to end: publish to the real
broker, ingest into the real S3 server, read harmonized/ back.

The files are small hand-made exports in the shape of the providers' (ECB exchange rates, IMF primary
commodity prices), published by orgs of the hub; the expected rows are written out by hand from the files. Reference areas are countries (aggregates such as the euro area or W00 are
another part of the hub's rules); each dataset id is new per run (a tag), so counts are this test's own.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from app.demo import ensure_keys
from ioxhub.catalog import Catalog
from ioxhub.ingest.harmonized import dataset_name
from ioxhub.ingest.run import ingest
from ioxhub.ingest.markers import release_applied
from ioxhub.storage import ObjectStore
from ioxhub.tables import object_key
import hub_tables
from producers import publish_dataset

pytestmark = [pytest.mark.integration]
COLUMNS = ("indicator", "ref_area", "commodity", "dimensions", "period", "value", "unit")


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys(["WTO", "WHO", "WCO"], provisioned_settings)
    ingest("datasets", idle_ms=1500)      # what earlier tests left
    return provisioned_settings


def current(org: str, dataset_id: str) -> list[tuple]:
    """The dataset's current harmonized rows, as sorted tuples of COLUMNS."""
    table = hub_tables.current_rows(org, dataset_id)
    rows = [tuple(r[c] for c in COLUMNS) for r in table.to_pylist()] if table is not None else []
    return sorted(rows, key=repr)


def publish(hub, org: str, dataset_id: str, path: Path, mapping: dict):
    summary = publish_dataset(org, dataset_id, [path], mapping, settings=hub, progress=False)
    assert summary.sent and summary.rows_rejected == 0, summary
    return summary


EXR = """\
DATAFLOW,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS
ECB:EXR(1.0),M,USD,EUR,SP00,A,2024-01,1.0905,A
ECB:EXR(1.0),M,USD,EUR,SP00,E,2024-01,1.0872,A
ECB:EXR(1.0),M,JPY,EUR,SP00,A,2024-01,159.46,A
ECB:EXR(1.0),M,GBP,EUR,SP00,A,2024-01,0.85873,A
ECB:EXR(1.0),M,USD,EUR,SP00,A,2024-02,1.0795,A
ECB:EXR(1.0),M,USD,EUR,SP01,A,2024-01,1.0901,A
"""
# Release 2, SDMX-CSV 2.0 with ACTION: JPY deleted, USD 2024-02 replaced, GBP 2024-02 appended.
EXR_ACTIONS = """\
STRUCTURE,STRUCTURE_ID,ACTION,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE,OBS_STATUS
dataflow,ECB:EXR(1.0),D,M,JPY,EUR,SP00,A,2024-01,,
dataflow,ECB:EXR(1.0),R,M,USD,EUR,SP00,A,2024-02,1.0802,A
dataflow,ECB:EXR(1.0),A,M,GBP,EUR,SP00,A,2024-02,0.85568,A
"""
EXR_MAPPING = {"indicator": "EXR_TYPE", "ref_area": {"const": "DEU"}, "unit": {"const": "NUMBER"},
               "dimensions": ["CURRENCY", "CURRENCY_DENOM", "EXR_SUFFIX"]}


def test_exchange_rates_keep_every_series_and_action_d_deletes(hub, tmp_path):
    """CURRENCY and EXR_SUFFIX are what tell the series apart (EXR_TYPE is the indicator): every series is
    kept; without them the USD rows of 2024-01 would collapse. The second release deletes the JPY series."""
    dataset = f"EXR-{uuid.uuid4().hex[:6]}"
    first = tmp_path / "exr.sdmx.csv"
    first.write_text(EXR)
    s1 = publish(hub, "WTO", dataset, first, EXR_MAPPING)
    assert s1.warnings == [] and s1.repeated_keys == 0
    counts = ingest("datasets", idle_ms=1500)
    assert counts["observations_harmonized"] == 6 and counts["observations_refused"] == 0
    usd_a, usd_e = "CURRENCY=USD|CURRENCY_DENOM=EUR|EXR_SUFFIX=A", "CURRENCY=USD|CURRENCY_DENOM=EUR|EXR_SUFFIX=E"
    jpy, gbp = "CURRENCY=JPY|CURRENCY_DENOM=EUR|EXR_SUFFIX=A", "CURRENCY=GBP|CURRENCY_DENOM=EUR|EXR_SUFFIX=A"
    assert current("WTO", dataset) == sorted([
        ("SP00", "DEU", None, usd_a, "2024-01", 1.0905, "NUMBER"),
        ("SP00", "DEU", None, usd_e, "2024-01", 1.0872, "NUMBER"),
        ("SP00", "DEU", None, jpy, "2024-01", 159.46, "NUMBER"),
        ("SP00", "DEU", None, gbp, "2024-01", 0.85873, "NUMBER"),
        ("SP00", "DEU", None, usd_a, "2024-02", 1.0795, "NUMBER"),
        ("SP01", "DEU", None, usd_a, "2024-01", 1.0901, "NUMBER"),
    ], key=repr)
    entry = Catalog(ObjectStore()).dataset(dataset_name("WTO", dataset))
    assert entry["coverage"]["dimensions"] == ["CURRENCY", "CURRENCY_DENOM", "EXR_SUFFIX"]
    assert entry["commodity_classification"] is None

    second = tmp_path / "exr-2.sdmx.csv"
    second.write_text(EXR_ACTIONS)
    s2 = publish(hub, "WTO", dataset, second, {**EXR_MAPPING, "action": "ACTION"})
    counts = ingest("datasets", idle_ms=1500)
    assert (counts["observations_deleted"], counts["revisions_applied"]) == (1, 1)
    assert current("WTO", dataset) == sorted([
        ("SP00", "DEU", None, usd_a, "2024-01", 1.0905, "NUMBER"),
        ("SP00", "DEU", None, usd_e, "2024-01", 1.0872, "NUMBER"),
        ("SP00", "DEU", None, gbp, "2024-01", 0.85873, "NUMBER"),
        ("SP00", "DEU", None, usd_a, "2024-02", 1.0802, "NUMBER"),
        ("SP00", "DEU", None, gbp, "2024-02", 0.85568, "NUMBER"),
        ("SP01", "DEU", None, usd_a, "2024-01", 1.0901, "NUMBER"),
    ], key=repr)
    history = hub_tables.history_rows("WTO", dataset, s2.release_id)
    assert sorted((r["dimensions"], r["period"], r["value"], r["deleted"]) for r in history.to_pylist()) == sorted([
        (jpy, "2024-01", None, True), (usd_a, "2024-02", 1.0802, False), (gbp, "2024-02", 0.85568, False)])


def test_a_mapping_that_drops_a_varying_dimension_warns(hub, tmp_path):
    """Without EXR_SUFFIX the USD rows of 2024-01 (suffix A and E) share a key: a warning, not an error;
    ingest keeps the last of them."""
    dataset = f"EXR-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "exr.sdmx.csv"
    path.write_text(EXR)
    summary = publish(hub, "WTO", dataset, path, {**EXR_MAPPING, "dimensions": ["CURRENCY"]})
    assert summary.repeated_keys == 1 and summary.exit_code == 0
    assert "line 2 and exr.sdmx.csv line 3" in summary.warnings[0]
    counts = ingest("datasets", idle_ms=1500)
    assert (counts["observations_harmonized"], counts["observations_duplicate"]) == (5, 1)
    usd = [r for r in current("WTO", dataset) if r[3] == "CURRENCY=USD" and r[0] == "SP00" and r[4] == "2024-01"]
    assert [r[5] for r in usd] == [1.0872]


PCPS = """\
DATAFLOW,FREQ,REF_AREA,COMMODITY,UNIT_MEASURE,TIME_PERIOD,OBS_VALUE
IMF:PCPS(9.0.0),M,USA,PZINC,USD,2024-01,2503.2
IMF:PCPS(9.0.0),M,USA,PZINC,USD,2024-02,2354.9
IMF:PCPS(9.0.0),M,USA,PCOPP,USD,2024-01,8291.5
IMF:PCPS(9.0.0),M,USA,PALUM,USD,2024-01,2199.1
"""


def test_imf_commodity_codes_are_kept_as_the_commodity_dimension(hub, tmp_path):
    """PZINC is no HS code: no longer refused as unknown HS, kept as the dimension COMMODITY."""
    dataset = f"PCPS-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "pcps.sdmx.csv"
    path.write_text(PCPS)
    summary = publish(hub, "WHO", dataset, path, {"indicator": {"const": "PCPS"}})
    assert any("kept as the dimension COMMODITY" in n for n in summary.notes)
    counts = ingest("datasets", idle_ms=1500)
    assert counts["observations_refused"] == 0
    assert current("WHO", dataset) == sorted([
        ("PCPS", "USA", None, "COMMODITY=PZINC", "2024-01", 2503.2, "USD"),
        ("PCPS", "USA", None, "COMMODITY=PZINC", "2024-02", 2354.9, "USD"),
        ("PCPS", "USA", None, "COMMODITY=PCOPP", "2024-01", 8291.5, "USD"),
        ("PCPS", "USA", None, "COMMODITY=PALUM", "2024-01", 2199.1, "USD"),
    ], key=repr)
    entry = Catalog(ObjectStore()).dataset(dataset_name("WHO", dataset))
    assert entry["coverage"]["dimensions"] == ["COMMODITY"] and entry["commodity_classification"] is None


TRADE_2017 = """\
INDICATOR,REF_AREA,COUNTERPART_AREA,COMMODITY,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE
IMP,FRA,DEU,8517.62,2021,1520.5,USD
IMP,FRA,DEU,852990,2021,88.0,USD
"""


def test_an_hs_edition_is_recorded_and_says_whether_it_was_checked(hub, tmp_path):
    dataset = f"TRADE-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "trade.csv"
    path.write_text(TRADE_2017)
    summary = publish(hub, "WCO", dataset, path, {"commodity_classification": "HS2017"})
    ingest("datasets", idle_ms=1500)
    assert release_applied(Catalog(ObjectStore()), "WCO", dataset, summary.release_id)["commodity_classification"] == "HS2017"
    assert current("WCO", dataset) == sorted([
        ("IMP", "FRA", "851762", "", "2021", 1520.5, "USD"), ("IMP", "FRA", "852990", "", "2021", 88.0, "USD")], key=repr)
    entry = Catalog(ObjectStore()).dataset(dataset_name("WCO", dataset))
    assert (entry["commodity_classification"], entry["hs_validated"]) == ("HS2017", False)


PLAIN = "indicator,ref_area,period,value,unit\nSEIZ,FRA,2023,10,KG\nSEIZ,DEU,2023,20,KG\n"


def test_data_written_before_dimensions_existed_keeps_merging(hub, tmp_path):
    """A v1 release (nothing of v2) ingests as before; a partition written without the `dimensions`
    column (as before it existed) is read with an empty one and merged with the next release."""
    dataset = f"PLAIN-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "plain.csv"
    path.write_text(PLAIN)
    publish(hub, "WCO", dataset, path, {})
    ingest("datasets", idle_ms=1500)
    store = ObjectStore()
    (data_file,) = hub_tables.tables().data_files(hub_tables.observations("WCO", dataset))
    key = object_key(data_file.file_path, store.settings.bucket)
    table = store.read_parquet(key)
    assert table["dimensions"].to_pylist() == ["", ""] and table["release_id"].to_pylist()[0]
    store.put_parquet(key, table.drop_columns(["dimensions"]))          # the layout before the column
    path.write_text("indicator,ref_area,period,value,unit\nSEIZ,FRA,2023,11,KG\n")
    publish(hub, "WCO", dataset, path, {})
    counts = ingest("datasets", idle_ms=1500)
    assert counts["revisions_applied"] == 1
    assert current("WCO", dataset) == [("SEIZ", "DEU", None, "", "2023", 20.0, "KG"), ("SEIZ", "FRA", None, "", "2023", 11.0, "KG")]
    (data_file,) = hub_tables.tables().data_files(hub_tables.observations("WCO", dataset))
    assert pa.types.is_string(store.read_parquet(object_key(data_file.file_path, store.settings.bucket))
                              .schema.field("dimensions").type)
