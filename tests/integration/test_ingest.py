"""Ingest end to end with the real broker, the real S3 server and real Airflow.

Every test first drains what earlier tests left on the shared session broker, so its counts are its own.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid

import pyarrow.compute as pc
import pytest
from kafka import KafkaConsumer

from ioxhub.contracts import codec, release_manifest
from app.demo import ensure_keys
from ioxhub.ingest.policies import read_instruments
from ioxhub.ingest.run import ingest
from ioxhub.kafka import common_config, make_producer
from ioxhub.names import DEAD_LETTER_TOPIC, datasets_topic
from producers import publish_dataset
from producers.samples.manifest import SampleManifest
from ioxhub.keys import load_signer
from ioxhub.storage import ObjectStore, StorageError
from ioxhub.tables import HISTORY, Tables
from ioxhub.catalog import Catalog
from ioxhub.ingest.markers import release_applied
import hub_tables


pytestmark = [pytest.mark.integration, pytest.mark.airflow]
ORGS = ["WCO", "WHO", "ICAO", "WTO", "UPU", "IMO"]


@pytest.fixture(scope="module")
def hub(provisioned_settings, airflow_db):
    ensure_keys(ORGS + ["ICC"], provisioned_settings)
    return provisioned_settings


def drain():
    ingest("datasets", idle_ms=1500)
    ingest("policies", idle_ms=1500)


def harmonized_rows(store: ObjectStore, org: str, dataset_id: str):
    """(rows, [table]) of the dataset's current observations, read through pyiceberg."""
    table = hub_tables.current_rows(org, dataset_id)
    return (table.num_rows, [table]) if table is not None else (0, [])


def publish_fresh_samples(out_dir, settings, tag: str) -> tuple[list[dict], SampleManifest]:
    """The sample feeds under dataset and instrument ids of their own (suffix `tag`), so that this test's
    releases are new even when other tests of the session already ingested the plain sample feeds."""
    import yaml

    from producers import publish_policy
    from producers.mapping import ColumnMapping
    from producers.samples import generate

    manifest = generate(out_dir)
    published = []
    for f in manifest.files:
        f.dataset_id = f"{f.dataset_id}-{tag}" if f.dataset_id else None
        path = out_dir / f.path
        if f.kind == "dataset":
            s = publish_dataset(f.org, f.dataset_id, [path], ColumnMapping.from_file(out_dir / f.mapping),
                                settings=settings, progress=False)
        else:
            doc = yaml.safe_load(path.read_text())
            for update in doc if isinstance(doc, list) else [doc]:
                update["instrument_id"] = f"{update['instrument_id']}-{tag}"
            path.write_text(yaml.safe_dump(doc, sort_keys=False))
            s = publish_policy(f.org, path, settings=settings)
        published.append({"file": f.path, "org": f.org, "rows_sent": s.rows_sent, "chunks": s.chunks})
    return published, manifest


