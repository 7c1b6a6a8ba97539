"""Test infrastructure: a hermetic environment, a throwaway local stack, a migrated Airflow DB.

At import (before any test module can import airflow): every IOXHUB_* variable of the caller's shell
is dropped, IOXHUB_DATA_DIR and AIRFLOW_HOME point into a fresh temporary directory, DAG tasks retry
once after a second (IOXHUB_TASK_*), and the AIRFLOW_*
variables come from `ioxhub.stack.airflow.airflow_config` (the same function `stack up --airflow` uses).

Session fixtures (each paid only by the tests that ask for it):
- `stack_settings`: SeaweedFS + tansu (memory broker) on free loopback ports, started by
  `ioxhub.stack.local.up` (the code path of `ioxhub stack up`), IOXHUB_* exported, Settings returned.
- `airflow_db`: `airflow db migrate` once, so `dag.test()` works.
- `other_schemas_dir`: a copy of schemas/ with one policy_update version more (Settings side by side).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

for _name in [n for n in os.environ if n.startswith("IOXHUB_")]:
    del os.environ[_name]
_BASE = Path(tempfile.mkdtemp(prefix="ioxhub-tests-"))
atexit.register(shutil.rmtree, _BASE, True)
os.environ["IOXHUB_DATA_DIR"] = str(_BASE / "data")
os.environ["IOXHUB_AIRFLOW_HOME"] = str(_BASE / "airflow")
# DAG runs under test retry once, a second later: a failing task shows its retry, and a test of a failure
# does not wait the production backoff.
os.environ.update({"IOXHUB_TASK_RETRIES": "1", "IOXHUB_TASK_RETRY_DELAY_SECONDS": "1",
                   "IOXHUB_TASK_MAX_RETRY_DELAY_SECONDS": "2"})

from ioxhub.settings import PROJECT_ROOT, env_name, get_settings, load_settings, reset_settings_cache  # noqa: E402
from ioxhub.stack import airflow as stack_airflow  # noqa: E402  (does not import airflow)
from ioxhub.stack import local, process  # noqa: E402

os.environ["IOXHUB_AIRFLOW_PORT"] = str(process.free_ports(1)[0])
os.environ.update(stack_airflow.airflow_config(load_settings()))
reset_settings_cache()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """tmp_path under this session's own directory: pytest prunes /tmp/pytest-of-<user>/ to the last
    3 runs, so with several pytest sessions at once another run deletes a running session's tmp_path."""
    if config.option.basetemp is None:
        config.option.basetemp = str(_BASE / "pytest")


@pytest.fixture(scope="session")
def stack_settings():
    """A running SeaweedFS + tansu (memory broker) for this session; yields the matching Settings."""
    settings = local.up_on_free_ports(os.environ, broker_storage="memory")
    for field in ("s3_access_key", "s3_secret_key", "s3_admin_access_key", "s3_admin_secret_key"):
        os.environ[env_name(field)] = getattr(settings, field)
    reset_settings_cache()
    settings = get_settings()
    assert settings.s3_access_key and settings.kafka_bootstrap == os.environ["IOXHUB_KAFKA_BOOTSTRAP"]
    try:
        yield settings
    finally:
        local.down(settings)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata DB (SQLite in the session's AIRFLOW_HOME), migrated once per session."""
    settings = get_settings()
    env = stack_airflow.airflow_env(settings)
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return settings.resolved_airflow_home


@pytest.fixture
def other_schemas_dir(tmp_path) -> Path:
    """A copy of schemas/ plus a policy_update version the repository does not have (one more optional
    field: a compatible change)."""
    target = tmp_path / "schemas"
    shutil.copytree(PROJECT_ROOT / "schemas", target)
    latest = max((target / "policy_update").glob("v*.avsc"), key=lambda p: int(p.stem[1:]))
    schema = json.loads(latest.read_text())
    schema["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
    (target / "policy_update" / f"v{int(latest.stem[1:]) + 1}.avsc").write_text(json.dumps(schema))
    return target
