"""Publishing to the real (tansu) broker: counts, keys, headers, manifest, idempotence, strict, policies."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from kafka import KafkaConsumer, TopicPartition

from ioxhub import keys, names, signing
from ioxhub.contracts import codec
from producers import publish_dataset, publish_policy
from producers.publish import PublishProgress

pytestmark = pytest.mark.integration

ROWS = ["SEIZ,FRA,DEU,3825,2024,1.5,KG",
        "SEIZ,Italy,,3825,2024-Q1,,KG",
        "SEIZ,Atlantis,,3825,2024,2,KG",        # line 4: unknown-country
        "SEIZ,ESP,,3825,2024-M13,2,KG",         # line 5: bad-period
        "SEIZ,PRT,,3825,2024,3,KG"]
MAPPING = {"indicator": "IND", "ref_area": "AREA", "counterpart_area": "PARTNER", "commodity": "HS",
           "period": "PERIOD", "value": "VALUE", "unit": "UNIT", "title": "Seizures"}


def write_csv(path, rows):
    path.write_text("IND,AREA,PARTNER,HS,PERIOD,VALUE,UNIT\n" + "\n".join(rows) + "\n")
    return path


def consume(settings, topic: str, idle_s: float = 3.0) -> list:
    """Every record of the topic from the beginning (polls until idle: tansu under-reports end offsets)."""
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap.split(","), group_id=None,
                             enable_auto_commit=False, consumer_timeout_ms=int(idle_s * 1000))
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in parts])
        consumer.seek_to_beginning()
        return list(consumer)
    finally:
        consumer.close()


def dataset_records(settings, org, dataset_id):
    key = f"{org}/{dataset_id}".encode()
    return [r for r in consume(settings, names.datasets_topic(org)) if r.key == key]


def test_publish_dataset_end_to_end(provisioned_settings, tmp_path):
    path = write_csv(tmp_path / "seizures.csv", ROWS)
    summary = publish_dataset("WCO", "IT-SEIZ", [path], MAPPING, settings=provisioned_settings,
                              max_chunk_observations=2)
    assert (summary.rows_read, summary.rows_sent, summary.rows_rejected, summary.chunks) == (5, 3, 2, 2)
    assert summary.exit_code == 1 and summary.sent
    assert summary.rejects_path == tmp_path / "seizures.csv.rejects.csv"
    assert summary.rejects_path.read_text().splitlines() == [
        '"file","line","field","value","reason"',
        '"seizures.csv",4,"ref_area","Atlantis","unknown-country"',
        '"seizures.csv",5,"period","2024-M13","bad-period"']

    records = dataset_records(provisioned_settings, "WCO", "IT-SEIZ")
    assert len(records) == 3 and len({r.partition for r in records}) == 1      # one partition per dataset
    decoded = [codec.decode(r.value) for r in records]
    assert [d.name for d in decoded] == ["dataset_chunk", "dataset_chunk", "release_manifest"]
    for r, d in zip(records, decoded):
        h = codec.header_map(r.headers)
        assert h[codec.HEADER_CE_SOURCE] == b"urn:ioxhub:org:WCO" and h[codec.HEADER_CE_SPECVERSION] == b"1.0"
        assert h[codec.HEADER_CE_ID].decode() == d.record["event_id"]
        assert h[codec.HEADER_CE_TYPE] == f"org.ioxhub.{d.name}".encode()
        assert h[codec.HEADER_CE_TIME] == codec.ce_time(int(d.record["produced_at"].timestamp() * 1000)).encode()
        assert h[codec.HEADER_SCHEMA] == d.fingerprint.hex().encode()
        assert h[codec.HEADER_CONTENT_TYPE] == codec.CONTENT_TYPE.encode()
    manifest = decoded[-1].record
    assert (manifest["chunk_count"], manifest["observation_count"], manifest["rejected_at_source"]) == (2, 3, 2)
    digest = hashlib.sha256(b"".join(bytes(codec.body(r.value)) for r in records[:2])).hexdigest()
    assert manifest["checksum"] == f"sha256:{digest}" and manifest["release_id"] == summary.release_id
    chunk = decoded[0].record
    strings = chunk["strings"]
    assert [strings[i] for i in chunk["ref_area"]] == ["FRA", "Italy"]         # as published
    assert chunk["missing_values"] == [1] and chunk["source_line"] == [2, 3]
    assert summary.event_ids == [d.record["event_id"] for d in decoded]

    again = publish_dataset("WCO", "IT-SEIZ", [path], MAPPING, settings=provisioned_settings,
                            max_chunk_observations=2)
    assert again.release_id == summary.release_id and again.event_ids == summary.event_ids
    assert any("already published" in n for n in again.notes)
    resent = dataset_records(provisioned_settings, "WCO", "IT-SEIZ")[3:]
    assert [r.value for r in resent] == [r.value for r in records]            # byte-identical retry


def test_strict_sends_nothing(provisioned_settings, tmp_path):
    path = write_csv(tmp_path / "strict.csv", ROWS)
    summary = publish_dataset("WCO", "IT-STRICT", [path], MAPPING, strict=True, settings=provisioned_settings)
    assert not summary.sent and summary.rows_rejected == 2 and summary.exit_code == 1 and summary.event_ids == []
    assert summary.rejects_path.is_file()
    assert dataset_records(provisioned_settings, "WCO", "IT-STRICT") == []
    clean = write_csv(tmp_path / "clean.csv", [ROWS[0], ROWS[1]])
    ok = publish_dataset("WCO", "IT-STRICT", [clean], MAPPING, strict=True, settings=provisioned_settings)
    assert ok.sent and ok.exit_code == 0 and ok.rows_sent == 2 and ok.rejects_path is None
    assert len(dataset_records(provisioned_settings, "WCO", "IT-STRICT")) == 2      # one chunk + manifest


def test_progress_reports_the_bytes_read_over_all_files(provisioned_settings, tmp_path):
    first, second = write_csv(tmp_path / "a.csv", ROWS[:2]), write_csv(tmp_path / "b.csv", ROWS[4:])
    sizes = first.stat().st_size, second.stat().st_size
    reports: list[PublishProgress] = []
    for strict in (False, True):          # strict reads the files twice: validation, then the sending pass
        reports.clear()
        summary = publish_dataset("WCO", "IT-PROGRESS", [first, second], MAPPING, strict=strict,
                                  settings=provisioned_settings, progress=reports.append)
        assert summary.sent and summary.rows_sent == 3
        one_pass = [PublishProgress("a.csv", sizes[0], sum(sizes)), PublishProgress("b.csv", sum(sizes), sum(sizes))]
        assert reports == one_pass * (2 if strict else 1)

def test_signed_when_the_org_has_a_key(provisioned_settings, tmp_path):
    keys.generate_org_key("UPU", "upu-test-key", settings=provisioned_settings)
    path = write_csv(tmp_path / "signed.csv", [ROWS[0]])
    summary = publish_dataset("UPU", "IT-SIGNED", [path], MAPPING, settings=provisioned_settings)
    assert summary.signed_by == "upu-test-key"
    store = keys.load_trust_store(provisioned_settings)
    for r in dataset_records(provisioned_settings, "UPU", "IT-SIGNED"):
        key = signing.verify(r.value, r.headers, r.topic, store, at=datetime.now(timezone.utc))  # raises if invalid
        assert key.key.key_id == "upu-test-key"


POLICIES = """
- instrument_id: WCO-FOS-ECOM
  issuing_org: WCO
  title: Framework of Standards on Cross-Border E-Commerce
  instrument_type: framework
  binding: false
  action: ADOPTED_BY_MEMBER
  version: '1'
  effective_date: 2019-06-01
  member_countries: [France, DE]
  themes: [e-commerce]