def test_sample_feeds_through_airflow_reconcile_exactly(hub, run_dag, tmp_path):
    drain()
    tag = uuid.uuid4().hex[:6]
    published, manifest = publish_fresh_samples(tmp_path / "samples", hub, tag)
    state, tasks, run = run_dag("ingest_datasets")
    assert state == "success" and tasks["ingest"] == "success" and tasks["announce"] == "success"

    events = run["events"]
    assert events["consumed"] == events["applied"] + events["staged"] + events["duplicate"] + events["quarantined"]
    assert events["quarantined"] == 0 and events["staged"] == 0
    datasets = manifest.datasets()
    sent_rows = sum(p["rows_sent"] for p in published if p["org"] and p.get("chunks"))
    assert run["observations_received"] == sent_rows
    assert run["observations_received"] == (run["observations_harmonized"] + run["observations_refused"]
                                            + run["observations_duplicate"])
    ingest_stage_bad = [b for f in datasets for b in f.bad if b.stage == "ingest"]
    assert run["observations_refused"] == len(ingest_stage_bad)
    assert run["observations_duplicate"] == sum(f.duplicates for f in datasets)

    # pyarrow reads the harmonized Parquet back: one row per good observation, revisions replacing.
    store = ObjectStore()
    for f in datasets:
        if f.revision_of:
            continue
        rows, tables = harmonized_rows(store, f.org, f.dataset_id)
        assert rows == f.good, f.path
        assert all(pc.all(pc.is_valid(t["ref_area"])).as_py() for t in tables)
    revised = [f for f in datasets if f.revision_of]
    assert revised and run["revisions_applied"] >= sum(f.revised_values for f in revised)

    state, tasks, policies = run_dag("ingest_policies")
    assert state == "success"
    assert policies["events"]["applied"] == sum(f.rows for f in manifest.policies())
    assert read_instruments(store.settings, "adoptions").num_rows > 0

    # Publishing the same feeds again doubles nothing.
    for f in datasets:
        publish_dataset(f.org, f.dataset_id, [tmp_path / "samples" / f.path], tmp_path / "samples" / f.mapping,
                        settings=hub, progress=False)
    state, tasks, again = run_dag("ingest_datasets")
    assert again["events"]["applied"] == 0 and again["events"]["duplicate"] == again["events"]["consumed"] > 0
    assert tasks["announce"] == "skipped"
    for f in datasets:
        if not f.revision_of:
            assert harmonized_rows(store, f.org, f.dataset_id)[0] == f.good


def _small_csv(path, rows):
    path.write_text("indicator,ref_area,period,value,unit\n" + "".join(f"{r}\n" for r in rows))
    return path


def test_fault_between_write_and_commit_then_rerun(hub, run_dag, tmp_path):
    drain()
    csv = _small_csv(tmp_path / "fault.csv", [f"WCO.FAULT_TEST,FRA,{y},{y - 2000},KG" for y in range(2015, 2025)])
    publish_dataset("WCO", "fault_test", [csv], {"indicator": "indicator", "ref_area": "ref_area", "period": "period",
                                                 "value": "value", "unit": "unit"}, settings=hub, progress=False)
    state, tasks, first = run_dag("ingest_datasets", fail_before_commit=True)
    assert state == "failed" and tasks["ingest"] == "failed"
    store = ObjectStore()
    table = hub_tables.observations("WCO", "fault_test")
    before, snapshots = hub_tables.current_rows("WCO", "fault_test"), hub_tables.snapshot_ids(table)
    assert before.num_rows == 10 and len(snapshots) == 1

    state, tasks, rerun = run_dag("ingest_datasets", fail_before_commit=False)
    assert state == "success"
    assert rerun["events"]["consumed"] == first["events"]["consumed"]   # the offsets were not committed
    assert rerun["events"]["duplicate"] == rerun["events"]["consumed"] and rerun["releases_applied"] == 0
    after = hub_tables.current_rows("WCO", "fault_test")
    assert after.sort_by("period").equals(before.sort_by("period"))        # identical harmonized data
    assert hub_tables.snapshot_ids(hub_tables.observations("WCO", "fault_test")) == snapshots   # no new snapshot
    assert len(hub_tables.snapshot_ids(hub_tables.history("WCO", "fault_test"))) == 1
    rows, tables = harmonized_rows(store, "WCO", "fault_test")
    periods = [p for t in tables for p in t["period"].to_pylist()]
    assert rows == 10 and len(set(periods)) == 10                          # no duplicate rows


def _signed_send(producer, org: str, value: bytes, event_id: str):
    signer = load_signer(org)
    headers = codec.record_headers(org, bytes(8), event_id)
    topic = datasets_topic(org)
    return producer.send(topic, key=f"{org}/bad".encode(), value=value, headers=signer.sign(value, headers, topic))


