"""The provisioning file (`infra/orgs.yaml`): organizations, topics, storage zones and roles, signing keys.

`load_orgs()` parses and validates it into frozen dataclasses. Validation is written by hand rather than
with a schema library on purpose: every message must name the file, the line, the entry (`orgs[3] (IMO)`)
and the field, say what was expected and what was found; generic validators report JSON paths without
line numbers or org ids. The YAML is read by `ioxhub.yamlfile` (line of every key, duplicate keys refused).
"""
from __future__ import annotations

import base64
import binascii
import difflib
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from ioxhub import names, yamlfile
from ioxhub.errors import IoxhubError, read_user_text
from ioxhub.settings import get_settings
from ioxhub.yamlfile import Map

FILE_VERSION = 1
WHOLE_BUCKET = "*"
_MAX_PARTITIONS = 10_000


class OrgsFileError(IoxhubError, ValueError):
    """The provisioning file is malformed; the message names file, line, entry and field."""


class UnknownOrgError(IoxhubError, LookupError):
    """An org id that the provisioning file does not declare."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int  # -1: forever


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    public_key: bytes  # raw 32-byte Ed25519 public key
    valid_from: datetime
    valid_until: datetime | None = None

    def is_valid_at(self, when: datetime) -> bool:
        return self.valid_from <= when and (self.valid_until is None or when < self.valid_until)


@dataclass(frozen=True)
class OrgSpec:
    id: str
    name: str
    datasets: TopicSpec
    policies: TopicSpec
    signing_keys: tuple[SigningKey, ...] = ()

    @property
    def topics(self) -> tuple[TopicSpec, TopicSpec]:
        return (self.datasets, self.policies)


@dataclass(frozen=True)
class RoleSpec:
    """Zones a storage role may read and write; (`"*"`,) means the whole bucket."""
    name: str
    read: tuple[str, ...]
    write: tuple[str, ...]

    @property
    def reads_everything(self) -> bool:
        return self.read == (WHOLE_BUCKET,)

    @property
    def writes_everything(self) -> bool:
        return self.write == (WHOLE_BUCKET,)


@dataclass(frozen=True)
class StorageSpec:
    bucket: str | None  # None: the bucket of the settings (IOXHUB_BUCKET)
    zones: tuple[str, ...]
    roles: Mapping[str, RoleSpec]


@dataclass(frozen=True)
class OrgsSpec:
    orgs: tuple[OrgSpec, ...]
    dead_letter: TopicSpec
    storage: StorageSpec
    source: Path | None = None

    def org(self, org_id: str) -> OrgSpec:
        for org in self.orgs:
            if org.id == org_id:
                return org
        known = ", ".join(o.id for o in self.orgs)
        raise UnknownOrgError(f"org {org_id!r} is not declared in {self.source or 'the provisioning file'} (known: {known})")

    @property
    def topics(self) -> tuple[TopicSpec, ...]:
        """Every topic of the hub: each org's datasets and policies topics, then the dead-letter topic."""
        return tuple(t for org in self.orgs for t in org.topics) + (self.dead_letter,)


def load_orgs(path: Path | str | None = None) -> OrgsSpec:
    """Read and validate the provisioning file (default: settings.orgs_file)."""
    if path is None:
        path = get_settings().orgs_file
    path = Path(path)
    return parse_orgs(read_user_text(path, OrgsFileError, "provisioning file (IOXHUB_ORGS_FILE)"), path)


def parse_orgs(text: str, path: Path | str = "<orgs.yaml>") -> OrgsSpec:
    """Validate provisioning YAML given as text; `path` is only used in messages."""
    return _Validator(Path(path)).document(yamlfile.load(text, path, OrgsFileError))


# --------------------------------------------------------------------------------------- validation
def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


