"""Local Airflow: the one place its environment is built, and `airflow standalone` for `stack up --airflow`.

`airflow_config(settings)` holds the AIRFLOW_* variables (the test conftest sets them before Airflow is
imported); `airflow_env(settings)` is the full environment of any local Airflow process (standalone, the
demo, `airflow db migrate` in tests): the caller's environment + those variables + every IOXHUB_* setting,
so DAG tasks see the same stack as the command that started Airflow. `Api(settings)`: its REST API
(/api/v2, a token from POST /auth/token with the SimpleAuthManager admin password).
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import signal
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Mapping

from ioxhub.lineage import provider_config
from ioxhub.settings import Settings, env_name
from ioxhub.stack import process
from ioxhub.stack.process import Port, ServiceSpec, StackError

NAME = "airflow"
PACKAGE = "apache-airflow"
READY_TIMEOUT_S = 180.0  # ~24 s measured alone; slower when the 2 cores are busy
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
# SIGINT is how `airflow standalone` shuts down: it terminates its components, which stop their own
# workers (SIGTERM to the whole tree leaves the scheduler waiting).
STOP_SIGNAL, STOP_GRACE = signal.SIGINT, 30.0


def airflow_config(settings: Settings) -> dict[str, str]:
    """AIRFLOW_* variables for local Airflow (standalone, dag.test(), CLI)."""
    api = f"http://127.0.0.1:{settings.airflow_port}"
    return {
        "AIRFLOW_HOME": str(settings.resolved_airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(Path(settings.dags_dir).resolve()),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",  # the default 32 pre-forks 32 LocalExecutor workers
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(settings.airflow_port),
        "AIRFLOW__API__BASE_URL": api,
        # Its default is http://localhost:8080/execution/ whatever [api] port says.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",  # new DAG files show up within 30 s
        **provider_config(settings),   # the OpenLineage provider sends to the hub's lineage transport
        # A task's calls to the execution API time out after 5 s by default: on 2 busy cores the api-server
        # took longer and a healthy task try was killed (and retried 60-120 s later).
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        # The hub's DAGs start by themselves: ingest on arriving records (their triggers), derive on new data.
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    }


def ioxhub_env(settings: Settings) -> dict[str, str]:
    """Every setting as its IOXHUB_* variable (None values left out)."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if value is not None:
            out[env_name(f.name)] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def airflow_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The full environment of a local Airflow process."""
    env = dict(os.environ if base is None else base)
    # `airflow standalone` starts its components as `airflow ...` from PATH: this environment's first.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(ioxhub_env(settings))
    env.update(airflow_config(settings))
    return env


def airflow_binary() -> str | None:
    beside = Path(sys.executable).parent / "airflow"
    return str(beside) if beside.is_file() else shutil.which("airflow")


def passwords_file(settings: Settings) -> Path:
    return settings.resolved_airflow_home / PASSWORDS_FILE


def url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.airflow_port}"


def ports(settings: Settings) -> list[Port]:
    return [Port(settings.airflow_port, "IOXHUB_AIRFLOW_PORT")]


def spec(settings: Settings) -> ServiceSpec:
    binary = process.check_binary(NAME, airflow_binary(), PACKAGE)
    return ServiceSpec(name=NAME, argv=[binary, "standalone"], env=airflow_env(settings),
                       ports=ports(settings), cwd=settings.data_dir,
                       package=PACKAGE, extra={"endpoint": url(settings)},
                       stop_signal=STOP_SIGNAL, stop_grace=STOP_GRACE)


def probe(settings: Settings) -> dict:
    """GET /api/v2/monitor/health; raises unless the metadata DB and the scheduler are healthy."""
    with urllib.request.urlopen(f"{url(settings)}/api/v2/monitor/health", timeout=5) as response:
        health = json.load(response)
    for part in ("metadatabase", "scheduler"):
        if (health.get(part) or {}).get("status") != "healthy":
            raise StackError(f"airflow {part} is not healthy yet: {health.get(part)}")
    return health


def ensure_admin_password(settings: Settings) -> Path:
    """Generate the admin password ourselves (owner-only file) before the first start.

    Left to itself, `airflow standalone` generates it and prints it to its stdout, i.e. into our log;
    with the file already there it only says where the password is."""
    path = passwords_file(settings)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"admin": secrets.token_urlsafe(18)}, out)
    return path


def start(settings: Settings) -> process.PidRecord:
    settings.resolved_airflow_home.mkdir(parents=True, exist_ok=True)
    ensure_admin_password(settings)
    service = spec(settings)
    record = process.start(service, settings.data_dir)
    process.wait_ready(service, record, settings.data_dir, lambda: probe(settings), READY_TIMEOUT_S, interval=1.0)
    return record


def stop(settings: Settings) -> int | None:
    return process.stop(settings.data_dir, NAME, STOP_SIGNAL, STOP_GRACE)


class Api:
    """The local Airflow's REST API as the admin user (token fetched on first use)."""

    def __init__(self, settings: Settings, timeout: float = 30.0):
        self.base, self.timeout, self.settings = url(settings), timeout, settings
        self._token: str | None = None

    def _call(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> Any:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return json.load(response)

    def token(self) -> str:
        if self._token is None:
            password = json.loads(passwords_file(self.settings).read_text())["admin"]
            self._token = self._call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
        return self._token

    def get(self, path: str, **query: Any) -> Any:
        """GET /api/v2/<path>?<query> (None values left out)."""
        params = urllib.parse.urlencode({k: v for k, v in query.items() if v is not None}, doseq=True)
        return self._call("GET", f"/api/v2/{path}" + (f"?{params}" if params else ""), token=self.token())

    def health(self) -> dict:
        return self._call("GET", "/api/v2/monitor/health")
