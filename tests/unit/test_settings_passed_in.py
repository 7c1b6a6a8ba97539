"""Library functions use the Settings (and the registry) they are handed, not the global ones: two
schema directories and two orgs files side by side in one process, each function using its own.
The same with real servers: tests/integration/test_settings_side_by_side.py."""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import NamedTuple

import pytest

from ioxhub import status
from ioxhub.contracts import codec
from ioxhub.contracts.registry import get_registry
from ioxhub.contracts import dataset_chunk
from ioxhub.ingest.quarantine import DeadLetters
from ioxhub.ingest.run import accept, ingest
from ioxhub.orgs import OrgsFileError
from ioxhub.settings import PROJECT_ROOT, load_settings


class Record(NamedTuple):
    """The fields of a consumed kafka-python record that `accept` reads."""
    topic: str
    value: bytes
    headers: list = []
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    timestamp_type: int = 1


def policy(org: str = "WCO") -> dict:
    return {"event_id": "e1", "org": org, "instrument_id": f"{org}-X", "issuing_org": org, "partner_orgs": [],
            "title": "T", "instrument_type": "GUIDELINE", "binding": False, "action": "ADOPTED", "version": "1",
            "effective_date": dt.date(2024, 1, 1), "member_countries": ["FRA"], "themes": [],
            "related_indicators": [], "url": None, "produced_at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            "note": "only in the other schemas"}


def test_one_registry_per_schema_directory(other_schemas_dir):
    other_dir = other_schemas_dir
    default, other = get_registry(), get_registry(other_dir)
    assert default is get_registry(PROJECT_ROOT / "schemas") and other is get_registry(other_dir)
    assert other.latest("policy_update").version == default.latest("policy_update").version + 1
    assert default.latest("policy_update").version == get_registry().latest("policy_update").version


def test_an_event_decodes_with_the_registry_given_and_only_there(other_schemas_dir):
    other = get_registry(other_schemas_dir)
    record = Record("ioxhub.WCO.policies", codec.encode("policy_update", policy(), registry=other))

    dead = DeadLetters()
    decoded = accept(record, dead, None, other)
    assert not dead.letters
    assert (decoded.version, decoded.record["note"]) == (other.latest("policy_update").version, "only in the other schemas")
    assert dataset_chunk.decode(record.value, other).record == decoded.record

    dead = DeadLetters()
    assert accept(record, dead, None) is None            # the global settings' registry does not know it
    assert [letter["reason"] for letters in dead.letters.values() for letter in letters] == ["unknown-schema"]


@pytest.fixture
def nowhere_settings(tmp_path):
    """Settings whose orgs file does not exist and whose servers cannot be reached."""
    settings = load_settings({"IOXHUB_DATA_DIR": str(tmp_path / "data"), "IOXHUB_KAFKA_BOOTSTRAP": "127.0.0.1:9",
                              "IOXHUB_S3_ENDPOINT": "127.0.0.1:9"})
    return dataclasses.replace(settings, orgs_file=tmp_path / "elsewhere" / "orgs.yaml")


def test_ingest_reads_the_orgs_file_of_its_settings(nowhere_settings):
    with pytest.raises(OrgsFileError, match="elsewhere/orgs.yaml"):
        ingest("policies", nowhere_settings)


def test_status_lag_reads_the_orgs_file_of_its_settings(nowhere_settings):
    with pytest.raises(OrgsFileError, match="elsewhere/orgs.yaml"):
        status.topic_lag(nowhere_settings)
