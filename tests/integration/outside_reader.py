"""An outside engine reading the hub's tables: pyiceberg and DuckDB only, no ioxhub code.

Run as a script by tests/integration/test_outside_engines.py in a fresh interpreter:
`python outside_reader.py CONFIG_JSON OUT_DIR`. CONFIG_JSON holds what an engine is given (docs/tables.md):
the catalog's SQLAlchemy URI, the warehouse, the S3 endpoint, keys and region, and the tables to read.
It lists the namespaces and tables, scans each table asked for (current snapshot, and its first snapshot:
time travel) into Arrow, counts the rows per ref_area in DuckDB, writes each scan as Parquet into OUT_DIR and
prints a JSON summary. It fails if any ioxhub module was imported.
"""
import json
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog


def per_ref_area(table) -> list:
    con = duckdb.connect()
    con.register("t", table)
    return con.execute("SELECT ref_area, count(*) FROM t GROUP BY ref_area ORDER BY ref_area").fetchall()


def main() -> None:
    config, out = json.loads(sys.argv[1]), Path(sys.argv[2])
    catalog = SqlCatalog("hub", uri=config["uri"], warehouse=config["warehouse"], **{
        "s3.endpoint": config["endpoint"], "s3.access-key-id": config["access_key"],
        "s3.secret-access-key": config["secret_key"], "s3.region": config["region"], "s3.path-style-access": "true"})
    namespaces = sorted(".".join(n) for n in catalog.list_namespaces())
    summary = {"namespaces": namespaces,
               "tables": {ns: sorted(t[-1] for t in catalog.list_tables(ns)) for ns in namespaces}, "read": {}}
    for identifier in config["tables"]:
        table = catalog.load_table(identifier)
        snapshots = sorted(table.snapshots(), key=lambda s: s.sequence_number)
        scans = {"current": table.scan().to_arrow(),
                 "first": table.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow()}
        read = {"name": table.properties.get("ioxhub.name"), "first_snapshot_id": snapshots[0].snapshot_id,
                "snapshots": len(snapshots)}
        for which, arrow in scans.items():
            path = out / f"{identifier.replace('.', '-')}-{which}.parquet"
            pq.write_table(arrow, path)
            read[which] = {"rows": arrow.num_rows, "per_ref_area": per_ref_area(arrow), "file": str(path)}
        summary["read"][identifier] = read
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("ioxhub", "consumers", "producers", "app"))
    if loaded:
        raise SystemExit(f"the outside reader imported hub modules: {loaded}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
