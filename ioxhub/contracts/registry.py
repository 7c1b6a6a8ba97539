"""The Avro schema registry: every version of every event schema, from `schemas/<name>/v<N>.avsc`.

A version is identified by the CRC-64-AVRO fingerprint of its canonical form (the single-object encoding's
id) and by a Confluent schema id computed from it, `(fp64 mod (2**31 - 1)) + 1`; the fingerprints Apache
Avro for Python computes are accepted on read as aliases (`alias_fingerprints`). Entry points:
`get_registry(schemas_dir)`, `Registry` (`latest`, `get`, `by_fingerprint`, `by_confluent_id`),
`load_schema_file`. Why ids and aliases are so: docs/contracts.md.
"""
from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, fingerprint, to_parsing_canonical_form

from ioxhub.errors import IoxhubError
from ioxhub.settings import get_settings

_VERSION_FILE = re.compile(r"^v([1-9][0-9]*)\.avsc$")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class SchemaFileError(IoxhubError, ValueError):
    """A schema file or the registry layout is malformed; the message names the file."""


class UnknownSchema(IoxhubError, LookupError):
    """No such schema name, version, fingerprint or Confluent id in the registry."""


@dataclass(frozen=True, eq=False)
class SchemaVersion:
    """One immutable version of one event schema."""

    name: str                  # directory name, e.g. "dataset_chunk"
    version: int
    path: Path
    schema: dict[str, Any] = field(repr=False)     # the JSON as written
    parsed: dict[str, Any] = field(repr=False)     # fastavro.parse_schema result (cached for the codec)
    canonical: str = field(repr=False)              # Parsing Canonical Form
    fingerprint: bytes                              # 8 bytes, as in the single-object header (little-endian)
    confluent_id: int
    text: str = field(default="", repr=False)      # the file's text, for other implementations' fingerprints

    @functools.cached_property
    def alias_fingerprints(self) -> tuple[bytes, ...]:
        """Other implementations' fingerprints of this schema (module docstring), computed on first use:
        it imports Apache Avro (~25 ms), which a producer never needs."""
        return tuple(a for a in (_apache_python_fingerprint(self.text),) if a and a != self.fingerprint)

    @property
    def fingerprint_hex(self) -> str:
        return self.fingerprint.hex()

    @property
    def full_name(self) -> str:
        return self.parsed.get("name", self.name) if isinstance(self.parsed, dict) else self.name

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


def confluent_id_of(fp: bytes) -> int:
    """The Confluent schema id of a fingerprint (see module docstring): 1 .. 2**31 - 1."""
    return int.from_bytes(fp, "little") % (2**31 - 1) + 1


