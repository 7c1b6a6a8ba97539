"""The hub's Apache Iceberg tables: the one catalog of harmonized, history, instrument and curated data.

`Tables(settings)` opens the catalog (pyiceberg's SQL catalog: SQLite in the data directory locally,
Postgres in compose; table metadata and data in the hub bucket, under each table's zone) and gives
`observations(org, dataset_id)`, `history(org, dataset_id)`, `instruments(name)` and `curated(name)`
tables (created on first use), `commit_files` (one snapshot replacing data files, with its summary and
the table's properties in the same commit), `snapshots`, `resolve_as_of` and `data_files` (the files a
scan of a snapshot reads, after partition and statistics pruning). Layout and rationale: docs/tables.md.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
# pyiceberg's schema check of a file (each commit) imports rich on its first use: 0.1 s inside a process's
# first commit. Imported with this module instead, so it is a start-up cost like pyiceberg's own imports.
import rich.console  # noqa: F401
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NamespaceAlreadyExistsError, NoSuchTableError, ResolveError, TableAlreadyExistsError
from pyiceberg.expressions import AlwaysTrue, BooleanExpression
from pyiceberg.io.pyarrow import (_check_pyarrow_schema_compatible, _pyarrow_to_schema_without_ids,
                                  compute_statistics_plan, data_file_statistics_from_parquet_metadata,
                                  parquet_file_to_data_file, parquet_path_to_id_mapping)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import assign_fresh_schema_ids, promote
from pyiceberg.table import Table
from pyiceberg.table.name_mapping import NameMapping, create_mapping_from_schema
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.transforms import IdentityTransform, YearTransform

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings
from ioxhub.storage import StorageError

CATALOG_NAME = "hub"
# Namespaces: harmonized observations and instrument tables, the history of applied releases, curated datasets.
HARMONIZED, HISTORY, CURATED = "harmonized", "observation_history", "curated"
# Where each namespace's tables live in the bucket (the zones of the storage roles).
ZONE_OF = {HARMONIZED: "harmonized", HISTORY: "harmonized", CURATED: "curated"}
ENTRY = "ioxhub.entry"              # table property: the dataset's catalog entry (JSON)
NAME = "ioxhub.name"                # table property: the dataset's name as the hub spells it
RELEASE = "ioxhub.release_id"       # snapshot summary: the release a commit applied
NAME_MAPPING = "schema.name-mapping.default"
PARTITION_FIELD_START = 1000         # Iceberg's first partition field id
INSTRUMENTS_PREFIX = "instruments."


class TableError(IoxhubError):
    """A table, snapshot or as-of the caller asked for does not exist."""


class TableAccessDenied(TableError):
    """The S3 identity may not read the table's metadata (e.g. an analyst and a harmonized table)."""


def table_name(org: str, dataset_id: str) -> str:
    """The Iceberg table name of a harmonized dataset: lower case, `[a-z0-9_]` (as Trino and Spark
    spell identifiers unquoted); the org (no underscore in it) and the id are joined by `__`."""
    return f"{org.lower()}__{re.sub(r'[^a-z0-9_]', '_', dataset_id.lower())}"


def identifier_of(name: str) -> tuple[str, str]:
    """The (namespace, table) of a dataset name: `ORG.dataset_id` (harmonized observations),
    `instruments.<table>` (the instrument tables, also harmonized) or a curated dataset's name."""
    if name.startswith(INSTRUMENTS_PREFIX):
        return HARMONIZED, name[len(INSTRUMENTS_PREFIX):]
    match = re.fullmatch(r"([A-Z][A-Z0-9]{1,15})\.(.+)", name)
    if match:
        return HARMONIZED, table_name(match.group(1), match.group(2))
    return CURATED, re.sub(r"[^a-z0-9_]", "_", name.lower())


def catalog_properties(settings: Settings) -> dict[str, str]:
    """The pyiceberg catalog properties of the hub (also what an outside engine needs, docs/tables.md)."""
    uri = settings.iceberg_catalog_uri or f"sqlite:///{(settings.data_dir / 'iceberg' / 'catalog.db').resolve()}"
    scheme = "https" if settings.s3_secure else "http"
    return {
        "uri": uri,
        "warehouse": f"s3://{settings.bucket}/warehouse",
        "s3.endpoint": f"{scheme}://{settings.s3_endpoint}",
        "s3.access-key-id": settings.s3_access_key or "",
        "s3.secret-access-key": settings.s3_secret_key or "",
        "s3.region": settings.s3_region,
        "s3.path-style-access": "true",
    }