- instrument_id: WCO-FOS-ECOM
  issuing_org: WCO
  title: Framework of Standards on Cross-Border E-Commerce
  instrument_type: FRAMEWORK
  binding: false
  action: ADOPTED_BY_MEMBER
  version: '1'
  effective_date: 2019-13-01
  member_countries: [Atlantis]
"""


def test_publish_policy(provisioned_settings, tmp_path):
    path = tmp_path / "wco.policies.yaml"
    path.write_text(POLICIES)
    summary = publish_policy("WCO", path, settings=provisioned_settings)
    assert (summary.rows_read, summary.rows_sent, summary.rows_rejected, summary.exit_code) == (2, 1, 1, 1)
    assert summary.rejects_path.read_text().splitlines()[1:] == [
        '"wco.policies.yaml",19,"effective_date","2019-13-01","not a date (YYYY-MM-DD)"',
        '"wco.policies.yaml",20,"member_countries","Atlantis","unknown-country"']
    # The topic is shared with other tests of the session: keep the records of this publish (its event id).
    ours = set(summary.event_ids)
    records = [r for r in consume(provisioned_settings, names.policies_topic("WCO"))
               if (codec.header_event_id(codec.header_map(r.headers)) or "") in ours]
    assert len(records) == 1 and records[0].key == b"WCO-FOS-ECOM"
    rec = codec.decode(records[0].value).record
    assert rec["member_countries"] == ["DEU", "FRA"] and rec["instrument_type"] == "FRAMEWORK"
    assert rec["event_id"] == summary.event_ids[0] == codec.header_event_id(codec.header_map(records[0].headers))
    again = publish_policy("WCO", path, settings=provisioned_settings)
    assert again.event_ids == summary.event_ids                                # same update, same id
    strict = publish_policy("WCO", path, strict=True, settings=provisioned_settings)
    assert not strict.sent and strict.exit_code == 1
