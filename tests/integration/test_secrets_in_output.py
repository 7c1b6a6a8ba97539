"""No secret value in what the hub prints or logs: `ioxhub stack up --airflow`, `ioxhub provision`,
`ioxhub demo` (its DAG runs started by the published events on the standalone Airflow), a DAG run
triggered by hand on that Airflow (task log files under <airflow_home>/logs) and `ioxhub stack status`, run
as a user runs them on a stack of their own; then every generated secret is read back from where it is kept
(the secrets files, the private keys, Airflow's generated config and password) and searched for in the
captured output, every log file under the data directory and the catalog in the bucket.
Run with each log format (IOXHUB_LOG_FORMAT text and json). Slow (stack with Airflow + the whole demo,
~2-3 min each)."""
from __future__ import annotations

import base64
import configparser
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from ioxhub.settings import load_settings
from ioxhub.keys import load_private_key
from ioxhub.storage import ObjectStore
from ioxhub_cli import cli_env, ioxhub

pytestmark = [pytest.mark.integration, pytest.mark.airflow]
def secret_values(data_dir: Path, airflow_home: Path) -> dict[str, str]:
    """Every secret the stack, provisioning, key generation and Airflow generated: where -> value."""
    found: dict[str, str] = {}
    for path in sorted((data_dir / "secrets").glob("*.json")):
        for name, value in json.loads(path.read_text()).items():
            if "access_key" not in name and isinstance(value, str):     # access key ids are not secrets
                found[f"{path.name}:{name}"] = value
    for path in sorted((data_dir / "keys").rglob("*.key")):
        key = load_private_key(path)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        pem_body = "".join(path.read_text().splitlines()[1:-1])
        found[f"{path.name}:pem"] = pem_body
        found[f"{path.name}:raw-b64"] = base64.b64encode(raw).decode()
        found[f"{path.name}:raw-hex"] = raw.hex()
    config = configparser.ConfigParser(interpolation=None)
    config.read(airflow_home / "airflow.cfg")
    for section, option in (("api", "secret_key"), ("api_auth", "jwt_secret"), ("core", "fernet_key"),
                            ("webserver", "secret_key")):
        value = config.get(section, option, fallback="")
        if len(value) >= 8:
            found[f"airflow.cfg:{section}.{option}"] = value
    generated = airflow_home / "simple_auth_manager_passwords.json.generated"
    if generated.is_file():
        for user, password in json.loads(generated.read_text()).items():
            found[f"airflow password of {user}"] = password
    return found


def api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    request = urllib.request.Request(f"{base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def run_by_scheduler(env: dict[str, str], airflow_home: Path, dag_id: str, timeout_s: float = 300) -> str:
    """Unpause and trigger a DAG on the running `airflow standalone`; wait for the run to finish."""
    base = f"http://127.0.0.1:{env['IOXHUB_AIRFLOW_PORT']}"
    password = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
    token = api(base, "POST", "/auth/token", {"username": "admin", "password": password})["access_token"]
    deadline = time.monotonic() + timeout_s
    while True:  # the DAG processor parses the DAG folder shortly after start
        try:
            api(base, "GET", f"/api/v2/dags/{dag_id}", token=token)
            break
        except urllib.error.HTTPError:
            assert time.monotonic() < deadline, f"{dag_id} never showed up in Airflow"
            time.sleep(2)
    api(base, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False}, token)
    run_id = api(base, "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}, token)["dag_run_id"]
    while (state := api(base, "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", token=token)["state"]) not in ("success", "failed"):
        assert time.monotonic() < deadline, f"{dag_id} run {run_id} still {state}"
        time.sleep(2)
    return state


def hub_json_lines(task_logs) -> list[dict]:
    """The hub's JSON log lines in Airflow task logs: each task-log line is a JSON object of Airflow's whose
    "event" holds what the task wrote to stderr, here the hub's own JSON line."""
    lines = []
    for text in task_logs:
        for line in text.splitlines():
            try:
                event = json.loads(line).get("event", "")
            except ValueError:
                continue
            if isinstance(event, str) and event.startswith('{"time"'):
                lines.append(json.loads(event))
    return lines


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_secret_in_stack_up_demo_output_or_task_logs(tmp_path, log_format):
    env = cli_env(tmp_path / "data", COLUMNS="200", IOXHUB_LOG_FORMAT=log_format)
    data_dir = Path(env["IOXHUB_DATA_DIR"])
    outputs: dict[str, str] = {}
    try:
        for name, args, timeout in (("stack up", ("stack", "up", "--airflow"), 600), ("provision", ("provision",), 300),
                                    ("demo", ("demo",), 900), ("stack status", ("stack", "status"), 60)):
            done = ioxhub(env, *args, timeout=timeout)
            assert done.returncode == 0, f"`ioxhub {' '.join(args)}` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            outputs[f"{name} stdout"], outputs[f"{name} stderr"] = done.stdout, done.stderr
        settings = load_settings({k: v for k, v in env.items() if k.startswith("IOXHUB_")})
        assert run_by_scheduler(env, settings.resolved_airflow_home, "ingest_policies") == "success"
        catalog_store = ObjectStore(settings)
        for key in catalog_store.list("catalog/"):
            outputs[f"s3://{settings.bucket}/{key}"] = catalog_store.get_bytes(key).decode("utf-8", "replace")
    finally:
        down = ioxhub(env, "stack", "down", timeout=120)
    outputs["stack down stdout"], outputs["stack down stderr"] = down.stdout, down.stderr

    airflow_home = settings.resolved_airflow_home
    logs = [p for p in (data_dir / "logs").rglob("*") if p.is_file()]
    task_logs = [p for p in (airflow_home / "logs").rglob("*") if p.is_file()]
    demo_logs = [p for p in task_logs if "dag_id=ingest_datasets" in str(p) and "run_id=asset_triggered" in str(p)]
    assert demo_logs, f"the demo's event-triggered runs wrote no task logs under {airflow_home / 'logs'}"
    for path in logs + task_logs:
        outputs[str(path.relative_to(tmp_path))] = path.read_text(errors="replace")

    secrets = secret_values(data_dir, airflow_home)
    kinds = {where.split(":")[-1] for where in secrets}
    assert {"s3_secret_key", "s3_admin_secret_key", "broker_secret_key", "analyst_secret_key", "pem"} <= kinds, kinds
    assert sum(where.endswith(":pem") for where in secrets) >= 7          # one signing key per org
    leaks = [f"{where} in {name}" for where, value in secrets.items() for name, text in outputs.items() if value in text]
    # The searched texts are the real ones: the DAGs ran and logged their counts.
    assert "ingest datasets:" in "".join(outputs[str(p.relative_to(tmp_path))] for p in demo_logs)
    assert "ingest policies:" in "".join(outputs[str(p.relative_to(tmp_path))] for p in task_logs)
    if log_format == "json":       # the hub's own lines are JSON objects with their run's context
        lines = hub_json_lines(outputs[str(p.relative_to(tmp_path))] for p in task_logs)
        assert any(l["logger"] == "ioxhub.ingest" and l.get("run_id") and l.get("kind") == "datasets" for l in lines), \
            [l for l in lines if l["logger"].startswith("ioxhub")][-20:]
        assert any(l.get("release_id") and l.get("org") and l.get("topic") for l in lines)
    assert not leaks, leaks
