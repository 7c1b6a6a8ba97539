"""The provisioning plan: `Change`, `ProvisionReport`, the storage roles' identities and their keys.

Entry points: `role_identities` (each storage role with its keys, generated owner-only when missing), `keys_accepted`,
`plan_bucket`, `ProvisionReport`; helpers the area modules share (`read_secrets`, `write_private`,
`safe_text`). How provisioning works: docs/provisioning.md.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio.error import S3Error

from ioxhub.errors import IoxhubError
from ioxhub.orgs import OrgsSpec, RoleSpec
from ioxhub.s3 import make_client
from ioxhub.settings import Settings


class ProvisionError(IoxhubError):
    """A server is unreachable, refuses a change, or the settings contradict the provisioning file."""


@dataclass(frozen=True)
class Change:
    """One change to make. `detail` is for people and never holds a secret; `payload` is what is sent."""
    area: str
    target: str
    action: str
    detail: str = ""
    payload: Any = field(default=None, compare=False, repr=False)


@dataclass
class ProvisionReport:
    kafka_backend: str
    storage_backend: str
    changes: list[Change]
    notes: list[str]
    applied: bool

    @property
    def summary(self) -> str:
        if not self.changes:
            return "no changes: everything already matches the provisioning file"
        n = len(self.changes)
        return f"{n} change{'s' * (n != 1)} " + ("applied" if self.applied else "would be applied (dry run, nothing changed)")


@dataclass(frozen=True)
class RoleIdentity:
    role: RoleSpec
    name: str
    access_key: str | None   # None: not generated yet (dry run)
    secret_key: str | None = field(default=None, repr=False)


def plan_bucket(bucket: str, exists: bool) -> list[Change]:
    return [] if exists else [Change("bucket", bucket, "create", "zones are key prefixes (no marker objects)")]


def read_secrets(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise ProvisionError(f"{path}: not valid JSON (a secrets file); restore it or delete it") from None
    if not isinstance(data, dict):
        raise ProvisionError(f"{path}: expected a JSON object of secrets")
    return data


def write_private(path: Path, data: dict) -> None:
    """Write a JSON file readable by its owner only (created 0600, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def role_identities(spec: OrgsSpec, settings: Settings, *, create: bool) -> list[RoleIdentity]:
    """Each storage role with its keys: the hub's from the settings, the others from the secrets file
    (`<role>_access_key` / `<role>_secret_key`), generated and saved owner-only when missing and `create`."""
    path = settings.local_secrets_file
    stored = read_secrets(path)
    added = {}
    out = []
    for role in spec.storage.roles.values():
        if role.name == "hub":
            if not settings.s3_access_key or not settings.s3_secret_key:
                raise ProvisionError("the hub's S3 keys are not set: set IOXHUB_S3_ACCESS_KEY and IOXHUB_S3_SECRET_KEY, "
                                     "or start the local stack (`ioxhub stack up`), which generates them")
            out.append(RoleIdentity(role, "hub", settings.s3_access_key, settings.s3_secret_key))
            continue
        ak, sk = stored.get(f"{role.name}_access_key"), stored.get(f"{role.name}_secret_key")
        if not (ak and sk) and create:
            ak, sk = "IOX" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)
            added.update({f"{role.name}_access_key": ak, f"{role.name}_secret_key": sk})
        out.append(RoleIdentity(role, role.name, ak or None, sk or None))
    if added:
        write_private(path, {**read_secrets(path), **added})
    return out


def keys_accepted(s: Settings, ident: RoleIdentity, bucket: str) -> bool:
    """Whether the S3 server accepts these keys (a signed request; any answer but a signature/key error
    means yes, e.g. AccessDenied on a prefix the role may not list)."""
    client = make_client(s, access_key=ident.access_key, secret_key=ident.secret_key, retries=0)
    try:
        next(iter(client.list_objects(bucket, prefix="_provision-probe/")), None)
    except S3Error as exc:
        return exc.code not in ("SignatureDoesNotMatch", "InvalidAccessKeyId")
    return True


def safe_text(exc: BaseException, s: Settings) -> str:
    """An exception's text with any secret of the settings masked."""
    text = str(exc) or exc.__class__.__name__
    for value in s.secret_values():
        text = text.replace(value, "***")
    return text
