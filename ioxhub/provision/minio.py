"""MinIO storage identities (the compose deployment): a user per role with a canned, prefix-scoped policy,
through `MinioAdmin`.

Entry points: `minio_policy`, `normalize_policy`, `plan_minio` (pure planning), `admin_client`, `observe`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from minio import MinioAdmin
from minio.credentials import StaticProvider
from minio.error import MinioAdminException

from ioxhub.orgs import WHOLE_BUCKET, RoleSpec
from ioxhub.provision.plan import Change, ProvisionError, RoleIdentity, keys_accepted, safe_text
from ioxhub.settings import Settings


def minio_policy(role: RoleSpec, bucket: str) -> dict:
    """The IAM policy document of a role on MinIO (prefix-scoped reads and writes)."""
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict] = [{"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": [arn]}]
    if role.read:
        if role.reads_everything:
            statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn]})
            objects = [f"{arn}/*"]
        else:
            statements.append({"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [arn],
                               "Condition": {"StringLike": {"s3:prefix": [f"{z}/*" for z in role.read]}}})
            objects = [f"{arn}/{z}/*" for z in role.read]
        statements.append({"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectTagging"], "Resource": objects})
    if role.write:
        objects = [f"{arn}/*"] if role.writes_everything else [f"{arn}/{z}/*" for z in role.write]
        statements.append({"Effect": "Allow", "Resource": objects, "Action": [
            "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]})
        statements.append({"Effect": "Allow", "Action": ["s3:ListBucketMultipartUploads"], "Resource": [arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def minio_policy_name(role: str) -> str:
    return f"ioxhub-{role}"


def normalize_policy(doc: Any) -> list[tuple]:
    """A policy document in a comparable form (MinIO may reorder keys and lists or drop empty Sids)."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    if isinstance(doc, dict) and "Policy" in doc and "Statement" not in doc:
        doc = doc["Policy"]
    if not isinstance(doc, dict):
        return []

    def as_list(v: Any) -> list:
        return sorted(v) if isinstance(v, list) else [v]

    out = []
    for st in doc.get("Statement", []):
        condition = json.dumps({op: {k: as_list(v) for k, v in kv.items()} for op, kv in (st.get("Condition") or {}).items()},
                               sort_keys=True)
        out.append((st.get("Effect"), tuple(as_list(st.get("Action", []))), tuple(as_list(st.get("Resource", []))), condition))
    return sorted(out)


@dataclass(frozen=True)
class MinioUser:
    policies: frozenset[str]
    secret_ok: bool  # a signed request with the expected secret was accepted


def plan_minio(bucket: str, identities: list[RoleIdentity], users: Mapping[str, MinioUser],
               policies: Mapping[str, Any], *, root_access_key: str | None) -> list[Change]:
    """MinioAdmin calls (payload: (method, args...)) making users and canned policies match the roles."""
    changes: list[Change] = []
    for ident in identities:
        name = minio_policy_name(ident.role.name)
        doc = minio_policy(ident.role, bucket)
        if name not in policies:
            changes.append(Change("storage policy", name, "create", _policy_text(ident.role), ("policy_add", name, doc)))
        elif normalize_policy(policies[name]) != normalize_policy(doc):
            changes.append(Change("storage policy", name, "update", _policy_text(ident.role), ("policy_add", name, doc)))
        if ident.access_key is not None and ident.access_key == root_access_key:
            continue  # the root user already has every permission; it takes no policy
        user = users.get(ident.access_key) if ident.access_key else None
        if user is None:
            changes.append(Change("storage identity", ident.name, "create", f"role {ident.role.name} (MinIO user)",
                                  ("user_add", ident.access_key, ident.secret_key)))
        elif not user.secret_ok:
            changes.append(Change("storage identity", ident.name, "set keys", "secret key from the settings / secrets file",
                                  ("user_add", ident.access_key, ident.secret_key)))
        if user is None or name not in user.policies:
            changes.append(Change("storage identity", ident.name, "attach policy", name, ("attach_policy", name, ident.access_key)))
    return changes


def _policy_text(role: RoleSpec) -> str:
    def zones(z: tuple[str, ...]) -> str:
        return "whole bucket" if z == (WHOLE_BUCKET,) else (", ".join(f"{x}/" for x in z) or "nothing")
    return f"read {zones(role.read)}; write {zones(role.write)}"


def admin_client(s: Settings):
    if not s.s3_admin_access_key or not s.s3_admin_secret_key:
        raise ProvisionError("MinIO provisioning needs the root user: set IOXHUB_S3_ADMIN_ACCESS_KEY and IOXHUB_S3_ADMIN_SECRET_KEY")
    return MinioAdmin(endpoint=s.s3_endpoint, credentials=StaticProvider(s.s3_admin_access_key, s.s3_admin_secret_key),
                      region=s.s3_region, secure=s.s3_secure)


def observe(s: Settings, madmin, identities: list[RoleIdentity], bucket: str) -> tuple[dict[str, MinioUser], dict]:
    try:
        listed = json.loads(madmin.user_list() or "{}")
        policies = json.loads(madmin.policy_list() or "{}")
    except MinioAdminException as exc:
        raise ProvisionError(f"MinIO at {s.s3_endpoint} refused an admin request: {safe_text(exc, s)}") from None
    users = {}
    for ident in identities:
        info = listed.get(ident.access_key) if ident.access_key else None
        if info is None:
            continue
        attached = frozenset(p for p in str(info.get("policyName") or "").split(",") if p)
        users[ident.access_key] = MinioUser(attached, keys_accepted(s, ident, bucket))
    return users, policies
