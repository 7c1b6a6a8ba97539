"""Policy files: each entry checked into a record or its problems, each problem at its own line."""
from __future__ import annotations

import json

import pytest

from ioxhub.contracts.registry import get_registry
from producers.policy_file import check_policy_file, policy_event_id
from producers.summary import PublishError

GOOD = """\
- title: Framework Convention on Tobacco Control
  instrument_id: WHO-FCTC
  issuing_org: WHO
  instrument_type: convention
  binding: yes
  action: entered into force
  version: '2003'
  effective_date: 2005-02-27
  member_countries: [Norway, IN]
"""
BAD = """\
- title: International Health Regulations
  instrument_id: WHO-IHR
  issuing_org: WHO
  instrument_type: REGULATION
  binding: maybe
  action: REVISED
  version: '2005'
  effective_date: 2007-02-30
  member_countries:
    - CH
    - Atlantis
  colour: blue
"""


@pytest.fixture(scope="module")
def enums() -> dict[str, list[str]]:
    schema = get_registry().latest("policy_update").schema
    return {f["name"]: f["type"]["symbols"] for f in schema["fields"]
            if isinstance(f["type"], dict) and f["type"].get("type") == "enum"}


def test_a_good_entry_becomes_a_record(tmp_path, enums):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD)
    checked = check_policy_file("WHO", path, enums, produced_at=7)
    assert (checked.entries, checked.bad_entries, checked.problems) == (1, 0, [])
    record = checked.records[0]
    assert record["member_countries"] == ["IND", "NOR"] and record["instrument_type"] == "CONVENTION"
    assert record["action"] == "ENTERED_INTO_FORCE" and record["binding"] is True
    assert str(record["effective_date"]) == "2005-02-27" and record["produced_at"] == 7
    assert record["event_id"] == policy_event_id("WHO", "WHO-FCTC", "ENTERED_INTO_FORCE", "2003",
                                                 record["effective_date"], ["NOR", "IND"])


def test_each_problem_names_its_own_line(tmp_path, enums):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD + BAD)
    checked = check_policy_file("WHO", path, enums, produced_at=0)
    assert (checked.entries, len(checked.records), checked.bad_entries) == (2, 1, 1)
    assert sorted(checked.problems) == [
        (13, "instrument_type", "REGULATION", "not one of " + ", ".join(enums["instrument_type"])),
        (14, "binding", "maybe", "expected true (binding) or false (soft law)"),
        (17, "effective_date", "2007-02-30", "not a date (YYYY-MM-DD)"),
        (20, "member_countries", "Atlantis", "unknown-country"),
        (21, "colour", "blue", "unknown field")]


def test_json_with_tabs_is_read_as_json(tmp_path, enums):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"updates": [{"instrument_id": "X"}]}, indent="\t"))
    checked = check_policy_file("WCO", path, enums, produced_at=0)
    assert checked.entries == 1 and checked.bad_entries == 1
    assert {p[1] for p in checked.problems} >= {"title", "version"} and {p[0] for p in checked.problems} == {1}


@pytest.mark.parametrize("text, message", [
    ("- instrument_id: A\n  title: x\n  title: y\n", r"p\.yaml:3: duplicate key 'title' \(also on line 2\)$"),
    ("- {instrument_id: A\n", r"p\.yaml:2:1: not valid YAML: "),
    ("[]\n", r"p\.yaml: expected one policy update \(a mapping\) or a list of them, found an empty list$"),
])
def test_a_file_that_cannot_be_read_is_one_error(tmp_path, enums, text, message):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PublishError, match=message):
        check_policy_file("WCO", path, enums, produced_at=0)
