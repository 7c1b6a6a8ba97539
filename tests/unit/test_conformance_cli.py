"""`ioxhub conformance FILE` on the committed vectors, and `ioxhub keys jwks`: exit codes, one line per
failing record, --json, clear errors for a bad records file."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import app
from ioxhub.conformance import RecordFileError, read_records
from ioxhub.settings import PROJECT_ROOT

VECTORS = PROJECT_ROOT / "schemas" / "vectors"
KEYS = ["--keys", str(VECTORS / "test-keys.jwks.json")]


def invoke(*args: str, code: int):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return result.stdout


def test_a_conforming_release_exits_0():
    out = json.loads(invoke("conformance", str(VECTORS / "release.jsonl"), *KEYS, "--json", code=0))
    assert (out["ok"], out["records"], out["conforming"], out["releases_complete"], out["findings"]) == \
           (True, 3, 3, 1, [])


def test_each_invalid_record_is_one_line_with_its_reason():
    lines = [json.loads(l) for l in (VECTORS / "invalid.jsonl").read_text().splitlines()]
    out = invoke("conformance", str(VECTORS / "invalid.jsonl"), *KEYS, code=1).splitlines()
    findings = {line.split(": ", 1)[0]: line.split(": ")[1] for line in out[:-1]}
    for n, line in enumerate(lines, 1):
        if line["scope"] == "record":
            assert findings[f"{VECTORS / 'invalid.jsonl'}:{n}"] == line["expect"], line["case"]
    assert set(findings.values()) == {l["expect"] for l in lines}
    assert out[-1].startswith(f"{len(lines)} record(s)") and "problem(s)" in out[-1]


def test_without_the_test_keys_the_release_is_refused_as_unknown_key(tmp_path, monkeypatch):
    monkeypatch.setenv("IOXHUB_DATA_DIR", str(tmp_path))        # an empty local keyring
    from ioxhub.settings import reset_settings_cache
    reset_settings_cache()
    try:
        out = json.loads(invoke("conformance", str(VECTORS / "release.jsonl"), "--json", code=1))
    finally:
        monkeypatch.undo()
        reset_settings_cache()
    assert {f["reason"] for f in out["findings"]} == {"unknown-key"}


@pytest.mark.parametrize("text, message", [
    ('{"topic": "t", "value_hex": "zz"}', r"bad.jsonl:1: field value_hex is not valid hex"),
    ('\n{"topic": 3}', r"bad.jsonl:2: field topic is missing or not a string"),
    ('{"topic": "t"', r"bad.jsonl:1: not valid JSON"),
    ('{"topic": "t", "value_b64": "AA==", "headers": [["ce_id"]]}', r"bad.jsonl:1: field headers\[0\] is not a"),
    ('{"topic": "t", "headers": []}', r"bad.jsonl:1: field value_hex or value_b64 is missing"),
])
def test_a_bad_records_file_is_one_clear_line(tmp_path, text, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(RecordFileError, match=message):
        read_records(path)


def test_keys_jwks_writes_one_file_per_org(tmp_path):
    out = json.loads(invoke("keys", "jwks", "--out", str(tmp_path), "--org", "WCO", "--json", code=0))
    assert out == [{"org": "WCO", "file": str(tmp_path / "WCO.json"), "keys": 0}]
    assert (tmp_path / "WCO.json").read_text() == (PROJECT_ROOT / "infra" / "jwks" / "WCO.json").read_text()


def test_a_missing_records_file_is_named(tmp_path):
    with pytest.raises(RecordFileError, match=r"nope.jsonl: records file not found"):
        read_records(tmp_path / "nope.jsonl")
