"""Poison events cannot stop the ingest: real broker, real S3.

Records signed by a trusted org (ICC) whose content is malformed (columns of unequal length, string
indexes past the table, missing positions past the chunk, ints past int32, manifests that contradict
their chunks, a chunk sent twice with different bytes, policy updates with impossible fields) are each
quarantined with a machine-readable reason in the same run that harmonizes the good release beside them;
the next run does not meet them again. An unexpected exception while handling a record costs that
record's release (reason internal-error, traceback in quarantine/errors/, shown by `ioxhub status`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid

import fastavro
import pytest

from ioxhub.contracts import codec, policy_update, release_manifest
from app.demo import ensure_keys
from ioxhub.ingest import datasets as datasets_module
from ioxhub.ingest.run import ingest
from ioxhub.kafka import make_producer
from ioxhub.names import datasets_topic, policies_topic
from ioxhub.keys import load_signer
from ioxhub.status import hub_status
from ioxhub.storage import ObjectStore, staging_prefix
import hub_tables

pytestmark = [pytest.mark.integration]
ORG = "ICC"
PRODUCED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def hub(provisioned_settings):
    ensure_keys([ORG], provisioned_settings)
    drain()
    return provisioned_settings


def drain() -> None:
    ingest("datasets", idle_ms=1500)
    ingest("policies", idle_ms=1500)


def chunk(dataset_id: str, release_id: str, seq: int = 0, **change) -> dict:
    """A valid 4-observation chunk record, with `change` applied."""
    record = {
        "event_id": f"{release_id}-c{seq}", "org": ORG, "dataset_id": dataset_id, "release_id": release_id,
        "chunk_seq": seq, "chunk_count": None, "produced_at": PRODUCED, "licence": None, "source_url": None,
        "strings": [f"{ORG}.POISON", "FRA", "DEU", "2023", "2024", "KG", "poison.csv"],
        "indicator": [0, 0, 0, 0], "ref_area": [1, 1, 2, 2], "counterpart_area": [-1] * 4,
        "commodity": [-1] * 4, "period": [3, 4, 3, 4], "value": [1.0, 2.0, 3.0, 4.0], "missing_values": [],
        "unit": [5] * 4, "unit_mult": [0] * 4, "obs_status": [-1] * 4, "attributes": [],
        "source_file": [6] * 4, "source_line": [2, 3, 4, 5],
    }
    record.update(change)
    return record


def encode_raw(name: str, record: dict) -> bytes:
    """Single-object encoding without fastavro's validation (a buggy producer's bytes: e.g. an int that
    does not fit 32 bits, which Avro's zig-zag varint can still carry)."""
    sv = codec.get_registry().latest(name)
    buf = io.BytesIO()
    buf.write(codec.SINGLE_OBJECT_MAGIC + sv.fingerprint)
    fastavro.schemaless_writer(buf, sv.parsed, record, strict_allow_default=False)
    return buf.getvalue()


def manifest(dataset_id: str, release_id: str, chunk_values: list[bytes], **change) -> dict:
    digest = hashlib.sha256()
    for value in chunk_values:
        digest.update(codec.body(value))
    record = {"event_id": f"{release_id}-m", "org": ORG, "dataset_id": dataset_id, "release_id": release_id,
              "chunk_count": len(chunk_values), "observation_count": 4 * len(chunk_values),
              "checksum": f"sha256:{digest.hexdigest()}", "produced_at": PRODUCED, "title": None, "licence": None,
              "source_url": None, "rejected_at_source": 0}
    record.update(change)
    return record


class Sender:
    """Signs (as ICC) and sends events; remembers each event's id."""

    def __init__(self, settings):
        self.signer = load_signer(ORG, settings=settings)
        self.producer = make_producer(settings)

    def send(self, topic: str, value: bytes, event_id: str, key: str) -> None:
        fingerprint = value[2:codec.SINGLE_OBJECT_HEADER_LEN]
        headers = self.signer.sign(value, codec.record_headers(ORG, fingerprint, event_id), topic)
        self.producer.send(topic, key=key.encode(), value=value, headers=headers)

    def release(self, dataset_id: str, chunks: list[bytes], manifest_record: dict | None) -> None:
        topic = datasets_topic(ORG)
        for value in chunks:
            body = io.BytesIO(value[codec.SINGLE_OBJECT_HEADER_LEN:])
            event_id = fastavro.schemaless_reader(body, codec.get_registry().latest("dataset_chunk").parsed)["event_id"]
            self.send(topic, value, event_id, f"{ORG}/{dataset_id}")
        if manifest_record is not None:
            self.send(topic, release_manifest.encode(manifest_record), manifest_record["event_id"],
                      f"{ORG}/{dataset_id}")

    def valid_release(self, dataset_id: str, release_id: str) -> None:
        """A good 4-observation release (one chunk and its manifest)."""
        value = codec.encode("dataset_chunk", chunk(dataset_id, release_id))
        self.release(dataset_id, [value], manifest(dataset_id, release_id, [value]))

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()

    def ingest(self, settings, kind: str = "datasets") -> tuple[dict, ObjectStore, dict[str, dict]]:
        """Close, run one ingest of `kind`: its counts, the store, and the dead letters of ICC's topic."""
        self.close()
        run = ingest(kind, idle_ms=1500)
        store = ObjectStore(settings)
        topic = datasets_topic(ORG) if kind == "datasets" else policies_topic(ORG)
        return run, store, letters(store, topic)


