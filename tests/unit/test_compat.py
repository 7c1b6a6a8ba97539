"""Schema evolution: `ioxhub schemas check` and the rules behind it (temporary schema dirs, never a fake v2)."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ioxhub.contracts import codec
from ioxhub.contracts.compat import check_registry
from ioxhub.contracts.registry import Registry
from ioxhub.settings import PROJECT_ROOT

SCHEMAS = PROJECT_ROOT / "schemas"
V1 = json.loads((SCHEMAS / "dataset_chunk" / "v1.avsc").read_text())


def field(schema: dict, name: str) -> dict:
    return next(f for f in schema["fields"] if f["name"] == name)


def registry_with(tmp_path: Path, *later: dict, name: str = "dataset_chunk", base: dict = V1) -> Path:
    d = tmp_path / "schemas"
    (d / name).mkdir(parents=True)
    for i, schema in enumerate((base, *later), start=1):
        (d / name / f"v{i}.avsc").write_text(json.dumps(schema, indent=2))
    return d


def problems_of(tmp_path: Path, *later: dict, **kw) -> list[str]:
    return [str(p) for p in check_registry(Registry.load(registry_with(tmp_path, *later, **kw)))[1]]


def evolve(mutate) -> dict:
    v = copy.deepcopy(V1)
    mutate(v)
    return v


def ioxhub(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}, timeout=60)


def test_committed_schemas_pass_the_check():
    result = ioxhub("schemas", "check", "--dir", str(SCHEMAS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_adding_an_optional_field_passes_and_v1_events_decode_under_v2(tmp_path):
    v2 = evolve(lambda v: v["fields"].append({"name": "embargo_until", "type": ["null", "string"], "default": None}))
    d = registry_with(tmp_path, v2)
    result = ioxhub("schemas", "check", "--dir", str(d))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 version pairs checked" in result.stdout

    reg = Registry.load(d)
    record = dict(event_id="e", org="WCO", dataset_id="d", release_id="r", chunk_seq=0, chunk_count=None,
                  produced_at=0, licence=None, source_url=None, strings=["A"], indicator=[0], ref_area=[0],
                  counterpart_area=[-1], commodity=[-1], period=[0], value=[1.0], missing_values=[], unit=[0],
                  unit_mult=[0], obs_status=[-1], attributes=[], source_file=[0], source_line=[1])
    old = codec.encode("dataset_chunk", record, version=1, registry=reg)
    decoded = codec.decode(old, registry=reg)
    assert (decoded.version, decoded.record["embargo_until"]) == (1, None)
    assert decoded.record["value"] == [1.0] and set(decoded.record) == {f["name"] for f in v2["fields"]}


def test_removing_a_field_without_default_is_refused_with_an_explanation(tmp_path):
    v2 = evolve(lambda v: v["fields"].remove(field(v, "dataset_id")))
    d = registry_with(tmp_path, v2)
    result = ioxhub("schemas", "check", "--dir", str(d))
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert "dataset_chunk v1 -> v2: field dataset_id: removed in v2 although it has no default in v1" in out


def test_removing_a_field_with_default_passes(tmp_path):
    assert problems_of(tmp_path, evolve(lambda v: v["fields"].remove(field(v, "licence")))) == []


def test_adding_a_required_field_is_refused(tmp_path):
    v2 = evolve(lambda v: v["fields"].append({"name": "embargo", "type": "string"}))
    assert problems_of(tmp_path, v2) == [
        'dataset_chunk v1 -> v2: field embargo: added without a default: data written by v1 has no value for '
        'it (give it a default, e.g. type ["null", ...] with "default": null)']


@pytest.mark.parametrize("writer, reader, ok", [
    ("int", "long", True), ("int", "double", True), ("long", "float", True), ("string", "bytes", True),
    ("bytes", "string", True), ("int", ["null", "int"], True), ("long", "int", False), ("double", "float", False),
    ("int", "string", False), (["null", "string"], "string", False),
])
def test_type_promotions(tmp_path, writer, reader, ok):
    base = {"type": "record", "name": "T", "namespace": "t", "fields": [{"name": "x", "type": writer}]}
    new = {"type": "record", "name": "T", "namespace": "t", "fields": [{"name": "x", "type": reader}]}
    problems = problems_of(tmp_path, new, name="t", base=base)
    assert (problems == []) is ok, problems
    if not ok:
        assert problems[0].startswith("t v1 -> v2: field x: ")


def test_nested_field_is_named_by_its_path(tmp_path):
    v2 = evolve(lambda v: field(v, "attributes")["type"]["items"]["fields"][1].update(
        type={"type": "array", "items": "string"}))
    (problem,) = problems_of(tmp_path, v2)
    assert "field attributes.values: type changed" in problem and "writer type: int" in problem


def test_enums_need_a_default_symbol_to_drop_symbols(tmp_path):
    base = json.loads((SCHEMAS / "policy_update" / "v1.avsc").read_text())

    def drop_symbol(default: bool) -> dict:
        v = copy.deepcopy(base)
        enum = field(v, "action")["type"]
        enum["symbols"].remove("WITHDRAWN")
        if not default:
            enum.pop("default")
        return v
    assert problems_of(tmp_path / "a", drop_symbol(True), name="policy_update", base=base) == []
    (problem,) = problems_of(tmp_path / "b", drop_symbol(False), name="policy_update", base=base)
    assert "field action: enum symbols {'WITHDRAWN'}" in problem
    more = copy.deepcopy(base)
    field(more, "action")["type"]["symbols"].append("SUSPENDED")
    assert problems_of(tmp_path / "c", more, name="policy_update", base=base) == []


def test_the_check_is_transitive(tmp_path):
    # v2 gives dataset_id a default, v3 removes it. v3 reads v1 and v2 data,
    # but readers on v1 (no default) cannot read v3 data: the v1 -> v3 pair is refused.
    v2 = evolve(lambda v: field(v, "dataset_id").update(default=""))
    v3 = evolve(lambda v: v["fields"].remove(field(v, "dataset_id")))
    problems = problems_of(tmp_path, v2, v3)
    assert [p.split(":")[0] for p in problems] == ["dataset_chunk v1 -> v3"]
    # and a later version may not undo an earlier compatible change that older data depends on
    v2b = evolve(lambda v: field(v, "chunk_seq").update(type="long"))
    v3b = evolve(lambda v: field(v, "chunk_seq").update(type="double"))
    assert problems_of(tmp_path / "b", v2b, v3b) == []
    v3c = evolve(lambda v: field(v, "chunk_seq").update(type="int"))
    assert [p.split(":")[0] for p in problems_of(tmp_path / "c", v2b, v3c)] == ["dataset_chunk v2 -> v3"]


def test_renamed_record_is_refused(tmp_path):
    (problem,) = problems_of(tmp_path, evolve(lambda v: v.update(name="Chunk")))
    assert "field (schema): named type renamed" in problem


def test_malformed_schema_gives_a_clear_error_not_a_traceback(tmp_path):
    d = registry_with(tmp_path)
    (d / "dataset_chunk" / "v2.avsc").write_text("{not json")
    result = ioxhub("schemas", "check", "--dir", str(d))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "v2.avsc" in result.stderr and "Traceback" not in result.stderr
