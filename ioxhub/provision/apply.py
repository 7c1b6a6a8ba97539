"""`ioxhub provision`: plan every area from infra/orgs.yaml and the observed state, then apply the plan.

Entry points: `provision` (returns a `ProvisionReport`; nothing is applied on a dry run), `detect_storage`.
How it works and why: docs/provisioning.md.
"""
from __future__ import annotations

import time

import urllib3
from minio.error import S3Error

from ioxhub.orgs import OrgsSpec, load_orgs
from ioxhub.provision import minio, seaweedfs
from ioxhub.provision.kafka import provision_kafka
from ioxhub.provision.plan import (Change, ProvisionError, ProvisionReport, RoleIdentity, keys_accepted, plan_bucket,
                                   role_identities)
from ioxhub.s3 import make_client
from ioxhub.settings import Settings, get_settings


def provision(settings: Settings | None = None, spec: OrgsSpec | None = None, *, dry_run: bool = False) -> ProvisionReport:
    """Plan every area from the file and the observed state, then (unless dry_run) apply the plan."""
    s = settings or get_settings()
    spec = spec or load_orgs(s.orgs_file)
    bucket = s.bucket
    if spec.storage.bucket and spec.storage.bucket != bucket:
        raise ProvisionError(f"{spec.source}: storage.bucket is {spec.storage.bucket!r} but IOXHUB_BUCKET is {bucket!r}; "
                             f"make them equal (or drop storage.bucket from the file)")
    changes: list[Change] = []
    notes: list[str] = []
    kafka_backend = provision_kafka(s, spec, changes, notes, dry_run)
    storage_backend = _provision_storage(s, spec, bucket, changes, notes, dry_run)
    return ProvisionReport(kafka_backend, storage_backend, changes, notes, applied=not dry_run)


def detect_storage(s: Settings) -> str:
    """'seaweedfs' or 'minio', from the S3 server's `Server` response header (any request answers it)."""
    url = f"{'https' if s.s3_secure else 'http'}://{s.s3_endpoint}/"
    try:
        response = urllib3.PoolManager(timeout=5, retries=False).request("GET", url)
    except urllib3.exceptions.HTTPError as exc:
        raise ProvisionError(f"cannot reach S3 at {s.s3_endpoint} (IOXHUB_S3_ENDPOINT): {exc.__class__.__name__}; "
                             f"start the local stack (`ioxhub stack up`) or check the address") from None
    server = response.headers.get("Server", "")
    if "seaweedfs" in server.lower():
        return "seaweedfs"
    if "minio" in server.lower():
        return "minio"
    raise ProvisionError(f"S3 at {s.s3_endpoint} is {server or 'an unknown server'}: provisioning supports "
                         f"SeaweedFS (local stack) and MinIO (compose)")


def _provision_storage(s: Settings, spec: OrgsSpec, bucket: str, changes: list[Change], notes: list[str], dry_run: bool) -> str:
    kind = detect_storage(s)
    admin = make_client(s, admin=True)
    try:
        bucket_changes = plan_bucket(bucket, admin.bucket_exists(bucket))
    except S3Error as exc:
        raise ProvisionError(f"S3 at {s.s3_endpoint} refused the admin keys (IOXHUB_S3_ADMIN_ACCESS_KEY): {exc.code}") from None
    changes += bucket_changes
    if bucket_changes and not dry_run:
        admin.make_bucket(bucket)
    identities = role_identities(spec, s, create=not dry_run)
    if kind == "seaweedfs":
        id_changes, id_notes = seaweedfs.plan_seaweed(bucket, identities, seaweedfs.observed_identities(s))
        notes += id_notes
        changes += id_changes
        if id_changes and not dry_run:
            seaweedfs.weed_shell(s, [cmd for c in id_changes for cmd in c.payload])
            still, _ = seaweedfs.plan_seaweed(bucket, identities, seaweedfs.observed_identities(s))
            if still:
                raise ProvisionError("SeaweedFS did not apply: " + "; ".join(f"{c.target} {c.action}" for c in still))
            changed = {c.target for c in id_changes}
            for ident in identities:
                if ident.name in changed:
                    _wait_identity_live(s, ident, bucket)
        notes.append(f"S3 roles on SeaweedFS: {', '.join(i.name for i in identities)}; keys of roles other than hub "
                     f"are in {s.local_secrets_file}")
        return f"SeaweedFS (local, {s.s3_endpoint})"
    madmin = minio.admin_client(s)
    users, policies = minio.observe(s, madmin, identities, bucket)
    id_changes = minio.plan_minio(bucket, identities, users, policies, root_access_key=s.s3_admin_access_key)
    changes += id_changes
    if not dry_run:
        for c in id_changes:
            method, *args = c.payload
            if method == "policy_add":
                madmin.policy_add(args[0], policy=args[1])
            elif method == "user_add":
                madmin.user_add(args[0], args[1])
            else:
                madmin.attach_policy([args[0]], user=args[1])
    return f"MinIO ({s.s3_endpoint})"


def _wait_identity_live(s: Settings, ident: RoleIdentity, bucket: str, timeout_s: float = 15.0) -> None:
    """The S3 gateway reloads identities from the filer about a second after `-apply`: wait until it
    accepts the new keys, so whoever provisioned can use them at once."""
    deadline = time.monotonic() + timeout_s
    while not keys_accepted(s, ident, bucket):
        if time.monotonic() > deadline:
            raise ProvisionError(f"the S3 gateway at {s.s3_endpoint} still refuses the keys of {ident.name!r} "
                                 f"{timeout_s:.0f} s after they were applied")
        time.sleep(0.25)
