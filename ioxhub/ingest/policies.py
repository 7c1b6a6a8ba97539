"""Policy update events -> the instrument tables, Iceberg tables of namespace harmonized (`PolicyIngest`).

    instruments.instrument_versions   every policy update ever accepted (full history)
    instruments.adoptions             per instrument and member: first adoption date
    instruments.instruments           per instrument: its latest state

Each run that applies something replaces each small table's content in one commit (an event id already
present is a duplicate); `read_instruments(settings, table)` reads one back (the derivations use it).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ioxhub.catalog import Catalog
from ioxhub.contracts import codec, content
from ioxhub.contracts.registry import Registry, get_registry
from ioxhub.harmonize.countries import harmonize_country
from ioxhub.ingest.quarantine import DeadLetters, SourceRecord
from ioxhub.names import InvalidName, check_id, check_org
from ioxhub.settings import Settings
from ioxhub.storage import ObjectStore
from ioxhub.table_files import METADATA_CLEANUP, iceberg_ready, read_rows, replace_content
from ioxhub.tables import ENTRY, HARMONIZED, INSTRUMENTS_PREFIX, NAME, tables_for

POLICY = "policy_update"
TABLES = ("instrument_versions", "adoptions", "instruments")

VERSIONS_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("instrument_id", pa.string()), ("org", pa.string()),
    ("issuing_org", pa.string()), ("partner_orgs", pa.list_(pa.string())), ("title", pa.string()),
    ("instrument_type", pa.string()), ("binding", pa.bool_()), ("action", pa.string()),
    ("version", pa.string()), ("effective_date", pa.date32()), ("member_countries", pa.list_(pa.string())),
    ("themes", pa.list_(pa.string())), ("related_indicators", pa.list_(pa.string())), ("url", pa.string()),
    ("produced_at", pa.timestamp("ms", tz="UTC")), ("schema_version", pa.string()),
])
ADOPTIONS_SCHEMA = pa.schema([
    ("instrument_id", pa.string()), ("country", pa.string()), ("adoption_date", pa.date32()),
    ("version", pa.string()), ("event_id", pa.string()),
])


@dataclass
class PolicyCounts:
    events_applied: int = 0
    events_duplicate: int = 0
    instruments: int = 0
    adoptions: int = 0


class PolicyIngest:
    def __init__(self, store: ObjectStore, catalog: Catalog, dead: DeadLetters, registry: Registry | None = None,
                 run_id: str = "manual"):
        self.store, self.catalog, self.dead, self.run_id = store, catalog, dead, run_id
        self.registry = registry or get_registry()
        self.rows: list[dict] = []
        self.counts = PolicyCounts()
        self._existing: pa.Table | None = None
        self._owners: dict[str, tuple[str, set[str]]] | None = None

    def existing(self) -> pa.Table | None:
        """The instrument_versions table as stored before this run (read once)."""
        if self._owners is None:
            self._existing = read_instruments(self.store.settings, "instrument_versions", self.store)
            self._owners = {}
            for row in (self._existing.select(["instrument_id", "issuing_org", "partner_orgs"]).to_pylist()
                        if self._existing is not None else []):
                self._owners.setdefault(row["instrument_id"], (row["issuing_org"], set(row["partner_orgs"] or ())))
        return self._existing

    def _owner_problem(self, rec: dict) -> str | None:
        """An org may publish updates only of instruments it issues or co-issues, and never re-issue one."""
        self.existing()
        issuer, partners = self._owners.get(rec["instrument_id"], (rec["issuing_org"], set(rec["partner_orgs"])))
        if rec["issuing_org"] != issuer:
            return (f"instrument {rec['instrument_id']} is issued by {issuer}; {rec['org']} cannot publish it "
                    f"as issued by {rec['issuing_org']}")
        if rec["org"] != issuer and rec["org"] not in partners:
            return (f"{rec['org']} is neither the issuer ({issuer}) nor a co-issuer of instrument "
                    f"{rec['instrument_id']}")
        self._owners.setdefault(rec["instrument_id"], (issuer, partners))
        return None

    def add(self, record: SourceRecord, decoded: codec.Decoded) -> None:
        rec = decoded.record
        if decoded.name != POLICY:
            self.dead.refuse(record, "wrong-event-type",
                             f"{decoded.name} v{decoded.version} event on a policies topic (expected {POLICY})",
                             org=rec.get("org"), event_id=rec.get("event_id"))
            return
        try:
            content.check_event(decoded)
            problem = check_policy_update(rec)
        except codec.ContentError as exc:
            problem = (exc.reason, exc.detail)
        if problem is None and (owner := self._owner_problem(rec)):
            problem = ("org-mismatch", owner)
        if problem:
            reason, detail = problem
            self.dead.refuse(record, reason, f"policy update {rec.get('event_id')}: {detail}",
                             org=rec.get("org"), event_id=rec.get("event_id"))
            return
        self.rows.append(policy_row(decoded))

    def fail(self, record: SourceRecord, detail: str) -> None:
        """`add` raised unexpectedly on `record` (refused as internal-error): it added no row."""

    def settle(self) -> None:
        """Nothing to clean up once the dead letters are written (policy updates are never staged)."""

    def finish(self) -> PolicyCounts:
        existing = self.existing()
        known = set(existing["event_id"].to_pylist()) if existing is not None else set()
        fresh, seen = [], set()
        for row in self.rows:
            if row["event_id"] in known or row["event_id"] in seen:
                self.counts.events_duplicate += 1
            else:
                seen.add(row["event_id"])
                fresh.append(row)
        self.counts.events_applied = len(fresh)
        if not fresh:
            return self.counts
        new = pa.Table.from_pylist(fresh, schema=VERSIONS_SCHEMA)
        versions = new if existing is None else pa.concat_tables([existing.cast(VERSIONS_SCHEMA), new])
        versions = versions.sort_by([("instrument_id", "ascending"), ("effective_date", "ascending"),
                                     ("produced_at", "ascending"), ("event_id", "ascending")])
        adoptions = _adoptions(versions)
        current = _current(versions)
        self.counts.instruments, self.counts.adoptions = current.num_rows, adoptions.num_rows
        orgs = sorted(set(versions["org"].to_pylist()))
        tables = self.catalog.tables
        # instrument_versions last: a run failing half-way leaves its events unapplied there, so the rerun
        # (which takes them as new, not duplicates) rewrites all three tables.
        for name, table in (("adoptions", adoptions), ("instruments", current), ("instrument_versions", versions)):
            entry = {"kind": "harmonized", "publishers": orgs, "rows": table.num_rows,
                     "schema_version": f"{POLICY}/v{self.registry.latest(POLICY).version}",
                     "coverage": {"instruments": sorted(set(versions["instrument_id"].to_pylist()))},
                     "columns": [f"{f.name}:{f.type}" for f in table.schema]}
            rows = iceberg_ready(table)
            target = tables.create(HARMONIZED, name, rows.schema, properties=METADATA_CLEANUP)
            replace_content(tables, self.store, target, rows, tag=name, summary={"ioxhub.run_id": self.run_id},
                            properties={NAME: INSTRUMENTS_PREFIX + name, ENTRY: json.dumps(entry, sort_keys=True)})
        return self.counts


def read_instruments(settings: Settings, table: str, store: ObjectStore | None = None) -> pa.Table | None:
    """The current rows of instrument table `table` (one of TABLES), as written; None before any update."""
    store = store or ObjectStore(settings)
    return read_rows(store, tables_for(settings).load(HARMONIZED, table))


def policy_row(decoded: codec.Decoded) -> dict:
    """The instrument_versions row of a checked policy update (it fits VERSIONS_SCHEMA, or this raises)."""
    rec = decoded.record
    row = {
        **{k: rec[k] for k in ("event_id", "instrument_id", "org", "issuing_org", "partner_orgs", "title",
                               "binding", "version", "effective_date", "themes", "related_indicators", "url",
                               "produced_at")},
        "instrument_type": str(rec["instrument_type"]), "action": str(rec["action"]),
        "member_countries": [harmonize_country(c)[0] for c in rec["member_countries"]],
        "schema_version": f"{POLICY}/v{decoded.version}",
    }
    pa.Table.from_pylist([row], schema=VERSIONS_SCHEMA)
    return row


def check_policy_update(rec: dict) -> tuple[str, str] | None:
    try:
        check_org(rec["org"], "org")
        check_org(rec["issuing_org"], "issuing_org")
        check_id(rec["instrument_id"], "instrument_id")
    except InvalidName as exc:
        return "bad-name", str(exc)
    unknown = [c for c in rec["member_countries"] if harmonize_country(c)[0] is None]
    if unknown:
        return "unknown-country", f"field member_countries: {', '.join(map(repr, unknown))} not ISO 3166 countries"
    return None


def _adoptions(versions: pa.Table) -> pa.Table:
    """First ADOPTED_BY_MEMBER date per (instrument, country); versions are sorted by date already."""
    firsts: dict[tuple[str, str], dict] = {}
    for row in versions.filter(pc.equal(versions["action"], "ADOPTED_BY_MEMBER")).to_pylist():
        for country in row["member_countries"]:
            firsts.setdefault((row["instrument_id"], country), {
                "instrument_id": row["instrument_id"], "country": country, "adoption_date": row["effective_date"],
                "version": row["version"], "event_id": row["event_id"]})
    rows = sorted(firsts.values(), key=lambda r: (r["instrument_id"], r["adoption_date"], r["country"]))
    return pa.Table.from_pylist(rows, schema=ADOPTIONS_SCHEMA)


def _current(versions: pa.Table) -> pa.Table:
    """The latest update of each instrument (versions sorted by instrument, date, produced_at)."""
    latest: dict[str, dict] = {}
    for row in versions.to_pylist():
        latest[row["instrument_id"]] = row
    return pa.Table.from_pylist(list(latest.values()), schema=VERSIONS_SCHEMA)


