"""Sample feeds: deterministic bytes, exact counts, standard formats, and a DGP whose planted effects a
plain two-way fixed effects regression recovers (the real estimator is consumers/derive's)."""
from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pycountry
import pytest
import yaml

from ioxhub.errors import IoxhubError
from producers.mapping import ColumnMapping
from producers.samples import PLANTED_EFFECTS, SampleManifest, generate
from producers.samples import bulk
from producers.samples.countries import ALPHA3
from producers.samples.feeds import imo_port_calls, wco_clearance
from producers.samples.timeline import INSTRUMENTS

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[Path, SampleManifest]:
    out = tmp_path_factory.mktemp("samples")
    return out, generate(out, seed=0)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _data_lines(path: Path, fmt: str) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[1:] if fmt in ("csv", "sdmx-csv") else lines


def _records(path: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------------ determinism
def test_same_seed_same_bytes_other_seed_other_values(sample, tmp_path):
    out, _ = sample
    again = generate(tmp_path / "again", seed=0)
    assert _digests(tmp_path / "again") == _digests(out)
    assert again.to_dict() == SampleManifest.load(out).to_dict()
    generate(tmp_path / "other", seed=1)
    other = _digests(tmp_path / "other")
    changed = {k for k, v in _digests(out).items() if other[k] != v}
    assert "wco/ecom_clearance_hours.csv" in changed and "wto/exports_hs_chapter.sdmx.xml" in changed
    assert not any(k.startswith("policies/") for k in changed)   # the timeline does not depend on the seed


def test_bulk_bytes_do_not_depend_on_batching(tmp_path, monkeypatch):
    bulk.wto_imports_bulk(tmp_path / "a", 7, 0.6)
    monkeypatch.setattr(bulk, "BATCH_CODES", 1)
    [f] = bulk.wto_imports_bulk(tmp_path / "b", 7, 0.6)
    assert f.rows == 3 * bulk.ROWS_PER_CODE
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    assert len(_data_lines(tmp_path / "a" / f.path, "csv")) == f.rows


def test_default_set_size(sample):
    _, manifest = sample
    totals = manifest.totals()
    assert 50_000 <= totals["good"] <= 150_000
    assert totals["bad"] > 0 and totals["duplicates"] > 0


def test_bad_arguments_are_clear_errors(tmp_path):
    for kwargs in ({"seed": -1}, {"scale": 0}, {"scale": 10_000}):
        with pytest.raises(IoxhubError):
            generate(tmp_path, **kwargs)
    run = subprocess.run([sys.executable, "-m", "app.cli", "samples", "generate", str(tmp_path), "--scale", "0"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.startswith("error: scale must be a positive number"), run.stderr


# ------------------------------------------------------------------------------------------ counts
def test_counts_reconcile_exactly(sample):
    out, manifest = sample
    for f in manifest.datasets():
        if f.format == "sdmx-ml":
            continue
        path = out / f.path
        lines = _data_lines(path, f.format)
        first = 2 if f.format in ("csv", "sdmx-csv") else 1
        assert len(lines) == f.rows == f.good + f.duplicates + len(f.bad), f.path
        bad_lines = {b.line for b in f.bad}
        dup_lines = set(f.duplicate_lines)
        assert not bad_lines & dup_lines
        kept = [line for i, line in enumerate(lines, start=first) if i not in bad_lines]
        assert len(set(kept)) == f.good, f.path                       # good rows are distinct ...
        counts = Counter(kept)
        assert sum(n - 1 for n in counts.values()) == f.duplicates     # ... and each duplicate copies one
        assert all(counts[lines[i - first]] == 2 for i in dup_lines)
        records = _records(path, f.format)
        value_column = ColumnMapping.from_file(out / f.mapping).fields["value"].column
        for b in f.bad:
            cell = records[b.line - first].get(b.column)
            assert (cell in (None, "")) if b.value in (None, "") else str(cell) == b.value, (f.path, b)
        missing = sum(1 for i, r in enumerate(records, start=first)
                      if i not in bad_lines | dup_lines and r.get(value_column) in ("", None))
        assert missing == f.missing_values, f.path


def test_every_kind_of_mess_is_planted(sample):
    _, manifest = sample
    reasons = Counter(b.reason for f in manifest.datasets() for b in f.bad)
    assert set(reasons) == {"unknown-country", "unknown-hs-code", "bad-period", "bad-value", "missing-field", "missing-unit"}
    assert {b.value for f in manifest.datasets() for b in f.bad} >= {"XXX", "7799", "2024-Q5", "n/a"}


def test_revision_changes_only_the_2025_values(sample):
    out, manifest = sample
    rev = manifest.file("wco/hazwaste_seizures.rev2.sdmx.csv")
    first = manifest.file(rev.revision_of)
    assert rev.dataset_id == first.dataset_id and (first.release, rev.release) == ("1", "2")
    bad = {b.line - 2 for b in first.bad} | {d - 2 for d in first.duplicate_lines}
    old = [r for i, r in enumerate(_records(out / first.path, "sdmx-csv")) if i not in bad]
    new = _records(out / rev.path, "sdmx-csv")
    key = ("REF_AREA", "COMMODITY", "TIME_PERIOD")
    assert [tuple(r[k] for k in key) for r in old] == [tuple(r[k] for k in key) for r in new]
    changed = [(o, n) for o, n in zip(old, new) if o["OBS_VALUE"] != n["OBS_VALUE"]]
    assert len(changed) == rev.revised_values > 0
    assert all(o["TIME_PERIOD"] == "2025" and o["OBS_STATUS"] == "P" and n["OBS_STATUS"] == "A" for o, n in changed)


# ------------------------------------------------------------------------------------------ formats
def test_sdmx_ml_reads_with_sdmx1(sample):
    import sdmx
    out, manifest = sample
    f = manifest.file("wto/exports_hs_chapter.sdmx.xml")
    msg = sdmx.read_sdmx(out / f.path)
    [ds] = msg.data
    assert len(ds.obs) == f.rows == f.good
    series = sdmx.to_pandas(ds)
    assert set(series.index.names) == {"TIME_PERIOD", "FREQ", "INDICATOR", "REPORTER", "PARTNER", "PRODUCT"}
    assert set(series.index.get_level_values("REPORTER")) == set(ALPHA3)
    assert set(series.index.get_level_values("INDICATOR")) == {"WTO.EXPORTS_USD"}
    key = next(iter(ds.series))
    assert key.attrib["UNIT_MULT"].value == "6"


def test_mappings_fit_the_producers_format_and_the_files(sample):
    out, manifest = sample
    for f in manifest.datasets():
        mapping = ColumnMapping.from_file(out / f.mapping)
        assert mapping.format == f.format
        if f.format == "sdmx-ml":
            columns = ["TIME_PERIOD", "OBS_VALUE", "OBS_STATUS", "FREQ", "INDICATOR", "REPORTER", "PARTNER",
                       "PRODUCT", "UNIT_MEASURE", "UNIT_MULT"]
        elif f.format == "jsonl":
            columns = sorted({k for r in _records(out / f.path, "jsonl") for k in r})
        else:
            with (out / f.path).open(encoding="utf-8", newline="") as fh:
                columns = next(csv.reader(fh))
        mapping.resolve(columns, f.path)   # raises MappingError when a required field or column is missing


def test_country_variants_resolve_with_pycountry(sample):
    out, manifest = sample
    upu = manifest.file("upu/postal_ecom_items.csv")
    bad = {b.line for b in upu.bad}
    names = {r["Country"] for i, r in enumerate(_records(out / upu.path, "csv"), start=2) if i not in bad}
    assert {pycountry.countries.lookup(n).alpha_3 for n in names} == set(ALPHA3)
    icao = manifest.file("icao/air_cargo_vaccines.csv")
    bad = {b.line for b in icao.bad}
    recs = [r for i, r in enumerate(_records(out / icao.path, "csv"), start=2) if i not in bad]
    assert {pycountry.countries.get(alpha_2=r["State"]).alpha_3 for r in recs} == set(ALPHA3)
    assert {(r["Unit"], r["UnitMultiplier"]) for r in recs} == {("T", "0"), ("thousand KG", "0"), ("KG", "3"), ("KG", "0")}
    wto = _data_lines(out / "wto/imports_hs6_bulk.csv", "csv")
    assert {line.split(",")[0].strip('"') for line in wto} == {pycountry.countries.get(alpha_3=c).numeric for c in ALPHA3}


def test_policy_files_match_the_schema_and_the_planted_effects(sample):
    out, manifest = sample
    schema = json.loads((REPO / "schemas/policy_update/v1.avsc").read_text())
    fields = {f["name"]: f for f in schema["fields"]}
    symbols = {name: set(fields[name]["type"]["symbols"]) for name in ("instrument_type", "action")}
    publisher_fields = set(fields) - {"event_id", "org", "produced_at"}
    updates = []
    for f in manifest.policies():
        doc = yaml.safe_load((out / f.path).read_text(encoding="utf-8"))
        docs = doc if isinstance(doc, list) else [doc]
        assert len(docs) == f.rows
        updates += docs
    assert any(not isinstance(yaml.safe_load((out / f.path).read_text()), list) for f in manifest.policies())
    indicators = {i for f in manifest.datasets() for i in f.indicators}
    for u in updates:
        assert set(u) == publisher_fields
        assert u["instrument_type"] in symbols["instrument_type"] and u["action"] in symbols["action"]
        assert all(c in ALPHA3 for c in u["member_countries"])
        assert set(u["related_indicators"]) <= indicators
    adopted = {}
    for u in updates:
        if u["action"] == "ADOPTED_BY_MEMBER":
            for c in u["member_countries"]:
                adopted.setdefault(u["instrument_id"], {})[c] = int(u["effective_date"][:4])
    for e in PLANTED_EFFECTS:
        assert adopted[e.instrument_id] == dict(e.adopters), e.instrument_id
    no_effect = [e for e in PLANTED_EFFECTS if e.effect == 0.0]
    assert no_effect and all(e.adopters for e in no_effect)
    assert {i.instrument_id for i in INSTRUMENTS} == {u["instrument_id"] for u in updates}


# ------------------------------------------------------------------------------------------ planted effects
def _twfe(unit: np.ndarray, time: np.ndarray, y: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """OLS of y on d with unit and time fixed effects on a balanced panel (two-way within transform),
    with a unit-clustered standard error."""
    _, u = np.unique(unit, return_inverse=True)
    _, t = np.unique(time, return_inverse=True)
    assert len(y) == (u.max() + 1) * (t.max() + 1), "balanced panel expected"

    def within(x):
        return x - (np.bincount(u, x) / np.bincount(u))[u] - (np.bincount(t, x) / np.bincount(t))[t] + x.mean()

    yw, dw = within(y), within(d)
    beta = float(yw @ dw / (dw @ dw))
    scores = np.bincount(u, dw * (yw - beta * dw))
    return beta, float(np.sqrt(scores @ scores) / (dw @ dw))


def _clean_records(out: Path, f) -> list[dict]:
    first = 2 if f.format in ("csv", "sdmx-csv") else 1
    skip = {b.line for b in f.bad} | set(f.duplicate_lines)
    return [r for i, r in enumerate(_records(out / f.path, f.format), start=first) if i not in skip]


def _effect(indicator: str):
    [e] = [e for e in PLANTED_EFFECTS if e.indicator == indicator]
    return e


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_did_recovers_the_clearance_time_effect(tmp_path, seed):
    [f] = wco_clearance(tmp_path, seed)
    rows = _clean_records(tmp_path, f)
    e = _effect("WCO.ECOM_CLEARANCE_HOURS")
    country = np.array([r["country"] for r in rows])
    year = np.array([int(r["quarter"][:4]) for r in rows])
    d = (year >= np.array([e.adopters.get(c, 10_000) for c in country])).astype(float)
    beta, se = _twfe(country, np.array([r["quarter"] for r in rows]), np.array([float(r["avg_clearance_hours"]) for r in rows]), d)
    assert e.scale == "level" and e.effect == -12.0
    assert abs(beta - e.effect) <= e.tolerance, (beta, se)
    assert abs(beta / se) > 10


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_effect_instrument_shows_none(tmp_path, seed):
    """Within the tolerance on every seed; not significant on the default seed (at 5 %, about one seed in
    twenty shows a false positive, as any test of a true null does)."""
    [f] = imo_port_calls(tmp_path, seed)
    rows = _clean_records(tmp_path, f)
    e = _effect("IMO.PORT_CALLS")
    country = np.array([r["economy"] for r in rows])
    year = np.array([r["year"] for r in rows])
    d = (year >= np.array([e.adopters.get(c, 10_000) for c in country])).astype(float)
    beta, se = _twfe(country, year, np.log([r["port_calls"] for r in rows]), d)
    assert e.effect == 0.0 and len(e.adopters) >= 10
    assert abs(beta) <= e.tolerance, (beta, se)
    if seed == 0:
        assert abs(beta / se) < 1.96, (beta, se)


def _panel(out: Path, manifest: SampleManifest, indicator: str):
    """(unit, time, country, year, value) of the clean observations of one indicator, units harmonized."""
    if indicator == "UPU.POSTAL_ECOM_ITEMS":
        rows = _clean_records(out, manifest.file("upu/postal_ecom_items.csv"))
        country = [pycountry.countries.lookup(r["Country"]).alpha_3 for r in rows]
        return country, [r["Quarter"] for r in rows], country, [float(r["Items"]) for r in rows]
    if indicator == "WCO.HAZWASTE_SEIZURES":
        rows = [r for r in _clean_records(out, manifest.file("wco/hazwaste_seizures.sdmx.csv")) if r["OBS_VALUE"]]
        country = [r["REF_AREA"] for r in rows]
        # the 4 missing values leave a slightly unbalanced panel: fill them by dropping their series
        gaps = {(r["REF_AREA"], r["COMMODITY"]) for r in _clean_records(out, manifest.file("wco/hazwaste_seizures.sdmx.csv"))
                if not r["OBS_VALUE"]}
        rows = [r for r in rows if (r["REF_AREA"], r["COMMODITY"]) not in gaps]
        return ([f'{r["REF_AREA"]}/{r["COMMODITY"]}' for r in rows], [r["TIME_PERIOD"] for r in rows],
                [r["REF_AREA"] for r in rows], [float(r["OBS_VALUE"]) for r in rows])
    if indicator == "ICAO.AIR_CARGO_VACCINES":
        rows = _clean_records(out, manifest.file("icao/air_cargo_vaccines.csv"))
        kg = {"T": 1000.0, "thousand KG": 1000.0, "KG": 1.0}
        country = [pycountry.countries.get(alpha_2=r["State"]).alpha_3 for r in rows]
        value = [float(r["VaccineCargo"]) * kg[r["Unit"]] * 10.0 ** int(r["UnitMultiplier"]) for r in rows]
        return country, [r["Month"] for r in rows], country, value
    raise AssertionError(indicator)


@pytest.mark.parametrize("indicator", ["UPU.POSTAL_ECOM_ITEMS", "WCO.HAZWASTE_SEIZURES", "ICAO.AIR_CARGO_VACCINES"])
def test_did_recovers_the_log_scale_effects(sample, indicator):
    out, manifest = sample
    e = _effect(indicator)
    unit, time, country, value = (np.asarray(x) for x in _panel(out, manifest, indicator))
    year = np.array([int(t[:4]) for t in time])
    d = (year >= np.array([e.adopters.get(c, 10_000) for c in country])).astype(float)
    beta, se = _twfe(unit, time, np.log(value), d)
    assert e.scale == "log" and e.effect > 0.15
    assert abs(beta - e.effect) <= e.tolerance, (beta, se)


def test_producers_readers_read_every_file_with_its_mapping(sample):
    from producers.readers import open_source
    out, manifest = sample
    for f in manifest.datasets():
        source = open_source(out / f.path, f.format)
        mapping = ColumnMapping.from_file(out / f.mapping).resolve(source.columns, f.path)
        lines = np.concatenate([b.lines for b in source.batches(mapping.source_columns(), mapping.fields["value"].column)])
        assert len(lines) == f.rows, f.path
        if f.format != "sdmx-ml":
            first = 2 if f.format in ("csv", "sdmx-csv") else 1
            assert {b.line for b in f.bad} | set(f.duplicate_lines) <= set(lines.tolist())
            assert lines.tolist() == list(range(first, first + f.rows)), f.path