def letters(store: ObjectStore, topic: str) -> dict[str, dict]:
    """Every dead letter of `topic` by event id (the last one of an id wins)."""
    found = {}
    for key in store.list(f"quarantine/events/topic={topic}/"):
        for letter in fastavro.reader(io.BytesIO(store.get_bytes(key))):
            found[letter["event_id"] or (codec.header_event_id(letter["headers"]) or "")] = letter
    return found


def rows(store: ObjectStore, dataset_id: str) -> int:
    return hub_tables.rows_count(ORG, dataset_id, store.settings)


def test_malformed_content_is_quarantined_per_event_and_the_good_release_applied(hub):
    tag = uuid.uuid4().hex[:8]
    sender = Sender(hub)
    expected: dict[str, str] = {}            # event id -> reason

    def bad_chunk(name: str, reason: str, raw: bool = False, **change) -> None:
        dataset_id, release_id = f"poison_{name}_{tag}", f"{tag}-{name}"
        record = chunk(dataset_id, release_id, **change)
        value = encode_raw("dataset_chunk", record) if raw else codec.encode("dataset_chunk", record)
        sender.release(dataset_id, [value], manifest(dataset_id, release_id, [value]))
        expected[f"{release_id}-c0"] = reason
        expected[f"{release_id}-m"] = "bad-release"

    bad_chunk("short-period", "unequal-columns", period=[3, 4, 3])
    bad_chunk("index-past-table", "index-out-of-range", ref_area=[1, 1, 2, 70])
    bad_chunk("missing-past-chunk", "bad-missing-position", missing_values=[50])
    bad_chunk("empty-strings", "empty-string-table", strings=[])
    bad_chunk("infinite-value", "non-finite-value", value=[1.0, float("inf"), 3.0, 4.0])
    bad_chunk("seq-past-count", "bad-chunk-seq", chunk_seq=3, chunk_count=2)
    bad_chunk("int-overflow", "int-overflow", raw=True, ref_area=[1, 1, 2, 1 << 40])

    def bad_manifest(name: str, reason: str, **change) -> None:
        dataset_id, release_id = f"poison_{name}_{tag}", f"{tag}-{name}"
        value = codec.encode("dataset_chunk", chunk(dataset_id, release_id))
        sender.release(dataset_id, [value], manifest(dataset_id, release_id, [value], **change))
        expected[f"{release_id}-c0"] = "bad-release"
        expected[f"{release_id}-m"] = reason

    bad_manifest("negative-count", "bad-manifest", observation_count=-4)
    bad_manifest("bad-checksum", "bad-manifest", checksum="md5:00")
    bad_manifest("count-contradicts", "bad-release", observation_count=5)      # chunks hold 4

    # chunk_seq 1 of a release whose manifest says 1 chunk: the release is refused whole.
    dataset_id, release_id = f"poison_seq-beyond_{tag}", f"{tag}-seq-beyond"
    values = [codec.encode("dataset_chunk", chunk(dataset_id, release_id, seq)) for seq in (0, 1)]
    sender.release(dataset_id, values, manifest(dataset_id, release_id, values[:1]))
    expected.update({f"{release_id}-c0": "bad-release", f"{release_id}-c1": "bad-release",
                     f"{release_id}-m": "bad-release"})

    # The same chunk (same event id) sent twice with different bytes.
    dataset_id, release_id = f"poison_conflict_{tag}", f"{tag}-conflict"
    first = codec.encode("dataset_chunk", chunk(dataset_id, release_id))
    second = codec.encode("dataset_chunk", chunk(dataset_id, release_id, value=[9.0, 9.0, 9.0, 9.0]))
    sender.release(dataset_id, [first, second], manifest(dataset_id, release_id, [first]))
    expected.update({f"{release_id}-c0": "conflicting-event", f"{release_id}-m": "conflicting-event"})

    good_id = f"poison_good_{tag}"
    sender.valid_release(good_id, f"{tag}-good")
    run, store, found = sender.ingest(hub)
    assert {eid: found[eid]["reason"] for eid in expected if eid in found} == expected
    assert "period has 3" in found[f"{tag}-short-period-c0"]["detail"]
    assert "70" in found[f"{tag}-index-past-table-c0"]["detail"]
    assert rows(store, good_id) == 4
    assert run["events"]["applied"] == 2
    assert run["events"]["quarantined"] == len(expected) + 1         # the conflicting chunk came twice
    for dataset in {f"poison_{eid.split('-', 1)[1].rsplit('-', 1)[0]}_{tag}" for eid in expected}:
        assert not rows(store, dataset), dataset
        assert not list(store.list(f"staging/org={ORG}/dataset={dataset}/")), dataset
    # The next run does not meet them again: nothing is left to consume.
    assert ingest("datasets", idle_ms=1500)["events"]["consumed"] == 0


