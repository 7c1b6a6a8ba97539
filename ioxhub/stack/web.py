"""Local web server: `ioxhub serve` (the portal and API) as a managed process for `stack up --web`.

It runs with the read-only storage identity of role `web` (infra/orgs.yaml; keys generated into the local
stack's secrets file by `ioxhub provision`), never with the hub's read-write keys. Logs, pid file, stop
and status as for the other local servers (process.py).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import sys
import urllib.request
from pathlib import Path

from ioxhub.settings import Settings
from ioxhub.stack import process
from ioxhub.stack.airflow import ioxhub_env
from ioxhub.stack.process import Port, ServiceSpec, StackError

NAME = "web"
PACKAGE = "ioxhub"
ROLE = "web"
READY_TIMEOUT_S = 60.0
STOP_SIGNAL, STOP_GRACE = signal.SIGTERM, 10.0   # uvicorn finishes open requests on SIGTERM


def url(settings: Settings) -> str:
    return f"http://{settings.web_host}:{settings.web_port}/"


def ports(settings: Settings) -> list[Port]:
    return [Port(settings.web_port, "IOXHUB_WEB_PORT")]


def ioxhub_binary() -> str | None:
    beside = Path(sys.executable).parent / "ioxhub"
    return str(beside) if beside.is_file() else shutil.which("ioxhub")


def read_only_settings(settings: Settings) -> Settings:
    """`settings` with the S3 keys of the read-only `web` role (from the local stack's secrets file) as both
    the server's storage keys (IOXHUB_WEB_S3_*, what app.web.app reads with) and the process's S3 keys, so
    the hub's read-write and admin keys never reach it."""
    try:
        stored = json.loads(settings.local_secrets_file.read_text())
    except (FileNotFoundError, ValueError):
        stored = {}
    access, secret = stored.get(f"{ROLE}_access_key"), stored.get(f"{ROLE}_secret_key")
    if not (access and secret):
        raise StackError(f"the web server's read-only storage identity (role {ROLE!r}) has no keys in "
                         f"{settings.local_secrets_file} yet: run `ioxhub stack up` and `ioxhub provision` first")
    return dataclasses.replace(settings, s3_access_key=access, s3_secret_key=secret, web_s3_access_key=access,
                               web_s3_secret_key=secret, s3_admin_access_key=None, s3_admin_secret_key=None)


def spec(settings: Settings) -> ServiceSpec:
    binary = process.check_binary(NAME, ioxhub_binary(), PACKAGE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOXHUB_")}
    env.update(ioxhub_env(read_only_settings(settings)))
    return ServiceSpec(name=NAME, argv=[binary, "serve", "--host", settings.web_host, "--port", str(settings.web_port)],
                       env=env, ports=ports(settings), cwd=settings.data_dir, package=PACKAGE,
                       extra={"endpoint": url(settings)}, stop_signal=STOP_SIGNAL, stop_grace=STOP_GRACE)


def probe(settings: Settings) -> None:
    """GET /login (the one page without a key) answers 200."""
    with urllib.request.urlopen(f"{url(settings)}login", timeout=5) as response:
        if response.status != 200:
            raise StackError(f"web: /login answered {response.status}")


def start(settings: Settings) -> process.PidRecord:
    service = spec(settings)
    record = process.start(service, settings.data_dir)
    process.wait_ready(service, record, settings.data_dir, lambda: probe(settings), READY_TIMEOUT_S, interval=0.5)
    return record
