"""The schema registry: loading, fingerprints, Confluent ids, lookups, malformed files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

from ioxhub.contracts.registry import (Registry, SchemaFileError, UnknownSchema, confluent_id_of, get_registry,
                                       reset_registry)
from ioxhub.settings import PROJECT_ROOT, reset_settings_cache

SCHEMAS = PROJECT_ROOT / "schemas"
SIMPLE = {"type": "record", "name": "Thing", "namespace": "org.ioxhub.test",
          "fields": [{"name": "id", "type": "string"}]}


def write(dirpath: Path, name: str, version: int, schema) -> Path:
    path = dirpath / name / f"v{version}.avsc"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return path


def test_loads_every_committed_schema_with_its_canonical_fingerprint():
    reg = Registry.load(SCHEMAS)
    files = sorted(SCHEMAS.glob("*/v*.avsc"))
    assert files and len(list(reg)) == len(files)
    for path in files:
        sv = reg.get(path.parent.name, int(path.stem[1:]))
        schema = json.loads(path.read_text())
        assert sv.fingerprint.hex() == fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
        assert reg.by_fingerprint(sv.fingerprint).fingerprint == sv.fingerprint
        assert reg.by_confluent_id(sv.confluent_id).fingerprint == sv.fingerprint
    for name in ("dataset_chunk", "release_manifest", "policy_update", "dead_letter"):
        assert name in reg.names()


def test_fingerprint_matches_the_avro_spec_byte_order():
    # Java's SchemaNormalization.parsingFingerprint64("null") = 0x63dd24e7cc258f8a; on the wire little-endian.
    assert fingerprint('"null"', "CRC-64-AVRO") == "8a8f25cce724dd63"
    assert confluent_id_of(bytes.fromhex("8a8f25cce724dd63")) == 0x63DD24E7CC258F8A % (2**31 - 1) + 1


def test_versions_latest_get_and_lookup_errors(tmp_path):
    write(tmp_path, "thing", 1, SIMPLE)
    v2 = dict(SIMPLE, fields=SIMPLE["fields"] + [{"name": "n", "type": ["null", "int"], "default": None}])
    write(tmp_path, "thing", 2, v2)
    reg = Registry.load(tmp_path)
    assert [v.version for v in reg.versions("thing")] == [1, 2]
    assert reg.latest("thing").version == 2
    assert reg.get("thing", 1).fingerprint != reg.get("thing", 2).fingerprint
    with pytest.raises(UnknownSchema, match="no schema named 'nope'"):
        reg.latest("nope")
    with pytest.raises(UnknownSchema, match="no version 3"):
        reg.get("thing", 3)
    with pytest.raises(UnknownSchema, match="fingerprint 0000000000000000"):
        reg.by_fingerprint(bytes(8))


def test_confluent_ids_are_a_pure_function_of_the_canonical_form(tmp_path):
    write(tmp_path / "a", "thing", 1, SIMPLE)
    documented = dict(SIMPLE, doc="docs do not change the canonical form")
    write(tmp_path / "b", "thing", 1, json.dumps(documented, indent=4))
    a, b = Registry.load(tmp_path / "a"), Registry.load(tmp_path / "b")
    assert a.latest("thing").confluent_id == b.latest("thing").confluent_id
    assert 1 <= a.latest("thing").confluent_id < 2**31


@pytest.mark.parametrize("content, message", [
    ('{"type": "record", "name": "X", "fields": [', "line 1 column"),
    ('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "strng"}]}', "not a valid Avro schema"),
    ('"string"', '"type": "record"'),
])
def test_malformed_schema_file_is_named(tmp_path, content, message):
    path = write(tmp_path, "thing", 1, content)
    with pytest.raises(SchemaFileError, match=message) as err:
        Registry.load(tmp_path)
    assert str(path) in str(err.value)


def test_layout_errors(tmp_path):
    write(tmp_path, "thing", 1, SIMPLE)
    write(tmp_path, "thing", 3, SIMPLE)
    with pytest.raises(SchemaFileError, match="without gaps"):
        Registry.load(tmp_path)
    (tmp_path / "thing" / "v3.avsc").rename(tmp_path / "thing" / "version2.avsc")
    with pytest.raises(SchemaFileError, match="version2.avsc: schema files are named"):
        Registry.load(tmp_path)
    with pytest.raises(SchemaFileError, match="does not exist"):
        Registry.load(tmp_path / "missing")


def test_get_registry_is_cached_and_follows_settings_after_reset(tmp_path, monkeypatch):
    shutil.copytree(SCHEMAS / "release_manifest", tmp_path / "release_manifest")
    monkeypatch.setenv("IOXHUB_SCHEMAS_DIR", str(tmp_path))
    reset_settings_cache()
    reset_registry()
    try:
        reg = get_registry()
        assert reg is get_registry()
        assert reg.names() == ["release_manifest"]
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        reset_registry()
    assert "dataset_chunk" in get_registry().names()