class _Validator:
    def __init__(self, path: Path):
        self.path = path

    # -- reporting ---------------------------------------------------------------------------------
    def fail(self, line: int, entry: str, field: str | None, problem: str) -> OrgsFileError:
        where = f"{self.path}:{line}" if line else str(self.path)
        parts = [where, entry] + ([field] if field else [])
        return OrgsFileError(": ".join(parts) + ": " + problem)

    def mapping(self, value: Any, line: int, entry: str, field: str | None, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> Map:
        if not isinstance(value, dict):
            raise self.fail(line, entry, field, f"expected a mapping with {', '.join(allowed)}, got {_describe(value)}")
        for key in value:
            if key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                sub = f"{field}.{key}" if field else str(key)
                raise self.fail(value.line_of(key), entry, sub,
                                f"unknown field{suggestion}; allowed here: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                raise self.fail(value.line, entry, f"{field}.{key}" if field else key, "missing (required)")
        return value

    # -- document ----------------------------------------------------------------------------------
    def document(self, doc: Any) -> OrgsSpec:
        if doc is None:
            raise self.fail(0, "file", None, "is empty; expected version, topic_defaults, dead_letter, storage and orgs")
        doc = self.mapping(doc, 1, "file", None, ("version", "topic_defaults", "dead_letter", "storage", "orgs"),
                           required=("version", "dead_letter", "storage", "orgs"))
        if doc["version"] != FILE_VERSION or isinstance(doc["version"], bool):
            raise self.fail(doc.line_of("version"), "version", None,
                            f"expected {FILE_VERSION}, got {_describe(doc['version'])}")

        defaults = {"datasets": {}, "policies": {}}
        if "topic_defaults" in doc:
            td = self.mapping(doc["topic_defaults"], doc.line_of("topic_defaults"), "topic_defaults", None,
                              ("datasets", "policies"))
            for kind in ("datasets", "policies"):
                if kind in td:
                    defaults[kind] = self.topic_settings(td[kind], td.line_of(kind), "topic_defaults", kind, partial=True)

        dead_letter = self.topic_settings(doc["dead_letter"], doc.line_of("dead_letter"), "dead_letter", None, partial=False)
        storage = self.storage(doc["storage"], doc.line_of("storage"))
        orgs = self.orgs(doc["orgs"], doc.line_of("orgs"), defaults)
        return OrgsSpec(
            orgs=orgs,
            dead_letter=TopicSpec(names.DEAD_LETTER_TOPIC, dead_letter["partitions"], dead_letter["retention_ms"]),
            storage=storage,
            source=self.path,
        )

    def topic_settings(self, value: Any, line: int, entry: str, field: str | None, *, partial: bool) -> dict[str, int]:
        m = self.mapping(value, line, entry, field, ("partitions", "retention_ms"),
                         required=() if partial else ("partitions", "retention_ms"))
        out: dict[str, int] = {}
        if "partitions" in m:
            p = m["partitions"]
            if not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= _MAX_PARTITIONS:
                raise self.fail(m.line_of("partitions"), entry, _join(field, "partitions"),
                                f"expected a whole number from 1 to {_MAX_PARTITIONS}, got {_describe(p)}")
            out["partitions"] = p
        if "retention_ms" in m:
            r = m["retention_ms"]
            if not isinstance(r, int) or isinstance(r, bool) or not (r == -1 or r >= 1):
                raise self.fail(m.line_of("retention_ms"), entry, _join(field, "retention_ms"),
                                f"expected milliseconds (a whole number >= 1, or -1 for forever), got {_describe(r)}")
            out["retention_ms"] = r
        return out

    def storage(self, value: Any, line: int) -> StorageSpec:
        m = self.mapping(value, line, "storage", None, ("bucket", "zones", "roles"), required=("zones", "roles"))
        bucket = m.get("bucket")
        if bucket is not None and not (isinstance(bucket, str) and _valid_bucket(bucket)):
            raise self.fail(m.line_of("bucket"), "storage", "bucket",
                            f"expected an S3 bucket name (3-63 lower-case letters, digits, '-' or '.'), got {_describe(bucket)}")

        zones_raw = m["zones"]
        if not isinstance(zones_raw, list) or not zones_raw:
            raise self.fail(m.line_of("zones"), "storage", "zones", f"expected a non-empty list of zone names, got {_describe(zones_raw)}")
        zones: list[str] = []
        for i, zone in enumerate(zones_raw):
            if not isinstance(zone, str) or not _valid_zone(zone):
                raise self.fail(m.line_of("zones"), "storage", f"zones[{i}]",
                                f"expected a zone name (lower-case letters, digits, '_' or '-'), got {_describe(zone)}")
            if zone in zones:
                raise self.fail(m.line_of("zones"), "storage", f"zones[{i}]", f"zone {zone!r} is listed twice")
            zones.append(zone)

        roles_map = m["roles"]
        if not isinstance(roles_map, dict) or not roles_map:
            raise self.fail(m.line_of("roles"), "storage", "roles", f"expected a mapping of role name to read/write zones, got {_describe(roles_map)}")
        roles: dict[str, RoleSpec] = {}
        for role_name, role_value in roles_map.items():
            entry = f"storage.roles.{role_name}"
            rline = roles_map.line_of(role_name)
            if not isinstance(role_name, str) or not _valid_zone(role_name):
                raise self.fail(rline, "storage", "roles", f"role name {role_name!r} must use lower-case letters, digits, '_' or '-'")
            r = self.mapping(role_value, rline, entry, None, ("read", "write"), required=("read", "write"))
            roles[role_name] = RoleSpec(role_name,
                                        read=self.zone_list(r, "read", entry, zones),
                                        write=self.zone_list(r, "write", entry, zones))
        if "hub" not in roles:
            raise self.fail(m.line_of("roles"), "storage", "roles.hub", "missing (required: the identity of ingest and derive)")
        return StorageSpec(bucket=bucket, zones=tuple(zones), roles=MappingProxyType(roles))

    def zone_list(self, role: Map, key: str, entry: str, zones: list[str]) -> tuple[str, ...]:
        value = role[key]
        if value == WHOLE_BUCKET:
            return (WHOLE_BUCKET,)
        if not isinstance(value, list):
            raise self.fail(role.line_of(key), entry, key, f"expected a list of zones or \"*\" (whole bucket), got {_describe(value)}")
        for i, zone in enumerate(value):
            if zone not in zones:
                raise self.fail(role.line_of(key), entry, f"{key}[{i}]",
                                f"{zone!r} is not a zone of storage.zones ({', '.join(zones)})")
        return tuple(dict.fromkeys(value))

    def orgs(self, value: Any, line: int, defaults: dict[str, dict[str, int]]) -> tuple[OrgSpec, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(line, "orgs", None, f"expected a non-empty list of organizations, got {_describe(value)}")
        seen_ids: dict[str, int] = {}
        seen_keys: dict[str, str] = {}
        out = []
        for i, item in enumerate(value):
            org_id = item.get("id") if isinstance(item, dict) else None
            entry = f"orgs[{i}]" + (f" ({org_id})" if isinstance(org_id, str) else "")
            m = self.mapping(item, getattr(item, "line", line), entry, None,
                             ("id", "name", "datasets", "policies", "signing_keys"), required=("id", "name"))
            try:
                names.check_org(org_id)
            except names.InvalidName as exc:
                raise self.fail(m.line_of("id"), entry, "id", str(exc)) from None
            if org_id in seen_ids:
                raise self.fail(m.line_of("id"), entry, "id", f"duplicate org id {org_id!r} (first declared as orgs[{seen_ids[org_id]}])")
            seen_ids[org_id] = i
            name = m["name"]
            if not isinstance(name, str) or not name.strip():
                raise self.fail(m.line_of("name"), entry, "name", f"expected the organization's full name, got {_describe(name)}")

            topics = {}
            for kind, make in (("datasets", names.datasets_topic), ("policies", names.policies_topic)):
                settings = dict(defaults[kind])
                if kind in m:
                    settings.update(self.topic_settings(m[kind], m.line_of(kind), entry, kind, partial=True))
                missing = [k for k in ("partitions", "retention_ms") if k not in settings]
                if missing:
                    raise self.fail(m.line_of(kind), entry, f"{kind}.{missing[0]}",
                                    f"missing: set it here or in topic_defaults.{kind}")
                topics[kind] = TopicSpec(make(org_id), settings["partitions"], settings["retention_ms"])

            keys = self.signing_keys(m.get("signing_keys", []), m.line_of("signing_keys"), entry, seen_keys)
            out.append(OrgSpec(org_id, name.strip(), topics["datasets"], topics["policies"], keys))
        return tuple(out)

    def signing_keys(self, value: Any, line: int, entry: str, seen: dict[str, str]) -> tuple[SigningKey, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(line, entry, "signing_keys", f"expected a list of keys (may be empty: []), got {_describe(value)}")
        keys = []
        for j, item in enumerate(value):
            field = f"signing_keys[{j}]"
            k = self.mapping(item, getattr(item, "line", line), entry, field,
                             ("key_id", "public_key", "valid_from", "valid_until"),
                             required=("key_id", "public_key", "valid_from"))
            key_id = k["key_id"]
            try:
                names.check_id(key_id, "key_id")
            except names.InvalidName as exc:
                raise self.fail(k.line_of("key_id"), entry, f"{field}.key_id", str(exc)) from None
            if key_id in seen:
                raise self.fail(k.line_of("key_id"), entry, f"{field}.key_id", f"key_id {key_id!r} is already used by {seen[key_id]}")
            seen[key_id] = entry
            public_key = self.public_key(k["public_key"], k.line_of("public_key"), entry, f"{field}.public_key")
            valid_from = self.timestamp(k["valid_from"], k.line_of("valid_from"), entry, f"{field}.valid_from")
            valid_until = None
            if k.get("valid_until") is not None:
                valid_until = self.timestamp(k["valid_until"], k.line_of("valid_until"), entry, f"{field}.valid_until")
                if valid_until <= valid_from:
                    raise self.fail(k.line_of("valid_until"), entry, f"{field}.valid_until",
                                    f"must be after valid_from ({valid_from.isoformat()})")
            keys.append(SigningKey(key_id, public_key, valid_from, valid_until))
        return tuple(keys)

    def public_key(self, value: Any, line: int, entry: str, field: str) -> bytes:
        expected = "expected the base64 of a raw 32-byte Ed25519 public key (`ioxhub keys generate` prints it)"
        if not isinstance(value, str):
            raise self.fail(line, entry, field, f"{expected}, got {_describe(value)}")
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise self.fail(line, entry, field, f"{expected}; this is not valid base64") from None
        if len(raw) != 32:
            raise self.fail(line, entry, field, f"{expected}; this decodes to {len(raw)} bytes")
        return raw

    def timestamp(self, value: Any, line: int, entry: str, field: str) -> datetime:
        expected = "expected an ISO 8601 time with a timezone, e.g. 2026-01-01T00:00:00Z (a bare date means 00:00 UTC)"
        if isinstance(value, str):
            text = value.strip()
            try:
                value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
            except ValueError:
                raise self.fail(line, entry, field, f"{expected}, got {value!r}") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value, time(0), tzinfo=timezone.utc)
        if not isinstance(value, datetime):
            raise self.fail(line, entry, field, f"{expected}, got {_describe(value)}")
        if value.tzinfo is None:
            raise self.fail(line, entry, field, f"{expected}; {value.isoformat()} has no timezone")
        return value


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _valid_bucket(name: str) -> bool:
    return 3 <= len(name) <= 63 and all(c.islower() or c.isdigit() or c in "-." for c in name) \
        and name[0].isalnum() and name[-1].isalnum() and ".." not in name


def _valid_zone(name: str) -> bool:
    return 0 < len(name) <= 63 and all((c.isascii() and (c.islower() or c.isdigit())) or c in "_-" for c in name) \
        and name[0].isalnum()
