"""Outside engines read the hub's tables: after the sample feeds are ingested and derived in the session
stack, a fresh interpreter running tests/integration/outside_reader.py (pyiceberg's SqlCatalog built by hand
from the catalog path, the S3 endpoint and the web server's read-only keys; DuckDB over the Arrow scans; no
ioxhub import) lists the namespaces and tables, reads a harmonized and a curated table and an older snapshot
of each; what it reads is what `ioxhub pull` gives for the same dataset and snapshot.

With a PostgreSQL server installed, the compose init script (infra/compose/postgres/iceberg.sh) is also run
on a throwaway cluster: the hub's role registers the tables there, and the read-only role reads them.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumers.access import pull_table
from ioxhub.catalog import Catalog
from ioxhub.stack import process
from ioxhub.storage import ObjectStore
from ioxhub.tables import catalog_properties
from sample_hub import feed_samples

pytestmark = pytest.mark.integration
PANEL = "indicator_panel_annual"
READER = Path(__file__).with_name("outside_reader.py")
INIT_SCRIPT = Path(__file__).parents[2] / "infra" / "compose" / "postgres" / "iceberg.sh"


@pytest.fixture(scope="module")
def data(provisioned_settings, tmp_path_factory):
    """The sample feeds ingested, the evidence derived twice (two snapshots of each curated table)."""
    return feed_samples(provisioned_settings, tmp_path_factory.mktemp("samples"), derivations=2)


@pytest.fixture(scope="module")
def chosen(data) -> dict[str, dict]:
    """The harmonized dataset with the most rows and the annual panel: their catalog entries by name."""
    entries = Catalog(ObjectStore(data)).datasets()
    harmonized = max((e for e in entries if e.get("kind") == "harmonized" and e.get("dataset_id")
                      and "ref_area" in str(e.get("columns"))), key=lambda e: e.get("rows", 0))
    return {e["name"]: e for e in entries if e["name"] in (harmonized["name"], PANEL)}


def web_keys(settings) -> tuple[str, str]:
    keys = json.loads(Path(settings.local_secrets_file).read_text())
    return keys["web_access_key"], keys["web_secret_key"]


def read_outside(settings, uri: str, tables: list[str], out: Path) -> dict:
    """Run the outside reader in a fresh, isolated interpreter (-I: no project directory on its path)."""
    access, secret = web_keys(settings)
    config = {"uri": uri, "warehouse": f"s3://{settings.bucket}/warehouse",
              "endpoint": f"http://{settings.s3_endpoint}", "access_key": access, "secret_key": secret,
              "region": settings.s3_region, "tables": tables}
    out.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-I", str(READER), json.dumps(config), str(out)], capture_output=True,
                          text=True, timeout=300, env={"PATH": os.environ.get("PATH", ""), "HOME": str(out)})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def normal(table: pa.Table) -> list[tuple]:
    """The rows as sorted tuples of text, whatever the engine's physical types (dictionary strings,
    ms or us timestamps, large strings)."""
    columns = []
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_dictionary(field.type):
            column = column.cast(field.type.value_type)
        if pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us", field.type.tz))
        columns.append([None if v is None else str(v) for v in column.to_pylist()])
    return sorted(zip(*columns), key=lambda row: tuple("" if v is None else v for v in row))


def counts(table: pa.Table) -> list[list]:
    grouped = table.group_by("ref_area").aggregate([("ref_area", "count")]).sort_by("ref_area")
    return [[a, n] for a, n in zip(grouped["ref_area"].to_pylist(), grouped["ref_area_count"].to_pylist())]


def check_reads(settings, summary: dict, chosen: dict[str, dict]) -> None:
    """What the outside reader read is what `ioxhub pull` gives, now and as of the first snapshot."""
    for name, entry in chosen.items():
        read = summary["read"][entry["table"]]
        assert read["name"] == name and read["snapshots"] == len(entry["snapshots"])
        for which, as_of in (("current", None), ("first", str(read["first_snapshot_id"]))):
            pulled = pull_table(name, as_of=as_of, settings=settings)
            outside = pq.read_table(read[which]["file"])
            assert read[which]["rows"] == outside.num_rows == pulled.table.num_rows > 0, (name, which)
            assert read[which]["per_ref_area"] == counts(pulled.table), (name, which)      # DuckDB's counts
            assert outside.column_names == pulled.table.column_names, (name, which)
            assert normal(outside) == normal(pulled.table), (name, which)


def test_pyiceberg_and_duckdb_read_the_tables_without_the_hub(data, chosen, tmp_path):
    uri = catalog_properties(data)["uri"]
    assert uri == f"sqlite:///{(data.data_dir / 'iceberg' / 'catalog.db').resolve()}"      # as docs/tables.md says
    summary = read_outside(data, uri, [e["table"] for e in chosen.values()], tmp_path)
    assert {"harmonized", "curated", "observation_history"} <= set(summary["namespaces"])
    for entry in chosen.values():
        namespace, table = entry["table"].split(".")
        assert table in summary["tables"][namespace]
    assert {"instrument_versions", "adoptions"} <= set(summary["tables"]["harmonized"])
    assert len(chosen) == 2 and summary["read"][chosen[PANEL]["table"]]["snapshots"] >= 2     # derived twice
    check_reads(data, summary, chosen)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster (passwords required over TCP) with the compose init script applied;
    skipped without a PostgreSQL server to run as user postgres."""
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))), None)
    if not (found and shutil.which("psql") and shutil.which("runuser")) or os.geteuid() != 0 \
            or subprocess.run(["id", "postgres"], capture_output=True).returncode != 0:
        pytest.skip("no PostgreSQL server (apt-get install postgresql) to run as user postgres here")
    bindir = Path(found).parent
    root = Path(tempfile.mkdtemp(prefix="ioxhub-pg-"))      # outside pytest's tmp: user postgres must reach it
    root.chmod(0o777)
    pgdata, port = root / "data", process.free_ports(1)[0]
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(pgdata), "-U", "airflow", "--auth-local=trust",
                        "--auth-host=scram-sha-256"], check=True, capture_output=True, timeout=120)
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(pgdata), "-w", "-o", f"-p {port} -k {root} -h 127.0.0.1",
                        "-l", str(root / "log"), "start"], check=True, capture_output=True, timeout=60)
        env = {"PATH": os.environ["PATH"], "POSTGRES_USER": "airflow", "POSTGRES_DB": "postgres",
               "PGHOST": str(root), "PGPORT": str(port), "ICEBERG_DB_PASSWORD": "owner0pw",
               "ICEBERG_READER_PASSWORD": "reader0pw"}
        done = subprocess.run(["sh", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        yield port
    finally:
        subprocess.run([*as_postgres, str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "stop"], capture_output=True,
                       timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_the_compose_catalog_on_postgres_is_read_by_its_read_only_role(data, chosen, postgres, tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    owner_uri = f"postgresql+psycopg2://iceberg:owner0pw@127.0.0.1:{postgres}/iceberg"
    reader_uri = f"postgresql+psycopg2://iceberg_reader:reader0pw@127.0.0.1:{postgres}/iceberg"
    hub = SqlCatalog("hub", **{**catalog_properties(data), "uri": owner_uri})
    local = Catalog(ObjectStore(data))
    for entry in chosen.values():            # the hub's role registers the tables' current metadata
        namespace, name = entry["table"].split(".")
        if namespace not in {n[0] for n in hub.list_namespaces()}:
            hub.create_namespace(namespace)
        hub.register_table((namespace, name), local.table_of(entry["name"]).metadata_location)
    summary = read_outside(data, reader_uri, [e["table"] for e in chosen.values()], tmp_path)
    check_reads(data, summary, chosen)
    reader = SqlCatalog("hub", **{**catalog_properties(data), "uri": reader_uri})
    with pytest.raises(Exception, match="permission denied"):       # read-only: it cannot change the catalog
        reader.create_namespace("not_allowed")
    wrong = f"postgresql+psycopg2://iceberg_reader:wrong@127.0.0.1:{postgres}/iceberg"
    with pytest.raises(Exception, match="password authentication failed"):
        SqlCatalog("hub", **{**catalog_properties(data), "uri": wrong})
