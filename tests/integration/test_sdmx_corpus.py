"""The SDMX corpus round trip: each case of tests/corpus/sdmx/ is published (real tansu), ingested (real
SeaweedFS) and its harmonized rows compared with the case's expected.csv, written by hand from the file.

Every column of expected.csv is compared; rows are compared as a multiset (order does not matter). A case's
`case.yaml` gives the format, the structure file, a mapping and, per publish step, files and --map/--const
flags (tests/corpus/sdmx/README.md).
"""
from __future__ import annotations

import csv
import math
import uuid
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from app.demo import ensure_keys
from ioxhub.ingest.run import ingest
from ioxhub.storage import ObjectStore
import hub_tables
from producers import publish_dataset
from producers.mapping import ColumnMapping

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "sdmx"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "case.yaml").is_file())
ORG = "WCO"


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys([ORG], provisioned_settings)
    ingest("datasets", provisioned_settings, idle_ms=1500)          # what earlier tests left on the broker
    return provisioned_settings


def case_mapping(case: dict, args: list[str]) -> ColumnMapping | None:
    """The case's mapping (a dict) with the step's --map/--const flags on top."""
    assert len(args) % 2 == 0 and set(args[::2]) <= {"--map", "--const"}, f"flags in pairs: {args}"
    maps = [v for k, v in zip(args[::2], args[1::2]) if k == "--map"]
    consts = [v for k, v in zip(args[::2], args[1::2]) if k == "--const"]
    base = ColumnMapping.from_dict(case["mapping"], origin="case.yaml mapping") if case.get("mapping") else None
    flags = ColumnMapping.from_flags(maps, consts) if maps or consts else None
    if base and flags:
        return base.merged(flags)
    return base or flags


def harmonized(store: ObjectStore, dataset_id: str, refused: dict[str, int]) -> pa.Table:
    table = hub_tables.current_rows(ORG, dataset_id, settings=store.settings)
    assert table is not None, f"nothing harmonized for {ORG}/{dataset_id}; refused: {refused}"
    return table


def cell(value) -> str:
    """A harmonized cell as expected.csv writes it: empty for null, ISO dates, K=V|K=V for a map."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, dict)):
        items = value.items() if isinstance(value, dict) else value
        return "|".join(f"{k}={v}" for k, v in sorted(items))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def same(expected: str, got: str, column: str) -> bool:
    if column == "value" and expected and got:
        return math.isclose(float(expected), float(got), rel_tol=1e-12)
    return expected == got


@pytest.mark.parametrize("name", CASES)
def test_sdmx_case_round_trips_to_its_expected_rows(hub, name, tmp_path):
    folder = CORPUS / name
    case = yaml.safe_load((folder / "case.yaml").read_text())
    dataset_id = f"SDMX-{name.upper().replace('_', '-')}-{uuid.uuid4().hex[:8].upper()}"
    refused: dict[str, int] = {}        # why rows went missing, for the failure messages
    for step in case["steps"]:
        summary = publish_dataset(ORG, dataset_id, [folder / f for f in step["files"]], case_mapping(case, step.get("args", [])),
                                  fmt=case.get("format"), settings=hub, progress=False, rejects_path=tmp_path / "rejects.csv",
                                  structure=folder / case["structure"] if case.get("structure") else None)
        for reason, count in summary.rejected_by_reason.items():
            refused[f"publish: {reason}"] = refused.get(f"publish: {reason}", 0) + count
        assert summary.sent, f"{name}: {step['files']} not sent: {summary.notes} {refused}"
        run = ingest("datasets", hub, idle_ms=1500)
        for reason, count in run.get("observations_refused_by_reason", {}).items():
            refused[f"ingest: {reason}"] = refused.get(f"ingest: {reason}", 0) + count

    with open(folder / "expected.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        columns, expected = reader.fieldnames, list(reader)
    table = harmonized(ObjectStore(hub), dataset_id, refused)
    missing = [c for c in columns if c not in table.column_names]
    assert not missing, f"{name}: harmonized/ has no column(s) {missing} (it has {table.column_names}); refused: {refused}"
    got = [{c: cell(row[c]) for c in columns} for row in table.select(columns).to_pylist()]
    unmatched = list(got)
    not_found = []
    for row in expected:
        hit = next((g for g in unmatched if all(same(row[c], g[c], c) for c in columns)), None)
        if hit is None:
            not_found.append(row)
        else:
            unmatched.remove(hit)
    assert not not_found and not unmatched, (f"{name}: expected rows not harmonized: {not_found}; "
                                             f"harmonized rows not expected: {unmatched}; refused: {refused}")
