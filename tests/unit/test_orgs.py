"""The provisioning file: the committed file loads, and each kind of mistake names file, line, entry, field."""
from __future__ import annotations

import base64
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ioxhub import names
from ioxhub.orgs import OrgsFileError, UnknownOrgError, load_orgs, parse_orgs
from ioxhub.settings import PROJECT_ROOT

COMMITTED = PROJECT_ROOT / "infra" / "orgs.yaml"
KEY = base64.b64encode(bytes(range(32))).decode()


def _doc(orgs: str = "", *, storage: str | None = None, extra: str = "") -> str:
    """A small valid file; `orgs` replaces the org list (YAML, indented by 2)."""
    orgs = orgs or """\
  - id: WCO
    name: World Customs Organization
  - id: WHO
    name: World Health Organization
"""
    storage = storage or """\
storage:
  zones: [raw, harmonized, curated, quarantine, staging, catalog]
  roles:
    hub: {read: "*", write: "*"}
    analyst: {read: [curated, catalog], write: []}
"""
    return f"""\
version: 1
topic_defaults:
  datasets: {{partitions: 6, retention_ms: 1000}}
  policies: {{partitions: 1, retention_ms: 2000}}
dead_letter: {{partitions: 3, retention_ms: 3000}}
{storage}{extra}orgs:
{orgs}"""


