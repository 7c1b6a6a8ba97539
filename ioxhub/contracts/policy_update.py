"""The policy_update contract (schemas/policy_update): encode a policy record, check its content.

Entry points: `encode(record)`, `check_policy(record)` (what the schema cannot say: names that become
keys, a plausible date, a title and a version).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ioxhub.contracts import codec
from ioxhub.contracts.registry import Registry
from ioxhub.contracts.codec import BAD_NAME, ContentError
from ioxhub.names import InvalidName, check_org

NAME = "policy_update"
BAD_POLICY = "bad-policy"              # the content reason of an update that cannot be true
DATES = (dt.date(1800, 1, 1), dt.date(2200, 12, 31))


def encode(record: dict[str, Any], registry: Registry | None = None) -> bytes:
    """The single-object encoding of a policy update record (the latest version of `registry`, default the
    global settings' schemas)."""
    return codec.encode(NAME, record, registry=registry)


def check_policy(record: dict[str, Any]) -> None:
    """A policy update: names that become keys, a date in a plausible range, a title and a version."""
    try:
        for partner in record["partner_orgs"]:
            check_org(partner, "partner_orgs entry")
    except InvalidName as exc:
        raise ContentError(BAD_NAME, str(exc)) from None
    date = record["effective_date"]
    if not DATES[0] <= date <= DATES[1]:
        raise ContentError(BAD_POLICY, f"field effective_date: {date} outside {DATES[0]}..{DATES[1]}")
    for name in ("title", "version"):
        if not record[name].strip():
            raise ContentError(BAD_POLICY, f"field {name} is empty")
