"""The release_manifest contract: the record built for a release, its encoding, its content check."""
from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from ioxhub.contracts import codec, content, release_manifest
from ioxhub.contracts.codec import ContentError

CHECKSUM = "sha256:" + hashlib.sha256(b"body").hexdigest()


def manifest(**change) -> dict:
    record = release_manifest.build(org="WCO", dataset_id="WCO-SEIZ", release_id="r1", chunk_count=2,
                                    observation_count=10, checksum=CHECKSUM, produced_at=1_764_000_000_000,
                                    title="Seizures", rejected_at_source=3)
    record.update(change)
    return record


def test_build_gives_a_record_of_the_schema_with_a_deterministic_event_id():
    record = manifest()
    assert record["event_id"] == hashlib.sha256(b"WCO/WCO-SEIZ/r1/manifest").hexdigest() == \
        release_manifest.manifest_event_id("WCO", "WCO-SEIZ", "r1")
    decoded = codec.decode(release_manifest.encode(record))
    assert decoded.name == release_manifest.NAME
    assert {k: v for k, v in decoded.record.items() if k != "produced_at"} == \
        {k: v for k, v in record.items() if k != "produced_at"}
    assert decoded.record["produced_at"] == dt.datetime(2025, 11, 24, 16, 0, tzinfo=dt.timezone.utc)
    assert release_manifest.encode(record) == codec.encode("release_manifest", record)
    content.check_event(decoded)


@pytest.mark.parametrize("change, reason, field", [
    ({"chunk_count": -1}, release_manifest.BAD_MANIFEST, "chunk_count -1"),
    ({"rejected_at_source": -2}, release_manifest.BAD_MANIFEST, "rejected_at_source -2"),
    ({"chunk_count": 0}, release_manifest.BAD_MANIFEST, "chunk_count 0 with observation_count 10"),
    ({"checksum": "sha256:00"}, release_manifest.BAD_MANIFEST, "field checksum"),
    ({"dataset_id": "a/b"}, codec.BAD_NAME, "dataset_id"),
])
def test_unusable_manifests_are_refused_with_reason_and_field(change, reason, field):
    decoded = codec.decode(release_manifest.encode(manifest(**change)))
    with pytest.raises(ContentError) as exc:
        content.check_event(decoded)
    assert exc.value.reason == reason and field in exc.value.detail, exc.value


def test_unit_translations_travel_in_v2_and_a_v1_manifest_reads_with_none():
    record = manifest(unit_translations={"PC": "NUMBER"})
    assert codec.decode(release_manifest.encode(record)).record["unit_translations"] == {"PC": "NUMBER"}
    old = {k: v for k, v in manifest().items() if k != "unit_translations"}
    decoded = codec.decode(codec.encode("release_manifest", old, version=1))   # a producer still on v1
    assert decoded.version == 1 and decoded.record["unit_translations"] == {}