def _error(text: str, tmp_path: Path) -> str:
    path = tmp_path / "orgs.yaml"
    path.write_text(text)
    with pytest.raises(OrgsFileError) as info:
        load_orgs(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    return message


def test_committed_file_declares_the_seven_orgs_with_both_topics():
    spec = load_orgs(COMMITTED)
    assert [o.id for o in spec.orgs] == ["WCO", "WHO", "ICAO", "WTO", "IMO", "UPU", "ICC"]
    for org in spec.orgs:
        assert org.datasets.name == names.datasets_topic(org.id)
        assert org.policies.name == names.policies_topic(org.id)
        assert org.datasets.partitions >= 1 and org.policies.partitions >= 1
    assert spec.dead_letter.name == names.DEAD_LETTER_TOPIC
    assert set(spec.storage.zones) == {"raw", "harmonized", "curated", "quarantine", "staging", "catalog"}
    assert spec.storage.roles["hub"].reads_everything and spec.storage.roles["hub"].writes_everything
    assert spec.storage.roles["analyst"].read == ("curated", "catalog")
    assert spec.storage.roles["analyst"].write == ()
    assert len(spec.topics) == 2 * len(spec.orgs) + 1


def test_defaults_and_per_org_overrides(tmp_path):
    spec = parse_orgs(_doc("""\
  - id: WCO
    name: World Customs Organization
    datasets: {partitions: 12}
  - id: WHO
    name: World Health Organization
    policies: {retention_ms: -1}
"""))
    assert spec.org("WCO").datasets.partitions == 12
    assert spec.org("WCO").datasets.retention_ms == 1000  # default kept
    assert spec.org("WHO").datasets.partitions == 6
    assert spec.org("WHO").policies.retention_ms == -1
    assert spec.dead_letter.partitions == 3 and spec.dead_letter.retention_ms == 3000


def test_signing_keys_are_decoded(tmp_path):
    spec = parse_orgs(_doc(f"""\
  - id: WHO
    name: World Health Organization
    signing_keys:
      - key_id: who-2026a
        public_key: {KEY}
        valid_from: 2026-01-01T00:00:00Z
        valid_until: 2026-07-01T00:00:00+02:00
      - key_id: who-2026b
        public_key: {KEY}
        valid_from: 2026-06-01
"""))
    a, b = spec.org("WHO").signing_keys
    assert a.public_key == bytes(range(32))
    assert a.valid_from == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert a.is_valid_at(datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert not a.is_valid_at(datetime(2026, 7, 1, tzinfo=timezone.utc))
    assert b.valid_from == datetime(2026, 6, 1, tzinfo=timezone.utc) and b.valid_until is None


def test_unknown_org_lookup_names_the_known_ones():
    spec = parse_orgs(_doc())
    with pytest.raises(UnknownOrgError, match=r"'XYZ'.*WCO, WHO"):
        spec.org("XYZ")


# ---------------------------------------------------------------------------------------- mistakes
def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    text = _doc().replace("dead_letter: {partitions: 3, retention_ms: 3000}", "dead_letter: {partitions: 3, retention_ms: 3000")
    message = _error(text, tmp_path)
    assert re.search(r"orgs\.yaml:\d+:\d+: not valid YAML", message), message


def test_wrong_type_names_entry_field_and_line(tmp_path):
    text = _doc("""\
  - id: WCO
    name: World Customs Organization
  - id: WHO
    name: World Health Organization
  - id: ICAO
    name: International Civil Aviation Organization
  - id: IMO
    name: International Maritime Organization
    datasets:
      partitions: six
""")
    message = _error(text, tmp_path)
    line = text.splitlines().index("      partitions: six") + 1
    assert f"orgs.yaml:{line}: orgs[3] (IMO): datasets.partitions: expected a whole number" in message
    assert "'six'" in message


def test_unknown_field_is_named_with_a_suggestion(tmp_path):
    message = _error(_doc("""\
  - id: WCO
    name: World Customs Organization
    datasets: {partitons: 4}
"""), tmp_path)
    assert "orgs[0] (WCO): datasets.partitons: unknown field (did you mean 'partitions'?)" in message


def test_unknown_top_level_field(tmp_path):
    message = _error(_doc(extra="topics: []\n"), tmp_path)
    assert ": file: topics: unknown field" in message


def test_duplicate_org_ids(tmp_path):
    message = _error(_doc("""\
  - id: WCO
    name: World Customs Organization
  - id: WCO
    name: Again
"""), tmp_path)
    assert "orgs[1] (WCO): id: duplicate org id 'WCO' (first declared as orgs[0])" in message


def test_duplicate_yaml_keys_are_refused(tmp_path):
    message = _error(_doc("""\
  - id: WCO
    name: World Customs Organization
    name: Other
"""), tmp_path)
    assert "duplicate key 'name'" in message


def test_invalid_org_id_uses_the_names_rule(tmp_path):
    message = _error(_doc("""\
  - id: who/../x
    name: Bad
"""), tmp_path)
    assert "orgs[0] (who/../x): id: org id 'who/../x' is not valid" in message


def test_missing_required_field(tmp_path):
    message = _error(_doc("""\
  - id: WCO
"""), tmp_path)
    assert "orgs[0] (WCO): name: missing (required)" in message


def test_bad_public_key_length(tmp_path):
    short = base64.b64encode(b"x" * 31).decode()
    message = _error(_doc(f"""\
  - id: WHO
    name: World Health Organization
    signing_keys:
      - {{key_id: k1, public_key: {short}, valid_from: 2026-01-01T00:00:00Z}}
"""), tmp_path)
    assert "orgs[0] (WHO): signing_keys[0].public_key: expected the base64 of a raw 32-byte Ed25519 public key" in message
    assert "decodes to 31 bytes" in message


def test_naive_timestamp_and_reversed_window(tmp_path):
    naive = _error(_doc(f"""\
  - id: WHO
    name: World Health Organization
    signing_keys:
      - {{key_id: k1, public_key: {KEY}, valid_from: "2026-01-01T00:00:00"}}
"""), tmp_path)
    assert "signing_keys[0].valid_from" in naive and "has no timezone" in naive
    reversed_ = _error(_doc(f"""\
  - id: WHO
    name: World Health Organization
    signing_keys:
      - {{key_id: k1, public_key: {KEY}, valid_from: 2026-02-01T00:00:00Z, valid_until: 2026-01-01T00:00:00Z}}
"""), tmp_path)
    assert "signing_keys[0].valid_until: must be after valid_from" in reversed_


def test_an_impossible_date_names_the_field_and_line(tmp_path):
    message = _error(_doc(f"""\
  - id: WHO
    name: World Health Organization
    signing_keys:
      - {{key_id: k1, public_key: {KEY}, valid_from: 2026-13-01}}
"""), tmp_path)
    assert re.search(r"orgs\.yaml:\d+: orgs\[0\] \(WHO\): signing_keys\[0\]\.valid_from: expected an ISO 8601 time.*"
                     r"got '2026-13-01'", message), message

def test_key_ids_are_unique_across_orgs(tmp_path):
    message = _error(_doc(f"""\
  - id: WCO
    name: World Customs Organization
    signing_keys: [{{key_id: k1, public_key: {KEY}, valid_from: 2026-01-01}}]
  - id: WHO
    name: World Health Organization
    signing_keys: [{{key_id: k1, public_key: {KEY}, valid_from: 2026-01-01}}]
"""), tmp_path)
    assert "orgs[1] (WHO): signing_keys[0].key_id: key_id 'k1' is already used by orgs[0] (WCO)" in message


def test_role_referencing_an_unknown_zone(tmp_path):
    message = _error(_doc(storage="""\
storage:
  zones: [raw, curated]
  roles:
    hub: {read: "*", write: "*"}
    analyst: {read: [curated, catalog], write: []}
"""), tmp_path)
    assert "storage.roles.analyst: read[1]: 'catalog' is not a zone of storage.zones (raw, curated)" in message


def test_hub_role_is_required(tmp_path):
    message = _error(_doc(storage="""\
storage:
  zones: [raw, curated]
  roles:
    analyst: {read: [curated], write: []}
"""), tmp_path)
    assert "storage: roles.hub: missing" in message


def test_retention_must_be_positive_or_forever(tmp_path):
    message = _error(_doc().replace("retention_ms: 3000", "retention_ms: 0"), tmp_path)
    assert "dead_letter: retention_ms: expected milliseconds" in message


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(OrgsFileError, match="not found"):
        load_orgs(tmp_path / "nope.yaml")
    assert "is empty" in _error("", tmp_path)


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "provisioning file (IOXHUB_ORGS_FILE) not found"),
    (lambda p: p.mkdir(), "is a directory, not a provisioning file"),
    (lambda p: p.write_bytes(b"orgs:\n  - id: W\xf4\n"), "cannot read the provisioning file (IOXHUB_ORGS_FILE) as UTF-8"),
])
def test_an_unreadable_provisioning_file_is_one_line_naming_it(tmp_path, make, says):
    path = tmp_path / "orgs.yaml"
    make(path)
    with pytest.raises(OrgsFileError, match=re.escape(f"{path}: {says}")):
        load_orgs(path)
