"""A policy file (YAML or JSON: one update, a list, or `updates: [...]`) read and checked into
`policy_update` records: `check_policy_file(org, path, enums, produced_at)`.

Each entry is checked (required fields, enums, ISO 3166 members normalized to alpha-3, dates, URL);
every problem names its line and field. `policy_event_id` is sha256 of org, instrument, action,
version, effective date and sorted members. A file that cannot be read at all is one `PublishError`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from ioxhub import names, yamlfile
from ioxhub.errors import read_user_text
from ioxhub.harmonize import countries
from producers.filecheck import check_file
from producers.summary import PublishError

REQUIRED = ("instrument_id", "issuing_org", "title", "instrument_type", "binding", "action", "version",
            "effective_date")
LISTS = ("partner_orgs", "member_countries", "themes", "related_indicators")
FIELDS = REQUIRED + LISTS + ("url",)

Problem = tuple[int, str, str, str]        # line, field, value, reason


@dataclass
class PolicyCheck:
    """The entries of a file: the good ones as records, the problems of the others."""

    entries: int = 0
    records: list[dict] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    bad_entries: int = 0


def check_policy_file(org: str, path: Path, enums: dict[str, list[str]], produced_at: int) -> PolicyCheck:
    """Read `path` and check each entry; `enums` maps the schema's enum fields to their symbols."""
    entries = read_policy_entries(path)
    result = PolicyCheck(entries=len(entries))
    for line, entry in entries:
        record, why = policy_record(org, entry, line, enums, produced_at)
        if why:
            result.problems.extend(why)
            result.bad_entries += 1
        else:
            result.records.append(record)
    return result


def read_policy_entries(path: Path) -> list[tuple[int, Any]]:
    """(line, entry) for each update in the file; one clear error if it is not YAML/JSON."""
    check_file(path, None, PublishError)      # a directory, empty, UTF-16, binary: one line, as for data files
    text = read_user_text(path, PublishError, "policy file")
    text = text.removeprefix("\ufeff")        # a UTF-8 byte order mark
    try:
        data = yamlfile.load(text, path, PublishError)
    except PublishError as not_yaml:
        try:   # JSON that YAML cannot take (e.g. tab indentation)
            data = json.loads(text, object_pairs_hook=_refuse_duplicates)
        except (json.JSONDecodeError, ValueError):
            raise not_yaml from None
    if isinstance(data, dict) and set(data) == {"updates"}:
        data = data["updates"]
    if isinstance(data, dict):
        return [(getattr(data, "line", 1), data)]
    if isinstance(data, list) and data:
        lines = data.item_lines if isinstance(data, yamlfile.Seq) else range(1, len(data) + 1)
        return list(zip(lines, data))
    raise PublishError(f"{path}: expected one policy update (a mapping) or a list of them, found "
                       f"{'an empty list' if data == [] else type(data).__name__}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out = dict(pairs)
    if len(out) < len(pairs):
        raise ValueError("duplicate key")
    return out


def policy_record(org: str, entry: Any, line: int, enums: dict[str, list[str]],
                  produced_at: int) -> tuple[dict | None, list[Problem]]:
    """A policy_update record, or the problems (line, field, value, reason) of the entry."""
    if not isinstance(entry, dict):
        return None, [(line, "", str(entry)[:200], "not a mapping of fields")]
    problems: list[Problem] = []

    def line_of(name: str, item: int | None = None) -> int:
        value = entry.get(name)
        if item is not None and isinstance(value, yamlfile.Seq):
            return value.line_of(item)
        return entry.line_of(name) if isinstance(entry, yamlfile.Map) else line

    def bad(name: str, value: Any, reason: str, item: int | None = None) -> None:
        problems.append((line_of(name, item), name, "" if value is None else str(value), reason))

    for name in sorted(set(entry) - set(FIELDS) - {"org", "event_id", "produced_at"}):
        bad(name, entry[name], "unknown field")
    if entry.get("org") not in (None, org):
        bad("org", entry["org"], f"names another org than the publisher {org}")
    for name in REQUIRED:
        if entry.get(name) is None or entry.get(name) == "":
            bad(name, None, "missing")
    record: dict[str, Any] = {"org": org, "produced_at": produced_at}
    for name in ("instrument_id", "title", "version"):
        value = entry.get(name)
        if value is not None and value != "":
            if isinstance(value, (dict, list, bool)):
                bad(name, value, "expected text")
            record[name] = str(value).strip()
    if "instrument_id" in record:
        try:
            names.check_id(record["instrument_id"], "instrument id")
        except names.InvalidName as exc:
            bad("instrument_id", record["instrument_id"], str(exc))
    issuing = entry.get("issuing_org")
    if issuing is not None:
        try:
            record["issuing_org"] = names.check_org(str(issuing), "issuing org")
        except names.InvalidName as exc:
            bad("issuing_org", issuing, str(exc))
    for name in ("instrument_type", "action"):
        value = entry.get(name)
        if value is None or value == "":
            continue
        symbol = str(value).strip().upper().replace(" ", "_").replace("-", "_")
        if symbol not in enums[name]:
            bad(name, value, f"not one of {', '.join(enums[name])}")
        record[name] = symbol
    binding = entry.get("binding")
    if binding is not None:
        parsed = {"true": True, "yes": True, "binding": True, "false": False, "no": False, "soft": False}.get(
            str(binding).strip().lower()) if not isinstance(binding, bool) else binding
        if parsed is None:
            bad("binding", binding, "expected true (binding) or false (soft law)")
        record["binding"] = parsed
    effective = entry.get("effective_date")
    if effective is not None and effective != "":
        day = effective if isinstance(effective, dt.date) and not isinstance(effective, dt.datetime) else None
        if day is None:
            try:
                day = dt.date.fromisoformat(str(effective).strip())
            except ValueError:
                bad("effective_date", effective, "not a date (YYYY-MM-DD)")
        record["effective_date"] = day
    for name in LISTS:
        value = entry.get(name, [])
        if value is None:
            value = []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or any(isinstance(v, (dict, list)) or v is None for v in value):
            bad(name, value, "expected a list of text values")
            continue
        record[name] = [str(v).strip() for v in value]
    members = []
    for i, value in enumerate(record.get("member_countries", [])):
        iso3, reason = countries.harmonize_country(value)
        if reason or iso3 is None:
            bad("member_countries", value, reason or "missing", item=i)
        else:
            members.append(iso3)
    record["member_countries"] = sorted(set(members))
    for i, value in enumerate(record.get("partner_orgs", [])):
        try:
            names.check_org(value, "partner org")
        except names.InvalidName:
            bad("partner_orgs", value, "not an org id (2-16 upper-case letters or digits)", item=i)
    url = entry.get("url")
    if url is not None and url != "":
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            bad("url", url, "not an http(s) URL")
        record["url"] = str(url)
    else:
        record["url"] = None
    if problems:
        return None, problems
    record["event_id"] = policy_event_id(org, record["instrument_id"], record["action"], record["version"],
                                         record["effective_date"], record["member_countries"])
    return record, []


def policy_event_id(org: str, instrument_id: str, action: str, version: str, effective_date: dt.date,
                    members: Iterable[str]) -> str:
    parts = [org, instrument_id, action, version, effective_date.isoformat(), ",".join(sorted(members))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()