def load_schema_file(path: Path, name: str, version: int) -> SchemaVersion:
    """Parse one `.avsc` file; any problem is a SchemaFileError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemaFileError(f"{path}: cannot read schema file ({exc})") from None
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaFileError(f"{path}, line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise SchemaFileError(f"{path}: an event schema must be a JSON object with \"type\": \"record\"")
    try:
        parsed = fastavro.parse_schema(schema)
        canonical = to_parsing_canonical_form(schema)
    except (SchemaParseException, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise SchemaFileError(f"{path}: not a valid Avro schema ({exc})") from None
    fp = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))
    return SchemaVersion(name, version, path, schema, parsed, canonical, fp, confluent_id_of(fp), text)


def _apache_python_fingerprint(text: str) -> bytes | None:
    """The fingerprint Apache Avro for Python computes (see module docstring); None without that library."""
    try:
        import avro.errors
        import avro.schema
    except ImportError:
        return None
    try:
        return bytes(avro.schema.parse(text).fingerprint("CRC-64-AVRO"))
    except (avro.errors.AvroException, ValueError, TypeError):
        return None  # fastavro accepted the schema; compat.py reports what Apache Avro refuses


class Registry:
    """All schema versions of a schemas directory, with lookups by name, version, fingerprint and id."""

    def __init__(self, versions: list[SchemaVersion]):
        self._by_name: dict[str, list[SchemaVersion]] = {}
        for v in sorted(versions, key=lambda v: (v.name, v.version)):
            self._by_name.setdefault(v.name, []).append(v)
        self._by_fp: dict[bytes, SchemaVersion] = {}
        self._by_id: dict[int, SchemaVersion] = {}
        for name, vs in self._by_name.items():
            numbers = [v.version for v in vs]
            if numbers != list(range(1, len(vs) + 1)):
                raise SchemaFileError(f"{vs[0].path.parent}: versions must be v1..vN without gaps, found "
                                      + ", ".join(f"v{n}" for n in numbers))
            for v in vs:  # the newest version with a canonical form wins (same wire format anyway)
                other = self._by_fp.get(v.fingerprint)
                if other is not None and other.name != v.name:
                    raise SchemaFileError(f"{v.path}: same canonical form as {other.path}; schemas must differ")
                clash = self._by_id.get(v.confluent_id)
                if clash is not None and clash.fingerprint != v.fingerprint:
                    raise SchemaFileError(f"{v.path}: Confluent id {v.confluent_id} collides with {clash.path}; "
                                          "change the schema (e.g. a field name) to get another fingerprint")
                self._by_fp[v.fingerprint] = v
                self._by_id[v.confluent_id] = v
        self._by_alias: dict[bytes, SchemaVersion] | None = None

    @classmethod
    def load(cls, schemas_dir: Path) -> "Registry":
        schemas_dir = Path(schemas_dir)
        if not schemas_dir.is_dir():
            raise SchemaFileError(f"{schemas_dir}: schema directory does not exist")
        versions = []
        for sub in sorted(p for p in schemas_dir.iterdir() if p.is_dir()):
            if not _NAME.fullmatch(sub.name):
                raise SchemaFileError(f"{sub}: schema directory names are lower_snake_case")
            for path in sorted(sub.iterdir()):
                if path.suffix != ".avsc":
                    continue
                m = _VERSION_FILE.fullmatch(path.name)
                if not m:
                    raise SchemaFileError(f"{path}: schema files are named v<N>.avsc (v1.avsc, v2.avsc, ...)")
                versions.append(load_schema_file(path, sub.name, int(m.group(1))))
        return cls(versions)

    # ---------------------------------------------------------------------------------------- lookups
    def names(self) -> list[str]:
        return sorted(self._by_name)

    def versions(self, name: str) -> list[SchemaVersion]:
        try:
            return list(self._by_name[name])
        except KeyError:
            raise UnknownSchema(f"no schema named {name!r} (known: {', '.join(self.names()) or 'none'})") from None

    def latest(self, name: str) -> SchemaVersion:
        return self.versions(name)[-1]

    def get(self, name: str, version: int) -> SchemaVersion:
        vs = self.versions(name)
        if not 1 <= version <= len(vs):
            raise UnknownSchema(f"schema {name!r} has no version {version} (v1..v{len(vs)})")
        return vs[version - 1]

    def by_fingerprint(self, fp: bytes) -> SchemaVersion:
        fp = bytes(fp)
        found = self._by_fp.get(fp) or self._aliases().get(fp)
        if found is None:
            raise UnknownSchema(f"no schema with fingerprint {fp.hex()}")
        return found

    def _aliases(self) -> dict[bytes, SchemaVersion]:
        """Other implementations' fingerprints -> version, built at the first unknown fingerprint (a real
        fingerprint always wins over an alias)."""
        if self._by_alias is None:
            aliases: dict[bytes, SchemaVersion] = {}
            for vs in self._by_name.values():
                for v in vs:
                    for alias in v.alias_fingerprints:
                        if alias not in self._by_fp:
                            aliases.setdefault(alias, v)
            self._by_alias = aliases
        return self._by_alias

    def by_confluent_id(self, schema_id: int) -> SchemaVersion:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise UnknownSchema(f"no schema with Confluent id {schema_id}") from None

    def __iter__(self):
        for name in self.names():
            yield from self._by_name[name]


_lock = threading.Lock()
_registry: Registry | None = None                 # the registry of the global settings' schemas_dir
_by_dir: dict[Path, Registry] = {}                 # registries of other schema directories


def get_registry(schemas_dir: Path | None = None) -> Registry:
    """The registry of `schemas_dir` (default: the global settings' schemas_dir), loaded once per directory."""
    global _registry
    if schemas_dir is None:
        if _registry is None:
            with _lock:
                if _registry is None:
                    _registry = get_registry(get_settings().schemas_dir)
        return _registry
    key = Path(schemas_dir).resolve()
    registry = _by_dir.get(key)
    if registry is None:
        registry = _by_dir.setdefault(key, Registry.load(Path(schemas_dir)))
    return registry


def reset_registry() -> None:
    """Forget the cached registries (tests, or after the schemas directory setting changed)."""
    global _registry
    with _lock:
        _registry = None
        _by_dir.clear()
