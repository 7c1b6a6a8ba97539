"""The S3 client (minio SDK) configured from Settings: the only place S3 connections are made."""
from __future__ import annotations

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings


class StorageConfigError(IoxhubError):
    """S3 credentials or endpoint are missing."""


# Everything a minio call raises for a server-side refusal or an unreachable server (`explain` words them).
S3_ERRORS = (MinioException, urllib3.exceptions.HTTPError)


def make_client(settings: Settings | None = None, *, admin: bool = False,
                access_key: str | None = None, secret_key: str | None = None, retries: int = 3,
                pool_size: int = 8) -> Minio:
    """A minio client for the hub identity (default), the admin identity, or explicit keys; `pool_size`
    connections kept open (a server answering many requests at once wants more)."""
    s = settings or get_settings()
    if access_key is None:
        access_key, secret_key = (s.s3_admin_access_key, s.s3_admin_secret_key) if admin else (s.s3_access_key, s.s3_secret_key)
    if not access_key or not secret_key:
        which = "IOXHUB_S3_ADMIN_ACCESS_KEY/IOXHUB_S3_ADMIN_SECRET_KEY" if admin else "IOXHUB_S3_ACCESS_KEY/IOXHUB_S3_SECRET_KEY"
        raise StorageConfigError(f"no S3 credentials: set {which}, or start the local stack (`ioxhub stack up`), which generates them")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        maxsize=pool_size,
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(s.s3_endpoint, access_key=access_key, secret_key=secret_key, secure=s.s3_secure,
                 region=s.s3_region, http_client=http)


def access_key_of(client: Minio) -> str | None:
    """The access key a client signs with (an identifier, not a secret), for error messages."""
    try:
        return client._provider.retrieve().access_key  # minio keeps its credentials provider private
    except Exception:  # noqa: BLE001  (a message helper must never fail)
        return None


def explain(exc: Exception, action: str, target: str, client: Minio | None = None, endpoint: str | None = None) -> str:
    """One sentence for a failed S3 call: what was refused or unreachable, and what to check.

    Never includes a secret: only the access key id, the endpoint, the object and the server's error code."""
    key = access_key_of(client) if client is not None else None
    who = f"access key {key}" if key else "the S3 keys in use"
    where = endpoint or "the S3 endpoint"
    if isinstance(exc, S3Error):
        code = exc.code
        if code == "InvalidAccessKeyId":
            return (f"S3 {action} {target} refused: the server at {where} does not know {who} "
                    "(InvalidAccessKeyId): check IOXHUB_S3_ACCESS_KEY")
        if code == "SignatureDoesNotMatch":
            return (f"S3 {action} {target} refused: the secret key does not match {who} "
                    "(SignatureDoesNotMatch): check IOXHUB_S3_SECRET_KEY")
        if code == "AccessDenied":
            return (f"S3 {action} {target} refused: {who} is not allowed to {action} there (AccessDenied): "
                    "its role's permissions (infra/orgs.yaml storage.roles) do not cover it")
        if code == "NoSuchBucket":
            return f"S3 {action} {target} failed: the bucket does not exist (NoSuchBucket): run `ioxhub provision`"
        return f"S3 {action} {target} failed: {code} ({exc.message})"
    if isinstance(exc, urllib3.exceptions.HTTPError):
        cause = getattr(exc, "reason", None) or exc
        text = "connection refused" if "refused" in str(cause).lower() else cause.__class__.__name__
        return (f"S3 {action} {target} failed: cannot reach the S3 server at {where} ({text}): "
                "is the stack up (`ioxhub stack up`)? else check IOXHUB_S3_ENDPOINT")
    return f"S3 {action} {target} failed: {exc}"
