"""Contract 1.0 producers keep working: the committed vector release, re-sent with the retired
`ioxhub-org` / `ioxhub-event-id` headers (no CloudEvents headers) and their v2 signature by a key the hub
trusts, is ingested by the real ingest into harmonized/ like a contract-1.1 release."""
from __future__ import annotations

import json

from app.demo import ensure_keys
from ioxhub.contracts import codec
from ioxhub.ingest.run import ingest
from ioxhub.kafka import make_producer
from ioxhub.keys import load_signer
from ioxhub.settings import PROJECT_ROOT
import hub_tables

ORG = "WCO"


def test_a_contract_1_0_release_still_ingests(provisioned_settings):
    ensure_keys([ORG], provisioned_settings)
    signer = load_signer(ORG, settings=provisioned_settings)
    lines = [json.loads(l) for l in (PROJECT_ROOT / "schemas" / "vectors" / "release.jsonl").read_text().splitlines()]
    producer = make_producer(provisioned_settings)
    for line in lines:
        value = bytes.fromhex(line["value_hex"])
        legacy = codec.legacy_record_headers(ORG, codec.writer_of(value)[0].fingerprint, line["event"]["event_id"])
        headers = signer.sign(value, legacy, line["topic"])
        assert not any(name.startswith("ce_") for name, _ in headers)
        producer.send(line["topic"], key=bytes.fromhex(line["key_hex"]), value=value, headers=headers)
    producer.flush()
    producer.close()

    summary = ingest("datasets", provisioned_settings, idle_ms=1500)
    assert summary["events"]["applied"] >= 3
    dataset = lines[0]["event"]["dataset_id"]
    rows = hub_tables.rows_count(ORG, dataset, provisioned_settings)
    assert rows == lines[-1]["event"]["observation_count"] == 6
