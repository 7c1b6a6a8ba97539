"""A release whose manifest never arrives: staged, then quarantined as `incomplete-release` once it is
older than IOXHUB_STAGING_MAX_AGE_HOURS, listed by `ioxhub status`; its late manifest is refused, not
staged again (real tansu broker, real SeaweedFS, the real ingest run)."""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid

import fastavro
import pytest
from kafka import KafkaConsumer

from ioxhub.contracts import codec, release_manifest
from app.demo import ensure_keys
from ioxhub.ingest.run import ingest
from ioxhub.kafka import common_config, make_producer
from ioxhub.names import DEAD_LETTER_TOPIC, datasets_topic
from ioxhub.settings import reset_settings_cache
from ioxhub.keys import load_signer
from ioxhub.status import hub_status
from ioxhub.storage import ObjectStore, staging_prefix
import hub_tables

pytestmark = [pytest.mark.integration]
ORG, DATASET = "WHO", "expiry_test"


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys([ORG], provisioned_settings)
    return provisioned_settings


def _events(release: str) -> tuple[list[bytes], bytes]:
    """Two chunks of one observation each and their manifest."""
    produced = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    chunks = [codec.encode("dataset_chunk", {
        "event_id": f"{release}-{seq}", "org": ORG, "dataset_id": DATASET, "release_id": release, "chunk_seq": seq,
        "chunk_count": 2, "produced_at": produced, "licence": None, "source_url": None,
        "strings": [f"{ORG}.EXPIRY_TEST", "FRA", str(2020 + seq), "KG", "e.csv"],
        "indicator": [0], "ref_area": [1], "counterpart_area": [-1], "commodity": [-1], "period": [2],
        "value": [float(seq)], "missing_values": [], "unit": [3], "unit_mult": [0], "obs_status": [-1],
        "attributes": [], "source_file": [4], "source_line": [2 + seq]}) for seq in range(2)]
    digest = hashlib.sha256(b"".join(codec.body(c) for c in chunks)).hexdigest()
    manifest = release_manifest.encode({
        "event_id": f"{release}-m", "org": ORG, "dataset_id": DATASET, "release_id": release, "chunk_count": 2,
        "observation_count": 2, "checksum": f"sha256:{digest}", "produced_at": produced})
    return chunks, manifest


def _send(events: list[tuple[bytes, str]]) -> None:
    producer, signer, topic = make_producer(), load_signer(ORG), datasets_topic(ORG)
    for value, event_id in events:
        headers = signer.sign(value, codec.record_headers(ORG, codec.writer_of(value)[0].fingerprint, event_id), topic)
        producer.send(topic, key=f"{ORG}/{DATASET}".encode(), value=value, headers=headers)
    producer.flush()
    producer.close()


def _ingest_after_max_age(monkeypatch) -> dict:
    """One datasets ingest run as if every staged release were older than the max age."""
    monkeypatch.setenv("IOXHUB_STAGING_MAX_AGE_HOURS", "0")
    reset_settings_cache()
    try:
        return ingest("datasets", idle_ms=1500)
    finally:
        monkeypatch.delenv("IOXHUB_STAGING_MAX_AGE_HOURS")
        reset_settings_cache()


def _reconciles(run: dict) -> bool:
    e = run["events"]
    return e["consumed"] == e["applied"] + e["staged"] + e["duplicate"] + e["quarantined"]


def _letters(store: ObjectStore, release: str) -> list[dict]:
    """Dead letters of this release in quarantine/events/ (Avro container files)."""
    found = []
    for key in store.list("quarantine/events/"):
        found += [r for r in fastavro.reader(io.BytesIO(store.get_bytes(key)))
                  if (r["event_id"] or "").startswith(release)]
    return found