def test_bad_events_quarantined_good_ones_harmonized(hub, run_dag, tmp_path):
    drain()
    csv = _small_csv(tmp_path / "good.csv", [f"WHO.GOOD_TEST,DEU,{y},1.5,KG" for y in range(2020, 2025)])
    publish_dataset("WHO", "good_test", [csv], {"indicator": "indicator", "ref_area": "ref_area", "period": "period",
                                               "value": "value", "unit": "unit"}, settings=hub, progress=False)
    good_chunk = next(iter(_published_values("WHO")))
    producer = make_producer()
    unknown_fp = b"\xc3\x01" + bytes(range(8)) + good_chunk[10:]
    truncated = good_chunk[: len(good_chunk) // 2]
    for value, event_id in ((b"\x17garbage bytes", "bad-1"), (unknown_fp, "bad-2"), (truncated, "bad-3")):
        _signed_send(producer, "WHO", value, event_id)
    producer.flush()
    # A valid release whose rows have an unknown country and an unknown HS code (the producer refuses
    # those rows itself, so this one is built with the producer's own encoder but skips its validation).
    _publish_unvalidated_release(tmp_path)

    state, tasks, run = run_dag("ingest_datasets")
    assert state == "success"
    reasons = run["quarantined_by_reason"]
    assert reasons.get("not-avro") == 1 and reasons.get("unknown-schema") == 1 and reasons.get("truncated") == 1
    assert run["observations_refused_by_reason"] == {"unknown-country": 1, "unknown-hs-code": 1}
    store = ObjectStore()
    assert harmonized_rows(store, "WHO", "good_test")[0] == 5
    assert harmonized_rows(store, "WHO", "mixed_test")[0] == 2

    dlq = KafkaConsumer(DEAD_LETTER_TOPIC, **common_config(), auto_offset_reset="earliest", consumer_timeout_ms=3000)
    letters = [codec.decode(m.value).record for m in dlq]
    dlq.close()
    seen = {(l["reason"], l["event_id"] or l["detail"][:0]) for l in letters}
    for reason in ("not-avro", "unknown-schema", "truncated", "unknown-country", "unknown-hs-code"):
        assert any(r == reason for r, _ in seen), reason
    assert any(k.startswith("quarantine/observations/org=WHO/dataset=mixed_test/") for k in store.list("quarantine/"))


def _published_values(org: str):
    consumer = KafkaConsumer(datasets_topic(org), **common_config(), auto_offset_reset="earliest", consumer_timeout_ms=3000)
    values = [m.value for m in consumer if m.value[:2] == b"\xc3\x01" and codec.decode(m.value).name == "dataset_chunk"]
    consumer.close()
    return values


def _publish_unvalidated_release(tmp_path):
    """A release with 4 rows: 2 good, one unknown country, one unknown HS code, signed and complete."""
    produced = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    strings = ["WHO.MIXED_TEST", "FRA", "Atlantis", "3002", "7799", "2024", "KG", "t.csv"]
    chunk = {
        "event_id": "mixed-0", "org": "WHO", "dataset_id": "mixed_test", "release_id": "mixed-r1", "chunk_seq": 0,
        "chunk_count": 1, "produced_at": produced, "licence": None, "source_url": None, "strings": strings,
        "indicator": [0, 0, 0, 0], "ref_area": [1, 1, 2, 1], "counterpart_area": [-1] * 4, "commodity": [3, -1, -1, 4],
        "period": [5] * 4, "value": [1.0, 2.0, 3.0, 4.0], "missing_values": [], "unit": [6] * 4, "unit_mult": [0] * 4,
        "obs_status": [-1] * 4, "attributes": [], "source_file": [7] * 4, "source_line": [2, 3, 4, 5],
    }
    value = codec.encode("dataset_chunk", chunk)
    manifest = release_manifest.encode({
        "event_id": "mixed-m", "org": "WHO", "dataset_id": "mixed_test", "release_id": "mixed-r1", "chunk_count": 1,
        "observation_count": 4, "checksum": "sha256:" + hashlib.sha256(codec.body(value)).hexdigest(),
        "produced_at": produced})
    _send_signed("WHO", "mixed_test", [(value, "mixed-0"), (manifest, "mixed-m")])


def test_status_lists_a_release_waiting_in_staging_until_its_manifest_arrives(hub):
    from ioxhub.status import hub_status

    drain()
    release = f"wait-{uuid.uuid4().hex[:8]}"
    chunk, manifest = _release_events("WHO", "waiting_test", release)
    _send_signed("WHO", "waiting_test", [(chunk, f"{release}-0")])
    counts = ingest("datasets", idle_ms=1500)
    assert counts["events"]["staged"] == 1
    waiting = [r for r in hub_status()["staging"] if r["release"] == release]
    assert len(waiting) == 1
    row = waiting[0]
    assert (row["org"], row["dataset"], row["events"]) == ("WHO", "waiting_test", 1)
    assert row["bytes"] == len(chunk) and 0 <= row["age_hours"] < 1

    _send_signed("WHO", "waiting_test", [(manifest, f"{release}-m")])
    counts = ingest("datasets", idle_ms=1500)
    assert (counts["events"]["applied"], counts["events"]["staged"]) == (1, 0)   # the manifest completes it
    assert not [r for r in hub_status()["staging"] if r["release"] == release]
    assert harmonized_rows(ObjectStore(), "WHO", "waiting_test")[0] == 2


def _release_events(org: str, dataset: str, release: str) -> tuple[bytes, bytes]:
    """One chunk of two observations and its manifest, as a producer would send them."""
    produced = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    chunk = codec.encode("dataset_chunk", {
        "event_id": f"{release}-0", "org": org, "dataset_id": dataset, "release_id": release, "chunk_seq": 0,
        "chunk_count": 1, "produced_at": produced, "licence": None, "source_url": None,
        "strings": [f"{org}.WAITING_TEST", "FRA", "2024", "2025", "KG", "w.csv"],
        "indicator": [0, 0], "ref_area": [1, 1], "counterpart_area": [-1, -1], "commodity": [-1, -1],
        "period": [2, 3], "value": [1.0, 2.0], "missing_values": [], "unit": [4, 4], "unit_mult": [0, 0],
        "obs_status": [-1, -1], "attributes": [], "source_file": [5, 5], "source_line": [2, 3]})
    manifest = release_manifest.encode({
        "event_id": f"{release}-m", "org": org, "dataset_id": dataset, "release_id": release, "chunk_count": 1,
        "observation_count": 2, "checksum": "sha256:" + hashlib.sha256(codec.body(chunk)).hexdigest(),
        "produced_at": produced})
    return chunk, manifest


def _send_signed(org: str, dataset: str, events: list[tuple[bytes, str]]) -> None:
    producer = make_producer()
    signer = load_signer(org)
    topic = datasets_topic(org)
    for value, event_id in events:
        headers = signer.sign(value, codec.record_headers(org, codec.writer_of(value)[0].fingerprint, event_id), topic)
        producer.send(topic, key=f"{org}/{dataset}".encode(), value=value, headers=headers)
    producer.flush()
    producer.close()


MAPPING = {"indicator": "indicator", "ref_area": "ref_area", "period": "period", "value": "value", "unit": "unit"}


def _publish(tmp_path, hub, org: str, dataset_id: str, rows: list[str], name: str):
    return publish_dataset(org, dataset_id, [_small_csv(tmp_path / f"{name}.csv", rows)], MAPPING, settings=hub,
                           progress=False)


def test_a_release_over_several_years_is_one_snapshot(hub, tmp_path):
    drain()
    dataset = f"years_{uuid.uuid4().hex[:6]}"
    first = _publish(tmp_path, hub, "WCO", dataset, [f"WCO.YEARS,FRA,{y},1,KG" for y in range(2015, 2020)], "one")
    drain()
    table = hub_tables.observations("WCO", dataset)
    old = table.current_snapshot()
    old_files = {f.file_path for f in Tables().data_files(table)}
    assert len(old_files) == 5 and old.summary["ioxhub.release_id"] == first.release_id

    second = _publish(tmp_path, hub, "WCO", dataset, [f"WCO.YEARS,FRA,{y},2,KG" for y in range(2015, 2020)], "two")
    summary = ingest("datasets", idle_ms=1500)
    assert summary["releases_applied"] == 1 and summary["revisions_applied"] == 5
    table = hub_tables.observations("WCO", dataset)
    new = table.current_snapshot()
    assert new.parent_snapshot_id == old.snapshot_id                      # one snapshot for the five years
    assert new.summary["ioxhub.release_id"] == second.release_id and new.summary["ioxhub.revisions"] == "5"
    new_files = {f.file_path for f in Tables().data_files(table)}
    assert len(new_files) == 5 and not new_files & old_files               # every year's file replaced
    assert hub_tables.current_rows("WCO", dataset)["value"].to_pylist() == [2.0] * 5
    before = hub_tables.current_rows("WCO", dataset, snapshot_id=old.snapshot_id)
    assert before["value"].to_pylist() == [1.0] * 5                        # the previous snapshot sees none of it
    assert set(before["release_id"].to_pylist()) == {first.release_id}


def test_revisions_as_of_the_previous_snapshot_show_the_old_value(hub, tmp_path):
    drain()
    dataset = f"asof_{uuid.uuid4().hex[:6]}"
    _publish(tmp_path, hub, "WHO", dataset, ["WHO.ASOF,DEU,2020,1.5,KG", "WHO.ASOF,DEU,2021,2.5,KG"], "one")
    drain()
    previous = hub_tables.observations("WHO", dataset).current_snapshot().snapshot_id
    _publish(tmp_path, hub, "WHO", dataset, ["WHO.ASOF,DEU,2021,9.5,KG"], "two")
    drain()
    now = hub_tables.current_rows("WHO", dataset).sort_by("period")
    then = hub_tables.current_rows("WHO", dataset, snapshot_id=previous).sort_by("period")
    assert now["value"].to_pylist() == [1.5, 9.5] and then["value"].to_pylist() == [1.5, 2.5]
    assert hub_tables.history_rows("WHO", dataset).num_rows == 3        # both releases' rows, each once


def test_crash_between_the_observations_and_the_history_commit_then_rerun(hub, tmp_path, monkeypatch):
    drain()
    dataset = f"halfway_{uuid.uuid4().hex[:6]}"
    published = _publish(tmp_path, hub, "WTO", dataset, [f"WTO.HALF,BRA,{y},{y},KG" for y in range(2018, 2023)]
                         + ["WTO.HALF,BRA,2018,2018,KG"], "half")
    commit = Tables.commit_files

    def crash_before_history(self, table, **kwargs):
        if table.name()[-2] == HISTORY and kwargs.get("add"):
            raise StorageError("injected: the hub bucket went away between the two commits")
        return commit(self, table, **kwargs)

    monkeypatch.setattr(Tables, "commit_files", crash_before_history)
    with pytest.raises(StorageError):
        ingest("datasets", idle_ms=1500)
    monkeypatch.setattr(Tables, "commit_files", commit)
    halfway = hub_tables.current_rows("WTO", dataset)
    assert halfway.num_rows == 5 and hub_tables.history_rows("WTO", dataset) is None
    snapshots = hub_tables.snapshot_ids(hub_tables.observations("WTO", dataset))

    rerun = ingest("datasets", idle_ms=1500)
    assert rerun["releases_applied"] == 1 and rerun["events"]["applied"] == rerun["events"]["consumed"] > 0
    assert rerun["observations_harmonized"] == 5 and rerun["observations_duplicate"] == 1
    assert hub_tables.snapshot_ids(hub_tables.observations("WTO", dataset)) == snapshots     # not applied twice
    assert hub_tables.current_rows("WTO", dataset).sort_by("period").equals(halfway.sort_by("period"))
    history = hub_tables.history_rows("WTO", dataset, published.release_id)
    assert history.num_rows == 5 and len(set(history["period"].to_pylist())) == 5           # no row doubled
    marker = release_applied(Catalog(ObjectStore()), "WTO", dataset, published.release_id)
    assert marker["harmonized"] == 5 and marker["chunks"] == published.chunks
    again = ingest("datasets", idle_ms=1500)
    assert again["events"]["consumed"] == 0                                # counted once: the offsets are committed
