"""A throwaway local stack for the benchmark: SeaweedFS + tansu (memory broker) on free ports.

The same code path as the test fixture (tests/conftest.py): `ioxhub.stack.local.up` with its own data
directory, then `provision` (topics, bucket) and a signing key per org (ingest verifies signatures).
`env()` gives the IOXHUB_* variables a child process needs to reach it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Iterator

from ioxhub.settings import Settings, env_name, load_settings, reset_settings_cache
from ioxhub.stack import local, process, tansu

CHILD_FIELDS = ("data_dir", "s3_endpoint", "s3_master_port", "s3_volume_port", "s3_filer_port", "kafka_bootstrap",
                "s3_access_key", "s3_secret_key", "s3_admin_access_key", "s3_admin_secret_key")


class BenchStack:
    """Start with `up()`, stop with `down()`; `settings` and `env()` describe it."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.settings: Settings | None = None

    def up(self) -> Settings:
        from app.demo import ensure_keys
        from ioxhub.orgs import load_orgs
        from ioxhub.provision.apply import provision

        self.settings = local.up_on_free_ports(local.isolated_env(self.data_dir), broker_storage="memory")
        os.environ.update(self.env())
        reset_settings_cache()
        provision(self.settings)
        ensure_keys([o.id for o in load_orgs(self.settings.orgs_file).orgs], self.settings)
        return self.settings

    def env(self, **extra: str) -> dict[str, str]:
        env = local.isolated_env(self.data_dir)
        for name in CHILD_FIELDS:
            value = getattr(self.settings, name)
            if value is not None:
                env[env_name(name)] = str(value)
        env.update(extra)
        return env

    def reset_broker(self) -> None:
        """An empty broker (memory storage: a restart forgets every record), topics provisioned again."""
        from ioxhub.provision.apply import provision

        tansu.stop(self.settings)
        tansu.start(self.settings, "memory")
        provision(self.settings)

    @contextlib.contextmanager
    def side_broker(self) -> Iterator[str]:
        """A second tansu (memory) of its own, for publishing without filling the hub's topics."""
        port = process.free_ports(1)[0]
        side = dataclasses.replace(self.settings, data_dir=self.data_dir / "side-broker",
                                   kafka_bootstrap=f"127.0.0.1:{port}")
        side.data_dir.mkdir(parents=True, exist_ok=True)
        tansu.start(side, "memory")
        try:
            yield side.kafka_bootstrap
        finally:
            tansu.stop(side)

    def down(self) -> None:
        if self.settings is not None:
            local.down(self.settings)
            self.settings = None


def demo_env(data_dir: Path) -> dict[str, str]:
    """Environment of an `ioxhub demo` of its own: data directory and free ports."""
    return {**local.isolated_env(data_dir), **local.free_ports_env(airflow=True)}


def stop_stack_of(env: dict[str, str]) -> None:
    """Stop whatever the demo left running in its data directory."""
    local.down(load_settings(env))
