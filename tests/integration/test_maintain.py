"""`ioxhub maintain` on the real S3 server and the session's Iceberg catalog, on tables of this test only
(`only=`; the catalog is shared with the other tests):

- snapshots older than the retention are expired except the last IOXHUB_SNAPSHOT_KEEP; an as-of naming an
  expired one is refused with a clear message; every kept snapshot still reads whole;
- compaction leaves the rows identical and one file per partition, in one commit;
- an unreferenced file older than the grace is removed, a fresh one kept, a referenced one never;
- the harmonized tables wait for the datasets ingest lease: held by another run, the table is reported;
- the maintain_tables DAG runs the same function through Airflow (`dag.test()`), the CLI prints its JSON.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from consumers.evidence import write_curated
from ioxhub.ingest.lease import Lease
from ioxhub.maintain import maintain, referenced_files
from ioxhub.storage import ObjectStore
from ioxhub.table_files import live_files, write_data_file
from ioxhub.tables import CURATED, HARMONIZED, TableError, object_key, tables_for

pytestmark = pytest.mark.integration
IOXHUB = str(Path(sys.executable).parent / "ioxhub")


def curated_probe(settings, versions: int) -> tuple[str, list[int]]:
    """A curated table of this test written `versions` times (rows 0..v-1 in version v); its snapshot ids."""
    name = f"maintain_probe_{uuid.uuid4().hex[:8]}"
    store, tables = ObjectStore(settings), tables_for(settings)
    ids = []
    for version in range(1, versions + 1):
        rows = pa.table({"n": pa.array(range(version), pa.int64()), "label": [f"v{version}"] * version})
        ids.append(write_curated(store, tables, name, rows, {"kind": "curated", "rows": version},
                                 {"ioxhub.run_id": f"probe-{version}"})["snapshot_id"])
    return name, ids


def test_expiry_keeps_the_last_snapshots_and_refuses_an_as_of_of_an_expired_one(provisioned_settings):
    name, ids = curated_probe(provisioned_settings, 4)
    settings = dataclasses.replace(provisioned_settings, snapshot_retention_days=0, snapshot_keep=2)
    summary = maintain(settings, only=[f"{CURATED}.{name}"], run_id="test-expire")
    counts = summary["tables"][0]
    assert (counts["snapshots_expired"], counts["snapshots_kept"], counts["problem"]) == (2, 2, None)

    tables = tables_for(settings)
    table = tables.load(CURATED, name)
    assert [s.snapshot_id for s in tables.snapshots(table)] == ids[2:]
    with pytest.raises(TableError, match=rf"{name} has no snapshot 1 \(snapshots kept: 3..4"):
        tables.resolve_as_of(table, "1")
    with pytest.raises(TableError, match="has no snapshot"):
        tables.resolve_as_of(table, str(ids[0]))
    for number, snapshot_id in ((3, ids[2]), (4, ids[3])):      # the kept snapshots read whole
        assert table.scan(snapshot_id=snapshot_id).to_arrow()["n"].to_pylist() == list(range(number))
    # the expired snapshots' data files are unreferenced now, but younger than the 24 h grace: kept
    assert counts["orphans_removed"] == 0 and counts["orphans_fresh"] >= 2


def test_compaction_rewrites_each_partition_as_one_file_with_the_same_rows(provisioned_settings):
    store, tables = ObjectStore(provisioned_settings), tables_for(provisioned_settings)
    name = f"mt__compact_{uuid.uuid4().hex[:8]}"
    schema = pa.schema([("year", pa.int32()), ("ref_area", pa.string()), ("value", pa.float64())])
    table = tables.create(HARMONIZED, name, schema, partition_by=[("year", "identity")])
    batches = [pa.table({"year": pa.array([year] * 3, pa.int32()), "ref_area": [f"{c}{i}" for i in range(3)],
                         "value": [float(year + i) for i in range(3)]}, schema=schema)
               for year, c in ((2020, "A"), (2020, "B"), (2021, "C"), (2021, "D"), (2021, "E"), (2022, "F"))]
    for batch in batches[:3], batches[3:]:               # two commits: several files per partition
        paths = [write_data_file(store, table, b, tag="probe")[0] for b in batch]
        tables.commit_files(table, add=paths, summary={"ioxhub.run_id": "probe"})
        table = tables.load(HARMONIZED, name)
    before = table.scan().to_arrow().sort_by([("ref_area", "ascending")])

    counts = maintain(provisioned_settings, only=[f"{HARMONIZED}.{name}"], run_id="test-compact")["tables"][0]
    assert (counts["partitions_compacted"], counts["files_compacted"], counts["problem"]) == (2, 5, None)
    table = tables.load(HARMONIZED, name)
    after = table.scan().to_arrow().sort_by([("ref_area", "ascending")])
    assert after.equals(before)
    files = live_files(table)
    assert sorted(f.partition[0] for f in files) == [2020, 2021, 2022]              # one file per partition
    assert table.current_snapshot().summary["ioxhub.maintenance"] == "compact"
    again = maintain(provisioned_settings, only=[f"{HARMONIZED}.{name}"], run_id="test-compact-2")["tables"][0]
    assert again["partitions_compacted"] == 0


def test_orphans_older_than_the_grace_are_removed_fresh_and_referenced_ones_kept(provisioned_settings):
    name, ids = curated_probe(provisioned_settings, 2)
    store, tables = ObjectStore(provisioned_settings), tables_for(provisioned_settings)
    table = tables.load(CURATED, name)
    old, _ = write_data_file(store, table, pa.table({"n": [1]}), tag="crashed-writer")
    time.sleep(3)
    fresh, _ = write_data_file(store, table, pa.table({"n": [2]}), tag="uploading-writer")
    referenced = referenced_files(table)
    settings = dataclasses.replace(provisioned_settings, orphan_grace_hours=2 / 3600)    # 2 s
    counts = maintain(settings, only=[f"{CURATED}.{name}"], run_id="test-orphans")["tables"][0]

    assert counts["orphans_removed"] == 1 and counts["orphans_fresh"] == 1
    assert not store.exists(object_key(old, store.bucket)) and store.exists(object_key(fresh, store.bucket))
    assert all(store.exists(object_key(path, store.bucket)) for path in referenced)
    table = tables.load(CURATED, name)
    for number, snapshot_id in enumerate(ids, 1):            # both snapshots still read whole
        assert table.scan(snapshot_id=snapshot_id).to_arrow().num_rows == number


def test_harmonized_tables_wait_for_the_datasets_ingest_lease(provisioned_settings):
    store, tables = ObjectStore(provisioned_settings), tables_for(provisioned_settings)
    name = f"mt__lease_{uuid.uuid4().hex[:8]}"
    tables.create(HARMONIZED, name, pa.schema([("n", pa.int64())]))
    lease = Lease(store, "datasets", "test: an ingest run", 60)
    assert lease.acquire()
    try:
        settings = dataclasses.replace(provisioned_settings, lock_wait_seconds=0.5)
        summary = maintain(settings, only=[f"{HARMONIZED}.{name}"], run_id="test-lease")
    finally:
        lease.release()
    assert summary["problems"] == 1
    assert "datasets ingest lease" in summary["tables"][0]["problem"] and "test: an ingest run" in summary["tables"][0]["problem"]


def test_the_dag_and_the_cli_run_maintain(provisioned_settings, run_dag):
    name, _ = curated_probe(provisioned_settings, 1)
    state, tasks, recorded = run_dag("maintain_tables")
    assert (state, tasks) == ("success", {"maintain": "success"})
    assert f"{CURATED}.{name}" in {t["table"] for t in recorded["tables"]}

    env = {**os.environ}
    done = subprocess.run([IOXHUB, "maintain", "--table", f"{CURATED}.{name}", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert [t["table"] for t in printed["tables"]] == [f"{CURATED}.{name}"] and printed["problems"] == 0
    wrong = subprocess.run([IOXHUB, "maintain", "--table", "curated.no_such_table"], env=env,
                           capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert wrong.returncode == 2 and "no table curated.no_such_table" in wrong.stderr
    assert "Traceback" not in wrong.stderr and len(wrong.stderr.strip().splitlines()) == 1
