"""The ingest's harmonized output equals an independent, row-by-row harmonization (speed
changes must not move the output).

A deterministic workload of messy observations (country names and codes, HS codes with dots and lost
zeros, SDMX periods of every frequency, units with multipliers, missing values, duplicates, bad rows, a
revising release) is sent as signed chunk events to the real broker and ingested by the real
`ingest("datasets")` into the real S3 server. The expected output is computed here without the engine:
each observation through the scalar rules of `ioxhub.harmonize` (the first failing field refuses the
row), the last copy of a series key kept within a release, the newest release winning across releases.
Row counts, the run's counts, and a checksum of the sorted rows (current state, history of each
release, refused rows) must match exactly.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pyarrow.parquet as pq
import pytest

from ioxhub.contracts import codec, release_manifest
from app.demo import ensure_keys
from ioxhub.harmonize.countries import harmonize_area
from ioxhub.harmonize.hs import normalize_hs
from ioxhub.harmonize.periods import parse_period
from ioxhub.harmonize.units import canonical_unit, normalize_value
from ioxhub.ingest import harmonized, spill
from ioxhub.ingest.observations import SERIES_KEY
from ioxhub.ingest.run import ingest
from ioxhub.kafka import make_producer
from ioxhub.names import datasets_topic
from ioxhub.keys import load_signer
from ioxhub.storage import ObjectStore, quarantine_rows_key
from ioxhub.tables import object_key
import hub_tables

pytestmark = pytest.mark.integration

ORG = "WTO"
AREAS = ["FRA", "FR", "250", "France", "DEU", "Germany", "276", "US", "USA", "840", "United States", "Kenya", "KEN",
         "404", "Atlantis", "World", "JPN", "Japan"]
COMMODITIES = ["010121", "0101.21", "10121", "0101", "01", "TOTAL", "8517.13", "300220", "7799", "3002.15", "271019"]
PERIODS = ["2019", "2020", "2020-Q2", "2021-M03", "2021-03", "2022-W05", "2023-03-15", "2020-S1", "2024-Q5", "2024",
           "2018-Q4", "2025-M12"]
UNITS = ["USD", "thousand USD", "KG", "T", "thousand KG", "lbs", "USD"]
STATUS = ["A", "E", "P"]
FLOWS = ["M", "X"]              # an extra dimension
ACTIONS = ["I", "D", "R"]       # SDMX ACTION (release r2)
SOURCE = "equivalence.csv"


def _strings() -> list[str]:
    return ["TRADE.IMPORTS", "TRADE.EXPORTS", *AREAS, *COMMODITIES, *PERIODS, *UNITS, *STATUS, *FLOWS, *ACTIONS, SOURCE]


def _chunk(rng: np.random.Generator, dataset: str, release: str, seq: int, count: int, n: int, produced: dt.datetime,
           first_line: int, actions: bool = False) -> dict:
    """One chunk of `n` observations drawn from a small key space (so duplicates and revisions happen),
    with an extra dimension FLOW, and with `actions` an SDMX ACTION per row (some D: deletions)."""
    strings = _strings()
    a0 = 2
    c0 = a0 + len(AREAS)
    p0 = c0 + len(COMMODITIES)
    u0 = p0 + len(PERIODS)
    s0 = u0 + len(UNITS)
    f0 = s0 + len(STATUS)
    x0 = f0 + len(FLOWS)

    def pick(base: int, size: int, absent: float) -> list[int]:
        idx = base + rng.integers(0, size, n)
        idx[rng.random(n) < absent] = -1
        return idx.tolist()

    value = np.round(rng.lognormal(5, 2, n), 3)
    missing = np.flatnonzero(rng.random(n) < 0.05)
    value[missing] = 0.0
    return {
        "event_id": f"{dataset}-{release}-{seq}", "org": ORG, "dataset_id": dataset, "release_id": release,
        "chunk_seq": seq, "chunk_count": count, "produced_at": produced, "licence": None, "source_url": None,
        "strings": strings, "indicator": pick(0, 2, 0.01), "ref_area": pick(a0, len(AREAS), 0.01),
        "counterpart_area": pick(a0, len(AREAS), 0.3), "commodity": pick(c0, len(COMMODITIES), 0.2),
        "period": pick(p0, len(PERIODS), 0.01), "value": value.tolist(), "missing_values": missing.tolist(),
        "unit": pick(u0, len(UNITS), 0.01), "unit_mult": rng.choice([0, 0, 0, 3, 6, 99], n).tolist(),
        "obs_status": pick(s0, len(STATUS), 0.2), "attributes": [], "source_file": [len(strings) - 1] * n,
        "source_line": list(range(first_line, first_line + n)),
        "dimensions": [{"name": "FLOW", "values": pick(f0, len(FLOWS), 0.2)}],
        "action": pick(x0, len(ACTIONS), 0.3) if actions else [], "commodity_classification": None,
    }


def workload(dataset: str, seed: int = 11) -> list[tuple[str, list[dict], dt.datetime]]:
    """Two releases: r1 (3 chunks) then r2 (2 chunks) revising part of it a day later."""
    rng = np.random.default_rng(seed)
    releases = []
    for release, chunks, day in (("r1", 3, 1), ("r2", 2, 2)):
        produced = dt.datetime(2026, 3, day, 12, tzinfo=dt.timezone.utc)
        recs = [_chunk(rng, dataset, release, seq, chunks, 2500, produced, 2 + 2500 * seq, actions=release == "r2")
                for seq in range(chunks)]
        releases.append((release, recs, produced))
    return releases


def send(releases) -> None:
    producer = make_producer()
    signer = load_signer(ORG)
    topic = datasets_topic(ORG)
    try:
        for release, chunks, produced in releases:
            values = [codec.encode("dataset_chunk", c) for c in chunks]
            digest = hashlib.sha256(b"".join(bytes(codec.body(v)) for v in values)).hexdigest()
            first = chunks[0]
            manifest = release_manifest.encode({
                "event_id": f"{first['dataset_id']}-{release}-manifest", "org": ORG, "dataset_id": first["dataset_id"],
                "release_id": release, "chunk_count": len(chunks),
                "observation_count": sum(len(c["indicator"]) for c in chunks), "checksum": f"sha256:{digest}",
                "produced_at": produced})
            events = [(v, c["event_id"]) for v, c in zip(values, chunks)] + [(manifest, f"{first['dataset_id']}-{release}-manifest")]
            for value, event_id in events:
                headers = signer.sign(value, codec.record_headers(ORG, codec.writer_of(value)[0].fingerprint, event_id), topic)
                producer.send(topic, key=f"{ORG}/{first['dataset_id']}".encode(), value=value, headers=headers)
        producer.flush()
    finally:
        producer.close()


# ---------------------------------------------------------------------------------- independent path
def _text(strings: list[str], i: int) -> str | None:
    return strings[i] if i >= 0 else None


def harmonize_row(chunk: dict, i: int, published_ms: int) -> tuple[dict | None, tuple | None]:
    """One observation through the scalar rules: (harmonized row, None) or (None, (line, field, reason))."""
    s = chunk["strings"]
    indicator, area = _text(s, chunk["indicator"][i]), _text(s, chunk["ref_area"][i])
    counterpart, commodity = _text(s, chunk["counterpart_area"][i]), _text(s, chunk["commodity"][i])
    period, unit = _text(s, chunk["period"][i]), _text(s, chunk["unit"][i])
    value = None if i in chunk["_missing"] else chunk["value"][i]
    ref, cp, hs, per = harmonize_area(area), harmonize_area(counterpart), normalize_hs(commodity), parse_period(period)
    action = _text(s, chunk["action"][i]) if chunk["action"] else None
    v, canonical, unit_reason = normalize_value(value, unit, chunk["unit_mult"][i])
    detail = canonical_unit(unit)
    if action == "D":       # a deletion needs its key only: no unit check
        unit_reason = None
        if canonical is None:        # a unit the rule refuses: the D row keeps none of its details either
            detail = detail._replace(status=None, currency=None, price_basis=None, base_year=None, denominator=None)
    checks = [("indicator", "missing-indicator" if indicator is None else None),
              ("ref_area", "missing-ref-area" if area is None else ref.reason),
              ("counterpart_area", cp.reason), ("commodity", hs.reason),
              ("period", "missing-period" if period is None else per.reason), ("unit", unit_reason)]
    for field, reason in checks:
        if reason is not None:
            return None, (chunk["source_line"][i], field, reason)
    flow = _text(s, chunk["dimensions"][0]["values"][i])
    return {"release_id": chunk["release_id"], "schema_version": "dataset_chunk/v2", "indicator": indicator,
            "ref_area": ref.code, "area_type": ref.area_type, "counterpart_area": cp.code,
            "counterpart_area_type": cp.area_type, "commodity": hs.code,
            "dimensions": f"FLOW={flow}" if flow else "", "freq": per.freq,
            "period": per.label, "period_start": per.start, "period_end": per.end, "value": v, "unit": canonical,
            "unit_code": unit, "unit_status": detail.status, "currency": detail.currency,
            "price_basis": detail.price_basis, "base_year": detail.base_year, "unit_denominator": detail.denominator,
            "obs_status": _text(s, chunk["obs_status"][i]), "published_at": published_ms, "deleted": action == "D"}, None


def expected(releases) -> dict:
    current: dict[tuple, dict] = {}
    history, refused = {}, []
    counts = {"received": 0, "harmonized": 0, "refused": 0, "duplicate": 0, "revisions": 0, "deleted": 0}
    no_unit = [i for i, k in enumerate(SERIES_KEY) if k != "unit"]
    for release, chunks, produced in releases:
        ms = int(produced.timestamp() * 1000)
        latest: dict[tuple, dict] = {}
        for chunk in chunks:
            chunk["_missing"] = set(chunk["missing_values"])
            for i in range(len(chunk["indicator"])):
                counts["received"] += 1
                row, bad = harmonize_row(chunk, i, ms)
                if bad:
                    refused.append((release, *bad))
                    continue
                key = tuple(row[k] for k in SERIES_KEY)
                if key in latest:
                    counts["duplicate"] += 1
                    del latest[key]          # the last copy wins, in the position of the last copy
                latest[key] = row
        history[release] = list(latest.values())
        counts["harmonized"] += len(latest)
        before = list(current)
        for key, row in latest.items():      # in the order of their last copies, as published
            newer = lambda old: (old["published_at"], old["release_id"]) <= (row["published_at"], row["release_id"])  # noqa: E731
            if row["deleted"]:               # a D row deletes its key; without a unit, its key in every unit
                gone = [k for k in current if k == key or
                        (row["unit"] is None and [k[i] for i in no_unit] == [key[i] for i in no_unit])]
                for k in gone:
                    if newer(current[k]):
                        del current[k]
            elif key not in current or newer(current[key]):
                current[key] = {k: v for k, v in row.items() if k != "deleted"}
        counts["revisions"] += sum(k in current and current[k]["release_id"] == release for k in before)
        counts["deleted"] += sum(k not in current for k in before)
    counts["refused"] = len(refused)
    return {"current": list(current.values()), "history": history, "refused": refused, "counts": counts}


def checksum(rows) -> str:
    """sha256 over the sorted rows, each a tuple of its fields in a stable text form."""
    def norm(v):
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, dt.datetime):
            return str(int(v.timestamp() * 1000))
        return "" if v is None else str(v)
    lines = sorted("\x1f".join(norm(row[k]) for k in sorted(row)) for row in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _ms(row: dict) -> dict:
    return {**row, "published_at": int(row["published_at"].timestamp() * 1000)}


# ---------------------------------------------------------------------------------- the test
@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys([ORG], provisioned_settings)
    return provisioned_settings


@pytest.mark.parametrize("dataset, slice_rows", [("equivalence_a", None), ("equivalence_b", 300)])
def test_ingest_output_equals_row_by_row_harmonization(hub, dataset, slice_rows, monkeypatch):
    """`slice_rows`: the engine's key ranges (and row groups) made tiny and nothing held in memory, so
    a release is spilled to disk and it and the current partitions it revises are processed in many
    ranges: the output must not change."""
    if slice_rows:
        monkeypatch.setattr(harmonized, "SLICE_ROWS", slice_rows)
        monkeypatch.setattr(spill, "MEMORY_ROWS", 0)
    ingest("datasets", idle_ms=1500)      # drain what earlier tests left on the shared broker
    releases = workload(dataset)
    send(releases)
    counts = ingest("datasets", idle_ms=1500)
    want = expected(workload(dataset))

    assert counts["events"] == {"consumed": 7, "applied": 7, "staged": 0, "duplicate": 0, "quarantined": 0}
    c = want["counts"]
    assert (counts["observations_received"], counts["observations_harmonized"], counts["observations_refused"],
            counts["observations_duplicate"], counts["revisions_applied"], counts["observations_deleted"]) == (
        c["received"], c["harmonized"], c["refused"], c["duplicate"], c["revisions"], c["deleted"])
    assert c["refused"] > 50 and c["duplicate"] > 50 and c["revisions"] > 50 and c["deleted"] > 50   # each rule

    store = ObjectStore()
    keys = sorted(object_key(f.file_path, store.settings.bucket)
                  for f in hub_tables.tables().data_files(hub_tables.observations(ORG, dataset)))
    if slice_rows:   # the tiny ranges really were used: partitions written in several row groups
        assert max(pq.ParquetFile(io.BytesIO(store.get_bytes(k))).num_row_groups for k in keys) > 1
    current = [_ms(r) for r in hub_tables.current_rows(ORG, dataset).to_pylist()]
    assert len(current) == len(want["current"])
    assert checksum(current) == checksum(want["current"])
    for release, rows in want["history"].items():
        got = [_ms(r) for r in hub_tables.history_rows(ORG, dataset, release).to_pylist()]
        assert len(got) == len(rows) and checksum(got) == checksum(rows), release
    refused = []
    for release in want["history"]:
        table = pq.read_table(io.BytesIO(store.get_bytes(quarantine_rows_key(ORG, dataset, release))))
        refused += [(release, r["source_line"], r["field"], r["reason"]) for r in table.to_pylist()]
    assert sorted(refused) == sorted(want["refused"])