def test_malformed_policy_updates_are_quarantined(hub):
    tag = uuid.uuid4().hex[:8]
    sender = Sender(hub)
    topic = policies_topic(ORG)
    base = {"org": ORG, "instrument_id": f"ICC-POISON-{tag}", "issuing_org": ORG, "partner_orgs": [],
            "title": "Poison test rules", "instrument_type": "GUIDELINE", "binding": False, "action": "ADOPTED",
            "version": "1", "effective_date": dt.date(2024, 1, 1), "member_countries": [], "themes": [],
            "related_indicators": [], "url": None, "produced_at": PRODUCED}
    cases = {
        f"{tag}-far-future": ({"effective_date": dt.date(9999, 12, 31)}, "bad-policy"),
        f"{tag}-empty-title": ({"title": "  "}, "bad-policy"),
        f"{tag}-bad-partner": ({"partner_orgs": ["../x"]}, "bad-name"),
        f"{tag}-good": ({}, None),
    }
    for event_id, (change, _) in cases.items():
        value = policy_update.encode({**base, "event_id": event_id, **change})
        sender.send(topic, value, event_id, f"{ORG}/{base['instrument_id']}")
    sender.close()
    run = ingest("policies", idle_ms=1500)
    found = letters(ObjectStore(hub), topic)
    assert {eid: found[eid]["reason"] for eid, (_, reason) in cases.items() if reason} == \
        {eid: reason for eid, (_, reason) in cases.items() if reason}
    assert f"{tag}-good" not in found
    assert run["events"]["applied"] == 1


def test_an_unexpected_error_costs_one_release_not_the_run(hub, monkeypatch):
    """A bug met while harmonizing one release's chunk: that release is quarantined as internal-error with
    its traceback, the run succeeds, the good release is applied, `status` lists the error."""
    tag = uuid.uuid4().hex[:8]
    doomed_id, doomed_release = f"poison_bug_{tag}", f"{tag}-bug"
    real = datasets_module.harmonize_chunk

    def harmonize_with_a_bug(record, *args, **kwargs):
        if record["release_id"] == doomed_release:
            raise KeyError("a bug that only this release meets")
        return real(record, *args, **kwargs)

    monkeypatch.setattr(datasets_module, "harmonize_chunk", harmonize_with_a_bug)
    sender = Sender(hub)
    sender.valid_release(doomed_id, doomed_release)
    good_id = f"poison_nobug_{tag}"
    sender.valid_release(good_id, f"{tag}-nobug")
    run, store, found = sender.ingest(hub)
    assert found[f"{doomed_release}-c0"]["reason"] == "internal-error"
    assert found[f"{doomed_release}-m"]["reason"] == "internal-error"
    assert run["quarantined_by_reason"].get("internal-error") == 2
    detail = found[f"{doomed_release}-c0"]["detail"]
    assert "KeyError" in detail and "quarantine/errors/" in detail
    key = detail.rsplit("traceback in ", 1)[1].rstrip(")")
    assert "a bug that only this release meets" in store.get_bytes(key).decode()
    assert "harmonize_with_a_bug" in store.get_bytes(key).decode()
    assert rows(store, good_id) == 4 and rows(store, doomed_id) == 0
    shown = hub_status(hub)["internal_errors"]
    assert any(e["key"] == key and "KeyError" in e["error"] for e in shown)


def test_a_release_refused_later_takes_its_staged_events_along(hub):
    """Chunk 0 staged by one run; the next run brings a different chunk 0 (same event id): the release is
    refused whole, the staged event gets its dead letter too and staging/ is emptied."""
    tag = uuid.uuid4().hex[:8]
    dataset_id, release_id = f"poison_late_{tag}", f"{tag}-late"
    sender = Sender(hub)
    values = [codec.encode("dataset_chunk", chunk(dataset_id, release_id, seq)) for seq in (0, 1)]
    sender.release(dataset_id, values[:1], None)
    sender.close()
    first = ingest("datasets", idle_ms=1500)
    assert first["events"]["staged"] == 1
    store = ObjectStore(hub)
    assert len(list(store.list(staging_prefix(ORG, dataset_id, release_id)))) == 1

    sender = Sender(hub)
    other = codec.encode("dataset_chunk", chunk(dataset_id, release_id, 0, value=[7.0, 7.0, 7.0, 7.0]))
    sender.release(dataset_id, [other, values[1]], manifest(dataset_id, release_id, values))
    sender.close()
    second = ingest("datasets", idle_ms=1500)
    assert second["events"]["quarantined"] == 3
    assert second["earlier_events_quarantined"] == {"conflicting-event": 1}
    assert not list(store.list(staging_prefix(ORG, dataset_id, release_id)))
    assert rows(store, dataset_id) == 0
