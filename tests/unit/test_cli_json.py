"""`--json` of the listing commands that need no server: the shape (stable keys), the values, no secrets."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app import console
from app.cli import app
from ioxhub.contracts.compat import check_registry
from ioxhub.contracts.registry import Registry
from ioxhub.keys import generate_org_key, load_trust_store
from ioxhub.provision.plan import Change, ProvisionReport
from ioxhub.settings import PROJECT_ROOT, get_settings, reset_settings_cache

SCHEMAS = PROJECT_ROOT / "schemas"


def run_json(*args: str, code: int = 0):
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == code, (result.output, result.exception)
    return json.loads(result.stdout)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IOXHUB_DATA_DIR", str(tmp_path / "data"))
    reset_settings_cache()
    yield tmp_path / "data"
    monkeypatch.undo()
    reset_settings_cache()


def test_schemas_list_json_has_every_version_with_its_fingerprint_and_id():
    registry = Registry.load(SCHEMAS)
    rows = run_json("schemas", "list", "--dir", str(SCHEMAS))
    assert len(rows) == len(list(registry)) > 0
    for row in rows:
        assert set(row) == {"schema", "version", "latest", "fingerprint", "confluent_id", "record", "path"}
        sv = registry.get(row["schema"], row["version"])
        assert (row["fingerprint"], row["confluent_id"], row["path"]) == (sv.fingerprint_hex, sv.confluent_id, str(sv.path))
        assert row["latest"] == (row["version"] == len(registry.versions(row["schema"])))
    assert sorted(r["schema"] for r in rows if r["latest"]) == registry.names()


def test_schemas_check_json_all_clear_and_a_refused_removal(tmp_path):
    pairs, _ = check_registry(Registry.load(SCHEMAS))
    ok = run_json("schemas", "check", "--dir", str(SCHEMAS))
    assert ok == {"compatible": True, "schemas": len(Registry.load(SCHEMAS).names()),
                  "versions": len(list(Registry.load(SCHEMAS))), "pairs_checked": pairs, "incompatibilities": []}

    v1 = json.loads((SCHEMAS / "dataset_chunk" / "v1.avsc").read_text())
    v2 = {**v1, "fields": [f for f in v1["fields"] if f["name"] != "dataset_id"]}
    (tmp_path / "dataset_chunk").mkdir()
    (tmp_path / "dataset_chunk" / "v1.avsc").write_text(json.dumps(v1))
    (tmp_path / "dataset_chunk" / "v2.avsc").write_text(json.dumps(v2))
    bad = run_json("schemas", "check", "--dir", str(tmp_path), code=1)
    assert (bad["compatible"], bad["pairs_checked"]) == (False, 1)
    (problem,) = bad["incompatibilities"]
    assert set(problem) == {"schema", "writer_version", "reader_version", "field", "kind", "why"}
    assert (problem["schema"], problem["writer_version"], problem["reader_version"], problem["field"],
            problem["kind"]) == ("dataset_chunk", 1, 2, "dataset_id", "removed_without_default")


def test_keys_list_json_lists_the_trust_store_without_private_keys(data_dir):
    generated = generate_org_key("IMO", "imo-json-1", valid_from=datetime(2026, 1, 1, tzinfo=timezone.utc))
    rows = run_json("keys", "list")
    assert len(rows) == len(load_trust_store(get_settings())) >= 1
    assert all(set(r) == {"org", "key_id", "valid_from", "valid_until", "declared_in"} for r in rows)
    mine = next(r for r in rows if r["key_id"] == "imo-json-1")
    assert mine == {"org": "IMO", "key_id": "imo-json-1", "valid_from": "2026-01-01T00:00:00Z", "valid_until": None,
                    "declared_in": str(data_dir / "keys" / "public-keys.yaml")}
    pem = generated.path.read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert body and body not in json.dumps(rows)


def test_stack_status_json_of_a_stack_that_never_started(data_dir):
    rows = run_json("stack", "status")
    assert [r["service"] for r in rows] == ["seaweedfs", "tansu", "airflow", "web"]
    for r in rows:
        assert r == {"service": r["service"], "state": "stopped", "pid": None, "leftover_pids": [],
                     "endpoint": r["endpoint"], "health": "-"}
    assert rows[1]["endpoint"] == get_settings().kafka_bootstrap


def test_provision_json_never_shows_a_payload():
    planted = "PLANTED-KEY-never-printed"
    report = ProvisionReport("tansu (local, x)", "SeaweedFS (local, y)", [
        Change("storage identity", "analyst", "create", "role analyst: Read on hub/curated/*",
               (f"s3.configure -user=analyst -access_key=A -secret_key={planted} -apply",)),
        Change("bucket", "ioxhub", "create", "zones are key prefixes (no marker objects)")], ["a note"], applied=False)
    shape = console.provision_json(report)
    assert shape == {"kafka_backend": "tansu (local, x)", "storage_backend": "SeaweedFS (local, y)", "applied": False,
                     "summary": "2 changes would be applied (dry run, nothing changed)",
                     "changes": [{"area": "storage identity", "target": "analyst", "action": "create",
                                  "detail": "role analyst: Read on hub/curated/*"},
                                 {"area": "bucket", "target": "ioxhub", "action": "create",
                                  "detail": "zones are key prefixes (no marker objects)"}],
                     "notes": ["a note"]}
    assert planted not in json.dumps(shape)


def test_print_json_writes_times_paths_and_sets_as_plain_json(capsys):
    console.print_json({"at": datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc), "path": Path("/x/y"), "set": {"b", "a"}})
    assert json.loads(capsys.readouterr().out) == {"at": "2026-03-01T12:00:00+00:00", "path": "/x/y", "set": ["a", "b"]}
    with pytest.raises(TypeError, match="object is not JSON serializable"):
        console.print_json({"x": object()})


@pytest.mark.integration
def test_datasets_json_shows_snapshots_number_id_time_operation_release(stack_settings):
    import uuid

    import pyarrow as pa

    from ioxhub.storage import ObjectStore
    from table_writes import commit_snapshot

    store, name = ObjectStore(stack_settings), f"cli_json_{uuid.uuid4().hex[:8]}"
    for value in (1.0, 2.0):
        commit_snapshot(store, name, pa.table({"ref_area": ["FRA"], "value": [value]}), {"kind": "curated"},
                        release_id=f"r{value:.0f}")
    entry = run_json("datasets", name)
    assert entry["name"] == name and entry["table"] == f"curated.{name}" and entry["snapshot"] == 2
    assert [(s["snapshot"], s["release_id"]) for s in entry["snapshots"]] == [(1, "r1"), (2, "r2")]
    assert entry["snapshots"][-1]["snapshot_id"] == entry["snapshot_id"] and entry["snapshots"][0]["operation"]
    assert "location" not in entry and datetime.fromisoformat(entry["snapshots"][0]["created_at"]).tzinfo
    listed = {d["name"]: d for d in run_json("datasets")}
    assert listed[name]["snapshot_id"] == entry["snapshot_id"]
    result = CliRunner().invoke(app, ["datasets", f"nope_{name}", "--json"])
    assert result.exit_code != 0 and f"no dataset 'nope_{name}' in the catalog (known: " in str(result.exception)
    text = CliRunner().invoke(app, ["datasets", name]).stdout
    assert str(entry["snapshots"][0]["snapshot_id"]) in text and "r2" in text
