"""Names that become Kafka topics or object keys: the one place they are built and checked.

Org ids, dataset ids and release ids end up in topic names and S3 keys, so they are validated here
(no `..`, no slashes, no control characters, bounded length) before anything uses them.
"""
from __future__ import annotations

import re

from ioxhub.errors import IoxhubError

DEAD_LETTER_TOPIC = "ioxhub.deadletter"
MAX_NAME_LENGTH = 100

_ORG_RE = re.compile(r"^[A-Z][A-Z0-9]{1,15}$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def org_topics_asset(kind: str) -> str:
    """The name of the Airflow Asset (and of its AssetWatcher) standing for the org topics of one event kind."""
    return f"org_topics_{kind}"


class InvalidName(IoxhubError, ValueError):
    """A name that cannot safely become a topic or object key."""




def check_org(org: str, what: str = "org id") -> str:
    if not isinstance(org, str) or not _ORG_RE.fullmatch(org):
        raise InvalidName(f"{what} {org!r} is not valid: use 2-16 upper-case letters or digits, starting with a letter (e.g. WCO)")
    return org


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or value == "":
        raise InvalidName(f"{what} is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} {value[:40]!r}... is {len(value)} characters long (at most {MAX_NAME_LENGTH})")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidName(f"{what} {value!r} contains control characters")
    if ".." in value or "/" in value or "\\" in value:
        raise InvalidName(f"{what} {value!r} must not contain '..', '/' or '\\'")
    if not _ID_RE.fullmatch(value):
        raise InvalidName(f"{what} {value!r} may only use letters, digits, '.', '_' and '-' (starting with a letter or digit)")
    return value


def datasets_topic(org: str) -> str:
    return f"ioxhub.{check_org(org).lower()}.datasets"


def policies_topic(org: str) -> str:
    return f"ioxhub.{check_org(org).lower()}.policies"


def org_of_topic(topic: str) -> str | None:
    """The org a datasets/policies topic belongs to, or None for other topics."""
    parts = topic.split(".")
    if len(parts) == 3 and parts[0] == "ioxhub" and parts[2] in ("datasets", "policies"):
        return parts[1].upper()
    return None
