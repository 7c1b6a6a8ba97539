"""The sample feeds, one function per partner file: what it holds, how it is spelled, what mess it has.

Each function writes its data file(s) and a `<file>.mapping.yaml` (producers.mapping format) and returns
the `SampleFile` entries with the expected counts. Random draws come from
`numpy.random.default_rng([seed, crc32(feed name), stream])`, so every feed is reproducible on its own.
"""
from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from producers.samples.countries import ALPHA3, codes
from producers.samples.dgp import DGPS, YEARS, simulate
from producers.samples.manifest import SampleFile
from producers.samples.sdmxml import write_generic
from producers.samples.tabular import MISSING, Spoil, number, plant_mess, write_csv, write_jsonl

LICENCE = "CC-BY-4.0"
PREPARED = "2026-01-15T00:00:00"   # fixed: the files must not depend on the wall clock


def rng_for(seed: int, feed: str, stream: int = 0) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(feed.encode()), stream])


def grid(*sizes: int) -> list[np.ndarray]:
    """Index arrays of the full cartesian product, first size outermost (row-major)."""
    return [a.ravel() for a in np.meshgrid(*(np.arange(n) for n in sizes), indexing="ij")]


def write_mapping(data_path: Path, mapping: dict[str, Any]) -> str:
    path = data_path.with_name(data_path.name + ".mapping.yaml")
    path.write_text(yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path.name


def _const(v: Any) -> dict:
    return {"const": v}


def _row_file(out: Path, rel: str, fmt: str, columns: Sequence[str] | None, rows: list[dict],
              spoils: Sequence[Spoil], n_dups: int, rng: np.random.Generator, mapping: dict,
              **meta: Any) -> SampleFile:
    """Plant the mess, write the file and its mapping, and describe it."""
    first_line = 2 if fmt in ("csv", "sdmx-csv") else 1
    all_rows, bad, dup_lines = plant_mess(rows, spoils, n_dups, rng, first_line)
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        write_jsonl(path, all_rows)
    else:
        write_csv(path, columns, all_rows)
    mapping_name = write_mapping(path, {"format": fmt, **mapping, "licence": LICENCE})
    value_column = meta.pop("value_column")
    missing = sum(1 for r in rows if r.get(value_column) is None)
    return SampleFile(path=rel, kind="dataset", format=fmt, mapping=str(Path(rel).parent / mapping_name),
                      rows=len(all_rows), good=len(rows), duplicates=len(dup_lines), duplicate_lines=dup_lines,
                      bad=bad, missing_values=missing, **meta)


def _periods(year: np.ndarray, sub: np.ndarray | None, freq: str) -> list[str]:
    if freq == "A":
        return [str(y) for y in year.tolist()]
    if freq == "Q":
        return [f"{y}-Q{s + 1}" for y, s in zip(year.tolist(), sub.tolist())]
    if freq == "M":
        return [f"{y}-M{s + 1:02d}" for y, s in zip(year.tolist(), sub.tolist())]
    return [f"{y}-{s + 1:02d}" for y, s in zip(year.tolist(), sub.tolist())]   # "M-" : 2024-03


# ---------------------------------------------------------------------------------------------- WCO
def wco_clearance(out: Path, seed: int) -> list[SampleFile]:
    """E-commerce clearance times, hours, quarterly, alpha-3; plain CSV from a customs statistics unit."""
    dgp = DGPS["WCO.ECOM_CLEARANCE_HOURS"]
    c, y, s = grid(len(ALPHA3), len(YEARS), 4)
    year = YEARS[y]
    vals = simulate(dgp, rng_for(seed, "wco-clearance"), c, year, s)
    periods = _periods(year, s, "Q")
    rows = [{"country": ALPHA3[ci], "quarter": p, "avg_clearance_hours": number(v, dgp.decimals),
             "obs_status": "P" if yy == 2025 else "A"}
            for ci, p, v, yy in zip(c.tolist(), periods, vals.tolist(), year.tolist())]
    spoils = [Spoil("ref_area", "country", "XXX", "unknown-country"),
              Spoil("period", "quarter", "2024-Q5", "bad-period"),
              Spoil("value", "avg_clearance_hours", "n/a", "bad-value"),
              Spoil("ref_area", "country", "", "missing-field")]
    mapping = {"title": "WCO e-commerce clearance times", "indicator": _const(dgp.indicator),
               "ref_area": "country", "period": "quarter", "value": "avg_clearance_hours",
               "unit": _const("HOURS"), "obs_status": "obs_status"}
    return [_row_file(out, "wco/ecom_clearance_hours.csv", "csv", list(rows[0]), rows, spoils, 5,
                      rng_for(seed, "wco-clearance", 1), mapping, org="WCO", dataset_id="WCO-ECOM-CLEARANCE",
                      indicators=[dgp.indicator], value_column="avg_clearance_hours",
                      description="E-commerce clearance time (hours), quarterly, ISO alpha-3; bad rows and duplicates")]


HAZWASTE_HEADINGS = ("2620", "2621", "3825", "3915", "8548", "8549")
SDMX_CSV_COLUMNS = ("DATAFLOW", "FREQ", "INDICATOR", "REF_AREA", "COMMODITY", "TIME_PERIOD", "OBS_VALUE",
                    "UNIT_MEASURE", "UNIT_MULT", "OBS_STATUS")


def wco_hazwaste(out: Path, seed: int) -> list[SampleFile]:
    """Seizures of hazardous waste, KG, annual, by HS heading, SDMX-CSV 1.0; release 1 (2025 provisional,
    some values missing) and release 2 revising the 2025 values."""
    dgp = DGPS["WCO.HAZWASTE_SEIZURES"]
    c, h, y = grid(len(ALPHA3), len(HAZWASTE_HEADINGS), len(YEARS))
    year = YEARS[y]
    rng = rng_for(seed, "wco-hazwaste")
    vals = simulate(dgp, rng, c, year, dims=[h], dim_sizes=[len(HAZWASTE_HEADINGS)])
    flow = "WCO:DF_HAZWASTE(1.0)"
    rows = [{"DATAFLOW": flow, "FREQ": "A", "INDICATOR": dgp.indicator, "REF_AREA": ALPHA3[ci],
             "COMMODITY": HAZWASTE_HEADINGS[hi], "TIME_PERIOD": str(yy), "OBS_VALUE": number(v, 0),
             "UNIT_MEASURE": "KG", "UNIT_MULT": 0, "OBS_STATUS": "P" if yy == 2025 else "A"}
            for ci, hi, yy, v in zip(c.tolist(), h.tolist(), year.tolist(), vals.tolist())]
    # Four values not available (empty OBS_VALUE, OBS_STATUS M): valid observations with a null value.
    for i in rng.choice(np.flatnonzero(year < 2025), size=4, replace=False).tolist():
        rows[i] = {**rows[i], "OBS_VALUE": None, "OBS_STATUS": "M"}
    spoils = [Spoil("commodity", "COMMODITY", "7799", "unknown-hs-code"),
              Spoil("value", "OBS_VALUE", "approx. 1200", "bad-value"),
              Spoil("ref_area", "REF_AREA", "XXX", "unknown-country")]
    mapping = {"title": "WCO seizures of hazardous waste", "indicator": "INDICATOR", "ref_area": "REF_AREA",
               "commodity": "COMMODITY", "period": "TIME_PERIOD", "value": "OBS_VALUE", "unit": "UNIT_MEASURE",
               "unit_mult": "UNIT_MULT", "obs_status": "OBS_STATUS", "attributes": {"FREQ": "FREQ"}}
    meta = dict(org="WCO", dataset_id="WCO-HAZWASTE-SEIZURES", indicators=[dgp.indicator], value_column="OBS_VALUE")
    rel1 = "wco/hazwaste_seizures.sdmx.csv"
    first = _row_file(out, rel1, "sdmx-csv", SDMX_CSV_COLUMNS, rows, spoils, 3, rng_for(seed, "wco-hazwaste", 1),
                      mapping, release="1", description="Seizures of hazardous waste (KG) by HS heading, annual, "
                      "SDMX-CSV; 2025 provisional; missing values, bad rows, duplicates", **meta)
    # Release 2: the 2025 provisional values are revised (x U(0.92, 1.08)) and become final; no mess.
    rev_rng = rng_for(seed, "wco-hazwaste", 2)
    revised, changed = [], 0
    for r in rows:
        if r["TIME_PERIOD"] == "2025" and r["OBS_VALUE"] is not None:
            new = number(round(r["OBS_VALUE"] * rev_rng.uniform(0.92, 1.08)), 0)
            changed += new != r["OBS_VALUE"]
            r = {**r, "OBS_VALUE": new, "OBS_STATUS": "A"}
        revised.append(r)
    second = _row_file(out, "wco/hazwaste_seizures.rev2.sdmx.csv", "sdmx-csv", SDMX_CSV_COLUMNS, revised, [], 0,
                       rev_rng, mapping, release="2", revision_of=rel1, revised_values=changed,
                       description="Revised release of the same dataset: 2025 values final (status A), "
                       f"{changed} values changed", **meta)
    return [first, second]


# ---------------------------------------------------------------------------------------------- WHO
WHO_SERIES = (("WHO.VACCINE_SHIPMENTS_DOSES", "3002", "DOSES"), ("WHO.MEDICINE_SHIPMENTS_USD", "3004", "USD"))


def who_shipments(out: Path, seed: int) -> list[SampleFile]:
    """Vaccine (doses, HS 3002) and critical-medicine (USD, HS 3004) shipments, monthly, JSON Lines."""
    rows: list[dict] = []
    for k, (indicator, hs, unit) in enumerate(WHO_SERIES):
        dgp = DGPS[indicator]
        c, y, m = grid(len(ALPHA3), len(YEARS), 12)
        year = YEARS[y]
        vals = simulate(dgp, rng_for(seed, "who-shipments", k), c, year, m)
        rows += [{"country": ALPHA3[ci], "indicator": indicator, "hs_code": hs, "month": p,
                  "value": number(v, dgp.decimals), "unit": unit}
                 for ci, p, v in zip(c.tolist(), _periods(year, m, "M-"), vals.tolist())]
    spoils = [Spoil("commodity", "hs_code", "7799", "unknown-hs-code"),
              Spoil("period", "month", MISSING, "missing-field"),
              Spoil("value", "value", "n/a", "bad-value"),
              Spoil("ref_area", "country", "XXX", "unknown-country")]
    mapping = {"title": "WHO vaccine and critical-medicine shipments", "indicator": "indicator",
               "ref_area": "country", "commodity": "hs_code", "period": "month", "value": "value", "unit": "unit"}
    return [_row_file(out, "who/medical_shipments.jsonl", "jsonl", None, rows, spoils, 4,
                      rng_for(seed, "who-shipments", 9), mapping, org="WHO", dataset_id="WHO-MEDICAL-SHIPMENTS",
                      indicators=[s[0] for s in WHO_SERIES], value_column="value",
                      description="Vaccine doses (HS 3002) and critical medicines USD (HS 3004), monthly "
                      "(2024-03 style), JSON Lines; bad rows and duplicates")]


# ---------------------------------------------------------------------------------------------- ICAO
# How each State reports tonnes: as "thousand KG", as KG with multiplier 3, or in plain KG (x 1000).
ICAO_UNITS = {**{c: ("thousand KG", 0, 1) for c in ("FRA", "ITA", "ESP", "MAR", "EGY")},
              **{c: ("KG", 3, 1) for c in ("DEU", "NLD", "POL", "GBR", "TUR")},
              **{c: ("KG", 0, 1000) for c in ("USA", "CAN", "MEX", "BRA", "CHL")}}


def icao_aircargo(out: Path, seed: int) -> list[SampleFile]:
    """Air cargo of vaccines, tonnes, monthly (2024-M03), alpha-2 codes, mixed unit spellings, CSV."""
    dgp = DGPS["ICAO.AIR_CARGO_VACCINES"]
    c, y, m = grid(len(ALPHA3), len(YEARS), 12)
    year = YEARS[y]
    vals = simulate(dgp, rng_for(seed, "icao-aircargo"), c, year, m)
    a2 = codes("alpha2")
    rows = []
    for ci, p, v in zip(c.tolist(), _periods(year, m, "M"), vals.tolist()):
        unit, mult, factor = ICAO_UNITS.get(ALPHA3[ci], ("T", 0, 1))
        value = number(v * factor, 0) if factor != 1 else number(v, dgp.decimals)
        rows.append({"State": a2[ci], "Month": p, "VaccineCargo": value, "Unit": unit, "UnitMultiplier": mult})
    spoils = [Spoil("period", "Month", "2024-M13", "bad-period"),
              Spoil("ref_area", "State", "XX", "unknown-country"),
              Spoil("unit", "Unit", MISSING, "missing-unit")]
    mapping = {"title": "ICAO air cargo of vaccines", "indicator": _const(dgp.indicator), "ref_area": "State",
               "period": "Month", "value": "VaccineCargo", "unit": "Unit", "unit_mult": "UnitMultiplier"}
    return [_row_file(out, "icao/air_cargo_vaccines.csv", "csv", list(rows[0]), rows, spoils, 2,
                      rng_for(seed, "icao-aircargo", 1), mapping, org="ICAO", dataset_id="ICAO-VACCINE-AIRCARGO",
                      indicators=[dgp.indicator], value_column="VaccineCargo",
                      description="Air cargo of vaccines (tonnes; some States in 'thousand KG', KG x10^3 or KG), "
                      "monthly, ISO alpha-2; bad rows and duplicates")]


# ---------------------------------------------------------------------------------------------- WTO
WTO_PARTNERS = ("CHN", "USA", "DEU", "JPN")
WTO_CHAPTERS = ("27", "30", "38", "84", "85", "87")


def wto_exports(out: Path, seed: int) -> list[SampleFile]:
    """Exports by HS chapter, USD millions (UNIT_MULT 6), annual, reporter x partner, SDMX-ML 2.1 generic."""
    dgp = DGPS["WTO.EXPORTS_USD"]
    r, p, k, y = grid(len(ALPHA3), len(WTO_PARTNERS), len(WTO_CHAPTERS), len(YEARS))
    partner_idx = np.array([ALPHA3.index(x) for x in WTO_PARTNERS])
    keep = partner_idx[p] != r
    r, p, k, y = r[keep], p[keep], k[keep], y[keep]
    year = YEARS[y]
    vals = simulate(dgp, rng_for(seed, "wto-exports"), r, year, dims=[p, k],
                    dim_sizes=[len(WTO_PARTNERS), len(WTO_CHAPTERS)]) / 1e6
    series: list = []
    n_years = len(YEARS)
    for start in range(0, len(r), n_years):   # rows are grouped by series, years innermost
        ri, pi, ki = int(r[start]), int(p[start]), int(k[start])
        key = {"FREQ": "A", "INDICATOR": dgp.indicator, "REPORTER": ALPHA3[ri], "PARTNER": WTO_PARTNERS[pi],
               "PRODUCT": WTO_CHAPTERS[ki]}
        obs = [(str(yy), f"{v:.3f}", "P" if yy == 2025 else None)
               for yy, v in zip(year[start:start + n_years].tolist(), vals[start:start + n_years].tolist())]
        series.append((key, {"UNIT_MEASURE": "USD", "UNIT_MULT": "6"}, obs))
    rel = "wto/exports_hs_chapter.sdmx.xml"
    path = out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    n = write_generic(path, message_id="WTO-EXPORTS-HS-CHAPTER", sender="WTO", prepared=PREPARED,
                      agency="WTO", dsd_id="DSD_TRADE_HS", series=series)
    mapping = {"title": "WTO exports by HS chapter", "indicator": "INDICATOR", "ref_area": "REPORTER",
               "counterpart_area": "PARTNER", "commodity": "PRODUCT", "period": "TIME_PERIOD",
               "value": "OBS_VALUE", "unit": "UNIT_MEASURE", "unit_mult": "UNIT_MULT", "obs_status": "OBS_STATUS",
               "defaults": {"obs_status": "A"}}
    name = write_mapping(path, {"format": "sdmx-ml", **mapping, "licence": LICENCE})
    return [SampleFile(path=rel, kind="dataset", org="WTO", format="sdmx-ml", dataset_id="WTO-EXPORTS-HS-CHAPTER",
                       mapping=f"wto/{name}", indicators=[dgp.indicator], rows=n, good=n,
                       description="Exports by HS chapter (USD millions, UNIT_MULT 6), reporter x partner, annual, "
                       "SDMX-ML 2.1 generic data message; clean")]


# ---------------------------------------------------------------------------------------------- UPU
def upu_postal(out: Path, seed: int) -> list[SampleFile]:
    """Postal e-commerce items, quarterly, country NAMES, CSV."""
    dgp = DGPS["UPU.POSTAL_ECOM_ITEMS"]
    c, y, s = grid(len(ALPHA3), len(YEARS), 4)
    year = YEARS[y]
    vals = simulate(dgp, rng_for(seed, "upu-postal"), c, year, s)
    names = codes("name")
    rows = [{"Country": names[ci], "Quarter": p, "Items": number(v, 0), "Unit": "items"}
            for ci, p, v in zip(c.tolist(), _periods(year, s, "Q"), vals.tolist())]
    spoils = [Spoil("ref_area", "Country", "Atlantis", "unknown-country"),
              Spoil("period", "Quarter", "2024-Q5", "bad-period")]
    mapping = {"title": "UPU postal e-commerce items", "indicator": _const(dgp.indicator), "ref_area": "Country",
               "period": "Quarter", "value": "Items", "unit": "Unit"}
    return [_row_file(out, "upu/postal_ecom_items.csv", "csv", list(rows[0]), rows, spoils, 2,
                      rng_for(seed, "upu-postal", 1), mapping, org="UPU", dataset_id="UPU-POSTAL-ECOM",
                      indicators=[dgp.indicator], value_column="Items",
                      description="Postal e-commerce items (number), quarterly, country names; bad rows and duplicates")]


# ---------------------------------------------------------------------------------------------- IMO
def imo_port_calls(out: Path, seed: int) -> list[SampleFile]:
    """Port calls, annual, alpha-3, JSON Lines."""
    dgp = DGPS["IMO.PORT_CALLS"]
    c, y = grid(len(ALPHA3), len(YEARS))
    year = YEARS[y]
    vals = simulate(dgp, rng_for(seed, "imo-port-calls"), c, year)
    rows = [{"economy": ALPHA3[ci], "year": yy, "port_calls": number(v, 0)}
            for ci, yy, v in zip(c.tolist(), year.tolist(), vals.tolist())]
    spoils = [Spoil("value", "port_calls", "not reported", "bad-value")]
    mapping = {"title": "IMO port calls", "indicator": _const(dgp.indicator), "ref_area": "economy",
               "period": "year", "value": "port_calls", "unit": _const("NUMBER")}
    return [_row_file(out, "imo/port_calls.jsonl", "jsonl", None, rows, spoils, 1,
                      rng_for(seed, "imo-port-calls", 1), mapping, org="IMO", dataset_id="IMO-PORT-CALLS",
                      indicators=[dgp.indicator], value_column="port_calls",
                      description="Port calls (number), annual (JSON number years), alpha-3, JSON Lines")]
