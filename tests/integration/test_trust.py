"""Trust between organizations, end to end: real broker, real S3, real Airflow.

- one batch on WHO's datasets topic mixing a good release with records signed by another org's key,
  unsigned, signed with a rotated-out key, published by WCO into WHO's topic (and more): each lands in
  quarantine (objects and the dead-letter topic) with its own reason, the good release is harmonized;
- a dataset id `../evil` in a signed payload is refused as bad-name and no object key gets a `..`;
- the analyst's storage keys read curated/ and the catalog, and are refused on raw/, quarantine/ and any
  write; wrong keys are one clear `error:` line at the CLI.

The session broker and bucket are shared: each test drains first and asserts on its own event ids.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fastavro
import pyarrow as pa
import pytest
from kafka import KafkaConsumer

from ioxhub.catalog import Catalog
from consumers.access import pull_table
from ioxhub.contracts import codec
from app.demo import ensure_keys
from ioxhub.ingest.run import ingest
from ioxhub.kafka import common_config, make_producer
from ioxhub.names import DEAD_LETTER_TOPIC, datasets_topic, policies_topic
from producers import publish_dataset, publish_policy
from ioxhub.s3 import make_client
from ioxhub.keys import generate_key, generate_org_key, load_private_key, load_signer, retire_key
from ioxhub.signing import Signer
from consumers.evidence import write_curated
from ioxhub.ingest.policies import read_instruments
from ioxhub.storage import ObjectStore, StorageError
from ioxhub.table_files import live_files
from ioxhub.tables import CURATED, TableAccessDenied, identifier_of, object_key, tables_for
from table_writes import commit_snapshot
import hub_tables

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
IOXHUB = str(Path(sys.executable).parent / "ioxhub")
PRODUCED = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def hub(provisioned_settings, airflow_db):
    ensure_keys(["WCO", "WHO"], provisioned_settings)
    return provisioned_settings


def drain():
    ingest("datasets", idle_ms=1500)
    ingest("policies", idle_ms=1500)


# ------------------------------------------------------------------------------------------ helpers
def release(org: str, dataset_id: str, tag: str) -> list[tuple[bytes, list[tuple[str, bytes]], str]]:
    """A complete, valid release of 2 good observations (chunk + manifest): (value, headers, event id)."""
    release_id = f"{tag}-r1"
    strings = [f"{org}.TRUST", "FRA", "3002", "2024", "KG", "trust.csv"]
    chunk = {
        "event_id": f"{tag}-c0", "org": org, "dataset_id": dataset_id, "release_id": release_id, "chunk_seq": 0,
        "chunk_count": 1, "produced_at": PRODUCED, "licence": None, "source_url": None, "strings": strings,
        "indicator": [0, 0], "ref_area": [1, 1], "counterpart_area": [-1, -1], "commodity": [2, 2],
        "period": [3, 3], "value": [1.0, 2.0], "missing_values": [], "unit": [4, 4], "unit_mult": [0, 0],
        "obs_status": [-1, -1], "attributes": [], "source_file": [5, 5], "source_line": [2, 3],
    }
    chunk_value, chunk_headers = codec.encode_event("dataset_chunk", chunk)
    manifest_value, manifest_headers = codec.encode_event("release_manifest", {
        "event_id": f"{tag}-m", "org": org, "dataset_id": dataset_id, "release_id": release_id, "chunk_count": 1,
        "observation_count": 2, "checksum": "sha256:" + hashlib.sha256(codec.body(chunk_value)).hexdigest(),
        "produced_at": PRODUCED})
    return [(chunk_value, chunk_headers, f"{tag}-c0"), (manifest_value, manifest_headers, f"{tag}-m")]


def tampered(value: bytes) -> bytes:
    """The same event with its first observation value changed (still valid Avro)."""
    record = codec.decode(value).record
    if "value" not in record:
        return value[:-1] + bytes([value[-1] ^ 1])
    record["value"] = [v + 1000.0 for v in record["value"]]
    return codec.encode(codec.decode(value).name, record)


def dead_letters_of(store: ObjectStore, topic: str, event_ids: set[str]) -> dict[str, dict]:
    """The quarantine/events/ letters of these events (by their event id header)."""
    found = {}
    for key in store.list(f"quarantine/events/topic={topic}/"):
        for letter in fastavro.reader(io.BytesIO(store.get_bytes(key))):
            eid = (codec.header_event_id(letter["headers"]) or "")
            if eid in event_ids:
                found[eid] = letter
    return found


def dlq_letters(event_ids: set[str]) -> dict[str, dict]:
    consumer = KafkaConsumer(DEAD_LETTER_TOPIC, **common_config(), auto_offset_reset="earliest",
                             consumer_timeout_ms=4000)
    found = {}
    for message in consumer:
        letter = codec.decode(message.value).record
        eid = (codec.header_event_id(letter["headers"]) or "")
        if eid in event_ids:
            found[eid] = letter
    consumer.close()
    return found


def harmonized_row_count(store: ObjectStore, org: str, dataset_id: str) -> int:
    return hub_tables.rows_count(org, dataset_id, store.settings)


# ------------------------------------------------------------------------------------------ signed events
def test_one_batch_bad_signatures_and_wrong_orgs_quarantined_good_release_harmonized(hub, run_dag, tmp_path):
    drain()
    tag = uuid.uuid4().hex[:8]
    topic = datasets_topic("WHO")
    who, wco = load_signer("WHO", settings=hub), load_signer("WCO", settings=hub)
    # A rotated-out WHO key: valid in 2025 only, still in the trust store (older records verify with it).
    rotated = generate_org_key("WHO", f"who-rotated-{tag}", settings=hub, valid_from=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    retire_key(rotated.key_id, dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc), settings=hub)
    rotated_signer = load_signer("WHO", rotated.key_id, settings=hub)
    assert who.key_id != rotated.key_id                     # the default signer skips the retired key
    # A key nobody registered.
    stray = generate_key("WHO", f"who-stray-{tag}", tmp_path / "stray")
    stray_signer = Signer("WHO", stray.key_id, load_private_key(stray.path))

    # The good release, published by the producer as usual.
    csv = tmp_path / "good.csv"
    csv.write_text("indicator,ref_area,period,value,unit\n" + "".join(f"WHO.TRUST_GOOD,DEU,{y},1.5,KG\n" for y in range(2019, 2025)))
    good_id = f"trust_good_{tag}"
    published = publish_dataset("WHO", good_id, [csv], {"indicator": "indicator", "ref_area": "ref_area", "period": "period",
                                                        "value": "value", "unit": "unit"}, settings=hub, progress=False)
    assert published.rows_sent == 6

    # name -> (records to send, the reason expected); each bad case is a complete release that would be
    # harmonized if it were accepted.
    cases: dict[str, tuple[list, str, str]] = {}

    def case(name: str, org: str, reason: str, sign, value_of=lambda v: v):
        records = []
        for value, headers, eid in release(org, f"trust_{name}_{tag}", f"{tag}-{name}"):
            records.append((value_of(value), sign(value, headers), eid))
        cases[name] = (records, reason, org)

    case("other-orgs-key", "WHO", "wrong-org-key", lambda v, h: wco.sign(v, h, topic))
    case("unsigned", "WHO", "unsigned", lambda v, h: h)
    case("rotated-out-key", "WHO", "expired-key", lambda v, h: rotated_signer.sign(v, h, topic))
    case("wco-into-who", "WCO", "org-mismatch", lambda v, h: wco.sign(v, h, topic))   # WCO's own key, WHO's topic
    case("tampered", "WHO", "bad-signature", lambda v, h: who.sign(v, h, topic), tampered)
    case("unknown-key", "WHO", "unknown-key", lambda v, h: stray_signer.sign(v, h, topic))
    # WHO signs a payload that claims to be WCO's: the headers verify, the payload claim does not.
    case("payload-claims-wco", "WCO", "org-mismatch",
         lambda v, h: who.sign(v, [(k, b"urn:ioxhub:org:WHO" if k == codec.HEADER_CE_SOURCE else x) for k, x in h], topic))
    # A signed, valid release whose dataset id would climb out of its prefix.
    evil = [(v, who.sign(v, h, topic), eid) for v, h, eid in release("WHO", "../evil", f"{tag}-evil")]
    cases["dot-dot-dataset"] = (evil, "bad-name", "WHO")

    producer = make_producer(hub)
    for records, _, _ in cases.values():
        for value, headers, eid in records:
            producer.send(topic, key=f"WHO/{eid}".encode(), value=value, headers=headers)
    producer.flush()
    producer.close()

    state, tasks, run = run_dag("ingest_datasets")
    assert state == "success" and tasks["ingest"] == "success", tasks

    expected = {eid: reason for records, reason, _ in cases.values() for _, _, eid in records}
    store = ObjectStore(hub)
    in_objects = dead_letters_of(store, topic, set(expected))
    assert {eid: l["reason"] for eid, l in in_objects.items()} == expected
    on_topic = dlq_letters(set(expected))
    assert {eid: l["reason"] for eid, l in on_topic.items()} == expected
    must_show = ["other-orgs-key", "unsigned", "rotated-out-key", "wco-into-who"]
    assert len({cases[name][1] for name in must_show}) == 4          # four distinct reasons
    for eid, letter in in_objects.items():
        assert letter["detail"] and letter["payload"]                  # why, and the event exactly as received
        assert letter["topic"] == topic
    assert "published into WHO's topic" in in_objects[f"{tag}-wco-into-who-c0"]["detail"]
    assert "payload org 'WCO' published into WHO's topic" in in_objects[f"{tag}-payload-claims-wco-c0"]["detail"]
    assert "../evil" in in_objects[f"{tag}-evil-c0"]["detail"]

    # This batch's counts: all of it consumed, every bad record quarantined with its reason.
    want = {}
    for reason in expected.values():
        want[reason] = want.get(reason, 0) + 1
    assert run["quarantined_by_reason"] == dict(sorted(want.items()))
    assert run["events"]["quarantined"] == len(expected) and run["events"]["applied"] == published.chunks + 1

    # The good records of the same batch are harmonized; nothing of the bad ones is, anywhere.
    assert harmonized_row_count(store, "WHO", good_id) == 6
    all_keys = list(store.list(""))
    for name in cases:
        dataset_id = f"trust_{name}_{tag}"
        assert not [k for k in all_keys if f"dataset={dataset_id}/" in k], name
    assert not [k for k in all_keys if ".." in k]


def test_a_backdated_record_signed_with_a_rotated_out_key_is_still_refused(hub, run_dag):
    drain()
    tag = uuid.uuid4().hex[:8]
    topic = datasets_topic("WHO")
    window = (dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
    rotated = generate_org_key("WHO", f"who-backdated-{tag}", settings=hub, valid_from=window[0])
    retire_key(rotated.key_id, window[1], settings=hub)
    signer = load_signer("WHO", rotated.key_id, settings=hub)
    # The holder of the retired key stamps its records inside the key's old window (CreateTime is the
    # producer's; the local broker ignores message.timestamp.type=LogAppendTime).
    backdated_ms = int(dt.datetime(2025, 3, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    producer = make_producer(hub)
    records = release("WHO", f"trust_backdated_{tag}", tag)
    for value, headers, eid in records:
        producer.send(topic, key=f"WHO/{eid}".encode(), value=value, headers=signer.sign(value, headers, topic),
                      timestamp_ms=backdated_ms)
    producer.flush()
    producer.close()

    state, _, run = run_dag("ingest_datasets")
    assert state == "success"
    letters = dead_letters_of(ObjectStore(hub), topic, {eid for _, _, eid in records})
    assert {eid: l["reason"] for eid, l in letters.items()} == {eid: "expired-key" for _, _, eid in records}
    assert harmonized_row_count(ObjectStore(hub), "WHO", f"trust_backdated_{tag}") == 0


def _policy_file(path: Path, instrument_id: str, issuing_org: str, updates: list[tuple[str, str, list[str]]]) -> Path:
    entries = [{"instrument_id": instrument_id, "issuing_org": issuing_org, "title": "Trust probe instrument",
                "instrument_type": "STANDARD", "binding": False, "action": action, "version": "1",
                "effective_date": date, "member_countries": members} for action, date, members in updates]
    path.write_text(json.dumps(entries))
    return path


def test_an_org_cannot_rewrite_another_orgs_instrument(hub, run_dag, tmp_path):
    drain()
    instrument = f"WCO-TRUST-{uuid.uuid4().hex[:8].upper()}"
    publish_policy("WCO", _policy_file(tmp_path / "wco.json", instrument, "WCO", [
        ("ADOPTED", "2020-01-01", []), ("ADOPTED_BY_MEMBER", "2021-06-01", ["FRA"])]), settings=hub)
    # WHO, with its own valid key on its own topic, backdates FRA's adoption of WCO's instrument: once
    # naming WCO as the issuer, once claiming the instrument id as its own.
    forged = [publish_policy("WHO", _policy_file(tmp_path / f"who-{issuer}.json", instrument, issuer, [
        ("ADOPTED_BY_MEMBER", date, ["FRA"])]), settings=hub) for issuer, date in (("WCO", "2018-01-01"), ("WHO", "2017-01-01"))]
    forged_ids = {eid for summary in forged for eid in summary.event_ids}
    assert len(forged_ids) == 2

    state, _, run = run_dag("ingest_policies")
    assert state == "success"
    letters = dead_letters_of(ObjectStore(hub), policies_topic("WHO"), forged_ids)
    assert {eid: l["reason"] for eid, l in letters.items()} == {eid: "org-mismatch" for eid in forged_ids}
    adoptions = read_instruments(hub, "adoptions")
    mine = [r for r in adoptions.to_pylist() if r["instrument_id"] == instrument]
    assert [(r["country"], r["adoption_date"].isoformat()) for r in mine] == [("FRA", "2021-06-01")]


# ------------------------------------------------------------------------------------------ storage roles
@pytest.fixture(scope="module")
def analyst_keys(hub) -> tuple[str, str]:
    stored = json.loads(hub.local_secrets_file.read_text())
    return stored["analyst_access_key"], stored["analyst_secret_key"]


@pytest.fixture(scope="module")
def curated(hub):
    """A curated dataset written by the hub (its table, one snapshot); removed afterwards."""
    name = f"trust_probe_{uuid.uuid4().hex[:8]}"
    store, tables = ObjectStore(hub), tables_for(hub)
    table = pa.table({"ref_area": ["DEU", "FRA", "FRA"], "year": [2023, 2023, 2024], "value": [1.0, 2.0, 3.0]})
    write_curated(store, tables, name, table, {"kind": "curated", "rows": 3, "columns": table.column_names},
                  {"ioxhub.run_id": "trust"})
    data_key = object_key(live_files(tables.load(CURATED, name))[0].file_path, hub.bucket)
    # Hub-only zones: an object in each, and a harmonized dataset in the catalog (analysts see the entry,
    # not the data).
    hub_only = {zone: f"{zone}/trust-probe/{name}/data.parquet" for zone in ("raw", "quarantine", "harmonized")}
    for key in hub_only.values():
        store.put_parquet(key, table)
    harmonized = f"TRUST.{name}"
    commit_snapshot(store, harmonized, table, {"kind": "harmonized"})
    yield {"name": name, "harmonized_name": harmonized, "table": table, "data_key": data_key, **hub_only}
    tables.catalog.drop_table((CURATED, name))
    tables.catalog.drop_table(identifier_of(harmonized))
    for key in (data_key, *hub_only.values()):
        store.delete(key)


def analyst_store(hub, access_key: str, secret_key: str) -> ObjectStore:
    return ObjectStore(hub, client=make_client(hub, access_key=access_key, secret_key=secret_key, retries=0))


def test_analyst_reads_curated_and_catalog_only_and_never_writes(hub, analyst_keys, curated):
    analyst = analyst_store(hub, *analyst_keys)
    pulled = pull_table(curated["name"], ["ref_area=FRA"], store=analyst)
    assert pulled.table.sort_by("year").to_pydict() == {"ref_area": ["FRA", "FRA"], "year": [2023, 2024], "value": [2.0, 3.0]}
    listed = {d["name"] for d in Catalog(analyst).datasets()}
    assert curated["name"] in listed
    # A harmonized table's metadata is in the harmonized zone: analysts do not see it, and pulling it is
    # refused in one line.
    assert curated["harmonized_name"] not in listed
    assert curated["harmonized_name"] in {d["name"] for d in Catalog(ObjectStore(hub)).datasets()}
    with pytest.raises(TableAccessDenied, match="AccessDenied"):
        pull_table(curated["harmonized_name"], [], store=analyst)

    def refused(call) -> str:
        with pytest.raises(StorageError) as err:
            call()
        message = str(err.value)
        assert "(AccessDenied)" in message and analyst_keys[1] not in message
        return message

    for zone in ("raw", "quarantine", "harmonized"):
        assert f"s3://{hub.bucket}/{zone}/" in refused(lambda: analyst.get_bytes(curated[zone]))
        refused(lambda: list(analyst.list(f"{zone}/")))
        refused(lambda: analyst.size(curated[zone]))
    for key in (f"curated/{curated['name']}/intruder.parquet", "catalog/datasets/intruder.json",
                "raw/intruder.avro", "quarantine/intruder.avro", "harmonized/intruder.parquet"):
        refused(lambda: analyst.put_bytes(key, b"x"))
    refused(lambda: analyst.delete(curated["data_key"]))
    refused(lambda: analyst.delete(curated["raw"]))
    hub_store = ObjectStore(hub)
    assert hub_store.exists(curated["raw"])                                     # nothing was removed
    assert hub_store.exists(curated["data_key"])
    assert not hub_store.exists("catalog/datasets/intruder.json")


def cli(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOXHUB_S3_") or k == "IOXHUB_S3_ENDPOINT"}
    env.update(env_overrides)
    return subprocess.run([IOXHUB, *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return done.stderr


def test_cli_with_analyst_keys_and_with_wrong_keys(hub, analyst_keys, curated):
    access, secret = analyst_keys
    listed = cli({"IOXHUB_S3_ACCESS_KEY": access, "IOXHUB_S3_SECRET_KEY": secret, "COLUMNS": "250"}, "datasets")
    assert listed.returncode == 0 and curated["name"] in listed.stdout, listed.stderr
    pulled = cli({"IOXHUB_S3_ACCESS_KEY": access, "IOXHUB_S3_SECRET_KEY": secret},
                 "pull", curated["name"], "--where", "ref_area=DEU", "--format", "json")
    assert pulled.returncode == 0 and json.loads(pulled.stdout) == {"ref_area": "DEU", "year": 2023, "value": 1.0}

    wrong_secret = "not-the-secret-" + uuid.uuid4().hex
    message = one_error_line(cli({"IOXHUB_S3_ACCESS_KEY": access, "IOXHUB_S3_SECRET_KEY": wrong_secret}, "datasets"))
    assert "secret key does not match access key " + access in message and "IOXHUB_S3_SECRET_KEY" in message
    assert wrong_secret not in message and secret not in message

    message = one_error_line(cli({"IOXHUB_S3_ACCESS_KEY": "IOXNOBODY", "IOXHUB_S3_SECRET_KEY": secret}, "datasets"))
    assert "does not know access key IOXNOBODY" in message and "IOXHUB_S3_ACCESS_KEY" in message
    assert secret not in message

    # Correct analyst keys, but a zone the analyst may not read: a harmonized dataset of the catalog.
    message = one_error_line(cli({"IOXHUB_S3_ACCESS_KEY": access, "IOXHUB_S3_SECRET_KEY": secret},
                                 "pull", curated["harmonized_name"], "--format", "json"))
    assert f"table harmonized.{identifier_of(curated['harmonized_name'])[1]}" in message and "(AccessDenied)" in message
    assert secret not in message
