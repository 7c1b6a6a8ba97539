"""The `ioxhub` command as a user runs it, on a hub of its own (free ports, its own data directory),
for the tests that drive the CLI end to end."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ioxhub.stack import local

IOXHUB = str(Path(sys.executable).parent / "ioxhub")


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without IOXHUB_*/AIRFLOW* settings, with a data dir and free ports."""
    return {**local.isolated_env(data_dir), **local.free_ports_env(airflow=True), **extra}


def ioxhub(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([IOXHUB, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=Path(env["IOXHUB_DATA_DIR"]).parent)