def test_incomplete_release_expires_to_quarantine_and_its_late_manifest_is_refused(hub, monkeypatch):
    ingest("datasets", idle_ms=1500)                         # what earlier tests left on the session broker
    release = f"exp-{uuid.uuid4().hex[:8]}"
    chunks, manifest = _events(release)
    _send([(chunks[0], f"{release}-0")])                       # chunk 1 and the manifest never come (yet)
    store = ObjectStore()

    first = ingest("datasets", idle_ms=1500)                   # default max age (72 h): it waits
    assert first["events"]["staged"] == 1 and first["releases_expired"] == 0 and _reconciles(first)
    assert [r["release"] for r in hub_status()["staging"]].count(release) == 1

    second = _ingest_after_max_age(monkeypatch)
    assert second["releases_expired"] >= 1 and second["events_expired"] >= 1
    assert _reconciles(second)                                # expired events are not consumed by this run
    assert not list(store.list(staging_prefix(ORG, DATASET, release)))
    status = hub_status()
    assert release not in [r["release"] for r in status["staging"]]
    [expired] = [r for r in status["expired"] if r["release"] == release]
    assert (expired["reason"], expired["events"], expired["missing"]) == (
        "incomplete-release", 1, "the manifest and chunk 1 of 2")
    assert expired["event_ids"] == [f"{release}-0"] and expired["chunks_present"] == [0]
    [letter] = _letters(store, release)
    assert letter["reason"] == "incomplete-release" and letter["event_id"] == f"{release}-0"
    assert "missing the manifest and chunk 1 of 2" in letter["detail"] and letter["payload"] == chunks[0]

    # The rest of the release arrives late: refused with the same reason, never staged again.
    _send([(chunks[1], f"{release}-1"), (manifest, f"{release}-m")])
    late = ingest("datasets", idle_ms=1500)
    assert late["quarantined_by_reason"].get("incomplete-release") == 2 and late["events"]["staged"] == 0
    assert _reconciles(late)
    assert not list(store.list(staging_prefix(ORG, DATASET, release)))
    assert hub_tables.rows_count(ORG, DATASET) == 0
    assert sorted(l["event_id"] for l in _letters(store, release)) == [f"{release}-0", f"{release}-1", f"{release}-m"]
    again = ingest("datasets", idle_ms=1500)
    assert again["events"]["consumed"] == 0 and again["events"]["staged"] == 0

    dlq = KafkaConsumer(DEAD_LETTER_TOPIC, **common_config(), auto_offset_reset="earliest", consumer_timeout_ms=3000)
    on_topic = [codec.decode(m.value).record for m in dlq]
    dlq.close()
    assert sorted(l["event_id"] for l in on_topic if (l["event_id"] or "").startswith(release)
                  and l["reason"] == "incomplete-release") == [f"{release}-0", f"{release}-1", f"{release}-m"]


def test_staged_leftovers_of_an_applied_release_are_removed_not_dead_lettered(hub, monkeypatch):
    """A crash between marking a release applied and emptying its staging leaves staged copies behind:
    expiry removes them (the release was applied) instead of refusing them as incomplete."""
    ingest("datasets", idle_ms=1500)
    release = f"left-{uuid.uuid4().hex[:8]}"
    chunks, manifest = _events(release)
    _send([(chunks[0], f"{release}-0"), (chunks[1], f"{release}-1"), (manifest, f"{release}-m")])
    applied = ingest("datasets", idle_ms=1500)
    assert applied["events"]["applied"] == 3
    store = ObjectStore()
    leftover = staging_prefix(ORG, DATASET, release) + "chunk-000000@" + f"{datasets_topic(ORG)}@0@0.avro"
    store.put_bytes(leftover, chunks[0], "avro/binary")          # what the crash would have left

    run = _ingest_after_max_age(monkeypatch)
    assert run["staged_leftovers_removed"] == 1
    assert not list(store.list(staging_prefix(ORG, DATASET, release)))
    assert not _letters(store, release)
    assert release not in [r["release"] for r in hub_status()["expired"]]