def open_catalog(settings: Settings) -> SqlCatalog:
    uri = catalog_properties(settings)["uri"]
    if uri.startswith("sqlite:///"):
        from pathlib import Path
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, **catalog_properties(settings))


@functools.lru_cache(maxsize=8)
def _tables(settings: Settings) -> "Tables":
    return Tables(settings)


def tables_for(settings: Settings) -> "Tables":
    """One `Tables` per settings in a process (a catalog holds a database connection pool)."""
    return _tables(settings)


def iceberg_time(snapshot: Snapshot) -> str:
    return dt.datetime.fromtimestamp(snapshot.timestamp_ms / 1000, dt.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Written:
    """A Parquet file the caller uploaded to `path`, with the footer and size it wrote: committed without
    reading the object back (`Tables.commit_files`)."""
    path: str
    metadata: pq.FileMetaData
    size: int


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a table as the hub shows it: `number` is the table's sequence number (1, 2, ...)."""
    number: int
    snapshot_id: int
    created_at: str
    operation: str
    summary: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"snapshot": self.number, "snapshot_id": self.snapshot_id, "created_at": self.created_at,
                "operation": self.operation, **{k.removeprefix("ioxhub."): v for k, v in self.summary.items()
                                                 if k.startswith("ioxhub.")}}


