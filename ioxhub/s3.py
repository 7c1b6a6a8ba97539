"""The S3 client (minio SDK) configured from Settings: the only place S3 connections are made."""
from __future__ import annotations

import urllib3
from minio import Minio

from ioxhub.errors import IoxhubError
from ioxhub.settings import Settings, get_settings


class StorageConfigError(IoxhubError):
    """S3 credentials or endpoint are missing."""


def make_client(settings: Settings | None = None, *, admin: bool = False,
                access_key: str | None = None, secret_key: str | None = None, retries: int = 3) -> Minio:
    """A minio client for the hub identity (default), the admin identity, or explicit keys."""
    s = settings or get_settings()
    if access_key is None:
        access_key, secret_key = (s.s3_admin_access_key, s.s3_admin_secret_key) if admin else (s.s3_access_key, s.s3_secret_key)
    if not access_key or not secret_key:
        which = "IOXHUB_S3_ADMIN_ACCESS_KEY/IOXHUB_S3_ADMIN_SECRET_KEY" if admin else "IOXHUB_S3_ACCESS_KEY/IOXHUB_S3_SECRET_KEY"
        raise StorageConfigError(f"no S3 credentials: set {which}, or start the local stack (`ioxhub stack up`), which generates them")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5, read=60),
        maxsize=8,
        retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    return Minio(s.s3_endpoint, access_key=access_key, secret_key=secret_key, secure=s.s3_secure,
                 region=s.s3_region, http_client=http)
