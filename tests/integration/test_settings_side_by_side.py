"""Two Settings in one process on the real broker and S3: one with an orgs file of WCO alone and a schemas
directory holding a policy_update version the repository does not have, one as the session's. Publish,
ingest and the lag each follow their own."""
from __future__ import annotations

import dataclasses
import uuid

import pytest
import yaml

from app.demo import ensure_keys
from ioxhub.ingest.policies import read_instruments
from ioxhub.ingest.run import ingest
from ioxhub.names import policies_topic
from producers import publish_policy
from ioxhub.status import topic_lag

pytestmark = pytest.mark.integration

POLICY = """
- instrument_id: {id}
  issuing_org: {org}
  title: An instrument of this test
  instrument_type: GUIDELINE
  binding: false
  action: ADOPTED
  version: '1'
  effective_date: 2024-01-01
  member_countries: [FRA]
"""


def publish(org: str, settings, tmp_path) -> str:
    instrument = f"{org}-SIDE-{uuid.uuid4().hex[:6]}"
    path = tmp_path / f"{instrument}.yaml"
    path.write_text(POLICY.format(id=instrument, org=org))
    assert publish_policy(org, path, settings=settings).rows_sent == 1
    return instrument


def test_two_settings_side_by_side(provisioned_settings, other_schemas_dir, tmp_path):
    hub = provisioned_settings
    ensure_keys(["WCO", "WHO"], hub)
    doc = yaml.safe_load(hub.orgs_file.read_text())
    doc["orgs"] = [o for o in doc["orgs"] if o["id"] == "WCO"]
    (tmp_path / "orgs.yaml").write_text(yaml.safe_dump(doc))
    wco_only = dataclasses.replace(hub, orgs_file=tmp_path / "orgs.yaml",
                                   schemas_dir=other_schemas_dir)
    ingest("policies", hub, idle_ms=1500)                  # what earlier tests left

    wco = publish("WCO", wco_only, tmp_path)              # written with the new version
    who = publish("WHO", hub, tmp_path)

    assert set(topic_lag(wco_only)["policies"]) == {policies_topic("WCO")}
    assert set(topic_lag(hub)["policies"]) > {policies_topic("WCO"), policies_topic("WHO")}
    first = ingest("policies", wco_only, idle_ms=1500)     # WCO's topic only, decoded with its registry
    assert first["events"] == {"consumed": 1, "applied": 1, "staged": 0, "duplicate": 0, "quarantined": 0}
    second = ingest("policies", hub, idle_ms=1500)         # WHO's update still waited for the session's
    assert second["events"] == {"consumed": 1, "applied": 1, "staged": 0, "duplicate": 0, "quarantined": 0}

    versions = read_instruments(hub, "instrument_versions").to_pylist()
    by_id = {row["instrument_id"]: row["schema_version"] for row in versions}
    new = wco_only.schemas_dir / "policy_update"
    assert by_id[wco] == f"policy_update/v{len(list(new.glob('v*.avsc')))}"
    assert by_id[who] == f"policy_update/v{len(list(new.glob('v*.avsc'))) - 1}"