class Tables:
    """The hub's Iceberg catalog."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or get_settings()
        self.catalog = open_catalog(self.settings)

    # --- identifiers and creation ------------------------------------------------------------------
    def location(self, namespace: str, name: str) -> str:
        return f"s3://{self.settings.bucket}/{ZONE_OF[namespace]}/tables/{namespace}/{name}"

    def load(self, namespace: str, name: str) -> Table | None:
        """The table, None when there is none; TableAccessDenied when these S3 keys may not read it,
        StorageError when its metadata cannot be read (one line each)."""
        try:
            return self.catalog.load_table((namespace, name))
        except NoSuchTableError:
            return None
        except OSError as exc:
            if "ACCESS_DENIED" in str(exc) or "AccessDenied" in str(exc):
                raise TableAccessDenied(f"table {namespace}.{name}: these S3 keys may not read it (AccessDenied)") from None
            raise StorageError(f"table {namespace}.{name}: its metadata cannot be read: {str(exc).splitlines()[0]}") from None

    def create(self, namespace: str, name: str, schema: pa.Schema, partition_by: Iterable[tuple[str, str]] = (),
               properties: dict[str, str] | None = None) -> Table:
        """Create (or load, when another writer was first) a table: `partition_by` = (column, "identity" |
        "year") pairs. Its Parquet files are written without field ids, so it carries a name mapping.
        An existing table is loaded first: pyiceberg writes a metadata file before it finds the name taken."""
        if (existing := self.load(namespace, name)) is not None:
            return existing
        try:
            self.catalog.create_namespace(namespace)
        except NamespaceAlreadyExistsError:
            pass
        # One metadata file: the schema given ids here (as pyiceberg would), so that the partition spec and
        # the name mapping can name them in the create itself.
        iceberg_schema = assign_fresh_schema_ids(SqlCatalog._convert_schema_if_needed(schema))
        spec = PartitionSpec(*[
            PartitionField(source_id=iceberg_schema.find_field(column).field_id, field_id=PARTITION_FIELD_START + i,
                           transform=IdentityTransform() if transform == "identity" else YearTransform(),
                           name=column if transform == "identity" else f"{column}_year")
            for i, (column, transform) in enumerate(partition_by)])
        try:
            table = self.catalog.create_table(
                (namespace, name), schema=iceberg_schema, location=self.location(namespace, name), partition_spec=spec,
                properties={**(properties or {}), "format-version": "2",
                            NAME_MAPPING: create_mapping_from_schema(iceberg_schema).model_dump_json()})
        except TableAlreadyExistsError:
            return self.catalog.load_table((namespace, name))
        return table

    def tables(self, namespace: str) -> list[Table]:
        """The tables of `namespace` these S3 keys may read."""
        try:
            identifiers = self.catalog.list_tables(namespace)
        except Exception:       # no namespace yet: no table
            return []
        found = []
        for ident in sorted(identifiers):
            try:
                table = self.load(*ident)
            except TableAccessDenied:       # not this identity's zone: not listed
                continue
            if table is not None:
                found.append(table)
        return found

    # --- commits -----------------------------------------------------------------------------------
    def commit_files(self, table: Table, *, add: Iterable[str | Written] = (), remove: Iterable[DataFile] = (),
                     summary: dict[str, str] | None = None, properties: dict[str, str] | None = None,
                     schema: pa.Schema | None = None) -> Snapshot:
        """One commit: the Parquet objects `add` (s3:// paths, already written) replace the data files
        `remove`, with `summary` in the new snapshot's summary and `properties` set on the table (a `Written`
        is described from its own footer, a path by reading the object's). With
        `schema`, the table's schema first becomes it (columns added or dropped by name). All or nothing."""
        with table.transaction() as tx:
            if schema is not None:
                _evolve(tx, table, schema)
            if properties:
                tx.set_properties(properties)
            checked: set[pa.Schema] = set()
            data_files = [_written_data_file(tx.table_metadata, path, checked) if isinstance(path, Written)
                          else parquet_file_to_data_file(table.io, tx.table_metadata, path) for path in add]
            remove = list(remove)
            update = tx.update_snapshot(snapshot_properties=summary or {})
            # Nothing removed: a fast append (it reads none of the table's manifests; an overwrite reads them all).
            with (update.overwrite() if remove else update.fast_append()) as producer:
                for data_file in remove:
                    producer.delete_data_file(data_file)
                for data_file in data_files:
                    producer.append_data_file(data_file)
        return table.current_snapshot()

    # --- reading -----------------------------------------------------------------------------------
    def snapshots(self, table: Table) -> list[SnapshotInfo]:
        """The table's snapshots still kept, oldest first."""
        return [SnapshotInfo(s.sequence_number or 0, s.snapshot_id, iceberg_time(s),
                             str(s.summary.operation.value) if s.summary else "", dict(s.summary.additional_properties) if s.summary else {})
                for s in sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)]

    def resolve_as_of(self, table: Table, as_of: str | None) -> Snapshot | None:
        """The snapshot `as_of` names: a snapshot id, a sequence number (`ioxhub datasets` shows both) or
        an ISO date/time (the last snapshot made at or before it; a date means its end, a time to the
        second the end of that second, as snapshot times are shown; UTC without a zone). None as_of: the
        current snapshot (None for a table without data yet)."""
        if as_of is None:
            return table.current_snapshot()
        kept = sorted(table.snapshots(), key=lambda s: s.sequence_number or 0)
        name = ".".join(table.name()[1:])
        if as_of.isascii() and as_of.isdigit():
            wanted = int(as_of)
            for snapshot in kept:
                if snapshot.snapshot_id == wanted:
                    return snapshot
            for snapshot in kept:
                if snapshot.sequence_number == wanted:
                    return snapshot
            numbers = f"{kept[0].sequence_number}..{kept[-1].sequence_number}" if kept else "none"
            raise TableError(f"{name} has no snapshot {as_of} (snapshots kept: {numbers}; or give a snapshot id)")
        try:
            when = dt.datetime.fromisoformat(as_of)
        except ValueError:
            raise TableError(f"as of {as_of!r}: expected a snapshot number, a snapshot id or an ISO date/time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc) if len(as_of) > 10 else \
                (when + dt.timedelta(days=1) - dt.timedelta(microseconds=1)).replace(tzinfo=dt.timezone.utc)
        if len(as_of) > 10 and "." not in as_of:    # a time to the second, as snapshot times are shown: its end
            when += dt.timedelta(seconds=1) - dt.timedelta(microseconds=1)
        ms = when.timestamp() * 1000
        before = [s for s in kept if s.timestamp_ms <= ms]
        if not before:
            first = iceberg_time(kept[0]) if kept else "none"
            raise TableError(f"{name} has no snapshot as of {as_of} (first kept: {first})")
        return before[-1]

    def data_files(self, table: Table, snapshot: Snapshot | None = None,
                   row_filter: BooleanExpression = AlwaysTrue()) -> list[DataFile]:
        """The data files a scan of `snapshot` (default: current) reads for `row_filter`, after Iceberg's
        partition and column-statistics pruning."""
        snapshot = snapshot or table.current_snapshot()
        if snapshot is None:
            return []
        scan = table.scan(row_filter=row_filter, snapshot_id=snapshot.snapshot_id)
        return [task.file for task in scan.plan_files()]


def object_key(path: str, bucket: str) -> str:
    """The bucket key of a table's `s3://bucket/key` file path."""
    prefix = f"s3://{bucket}/"
    if not path.startswith(prefix):
        raise TableError(f"{path} is not in bucket {bucket}")
    return path[len(prefix):]


def entry_of(table: Table) -> dict[str, Any]:
    """The catalog entry kept in the table's properties ({} when none)."""
    text = table.properties.get(ENTRY)
    return json.loads(text) if text else {}


def _written_data_file(metadata, written: Written, checked: set[pa.Schema]) -> DataFile:
    """`parquet_file_to_data_file` on a footer already at hand (pyiceberg's steps, without the two reads;
    each file schema checked once per commit: `checked`)."""
    schema = metadata.schema()
    arrow_schema = written.metadata.schema.to_arrow_schema()
    if arrow_schema not in checked:
        _check_pyarrow_schema_compatible(schema, arrow_schema, format_version=metadata.format_version)
        checked.add(arrow_schema)
    statistics = data_file_statistics_from_parquet_metadata(
        parquet_metadata=written.metadata, stats_columns=compute_statistics_plan(schema, metadata.properties),
        parquet_column_mapping=parquet_path_to_id_mapping(schema))
    return DataFile.from_args(content=DataFileContent.DATA, file_path=written.path, file_format=FileFormat.PARQUET,
                              partition=statistics.partition(metadata.spec(), schema), file_size_in_bytes=written.size,
                              sort_order_id=None, spec_id=metadata.default_spec_id, equality_ids=None,
                              key_metadata=None, **statistics.to_serialized_dict())


def _evolve(tx, table: Table, schema: pa.Schema) -> None:
    """Make the table's schema `schema`'s columns: new ones added, missing ones dropped (by name), and a
    column whose type changed beyond an Iceberg promotion (e.g. string -> double) dropped and added anew
    (a new field id: older snapshots keep reading the old column)."""
    current = {f.name for f in table.schema().fields}      # top-level columns (column_names lists nested ones)
    wanted = set(schema.names)
    incoming = _pyarrow_to_schema_without_ids(schema)
    retyped = []
    for field in incoming.fields:
        old = table.schema().find_field(field.name).field_type if field.name in current else None
        if old is not None and old.is_primitive and field.field_type.is_primitive and old != field.field_type:
            try:
                promote(old, field.field_type)
            except ResolveError:
                retyped.append(field)
    if current == wanted and not retyped:
        return
    with tx.update_schema() as update:
        for field in retyped:
            update.delete_column(field.name)
            update.add_column(field.name, field.field_type)
        update.union_by_name(pa.schema([f for f in schema if f.name not in {r.name for r in retyped}]))
        for gone in sorted(current - wanted):
            update.delete_column(gone)
    tx.set_properties({NAME_MAPPING: _mapping_keeping_old_names(table, tx.table_metadata.schema()).model_dump_json()})


def _mapping_keeping_old_names(table: Table, schema) -> NameMapping:
    """The name mapping of `schema` plus the names of dropped columns: our files carry no field ids, so an
    older snapshot's files are read through this mapping too (a retyped column's name maps to its new id:
    its values in older files read as missing)."""
    mapping = create_mapping_from_schema(schema)
    names = {n for field in mapping.root for n in field.names}
    old = table.name_mapping()
    kept = [f for f in (old.root if old else []) if not names & set(f.names)]
    return NameMapping(mapping.root + kept)
