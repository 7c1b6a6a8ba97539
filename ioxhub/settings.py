"""The one settings object of the hub: `Settings`, built by `load_settings()`, cached for the process by
`get_settings()` (the default of the entry points; library functions use the Settings they are handed).

Sources (environment `IOXHUB_<FIELD>`, an optional TOML file, defaults for the local stack), the checks
behind `SettingsError`, secrets, and why not pydantic-settings: docs/settings.md.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping

from ioxhub.errors import IoxhubError

ENV_PREFIX = "IOXHUB_"

# The repository checkout the package runs from (editable install, CI, compose image): it holds
# schemas/, infra/ and dags/.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(IoxhubError, ValueError):
    """A setting has a value of the wrong form; the message names the variable and the source."""


Check = tuple[Callable[[Any], bool], str]        # a test of a parsed value, and what it expects
PORT: Check = (lambda v: 1 <= v <= 65535, "a port number from 1 to 65535")
POSITIVE: Check = (lambda v: v > 0, "a number above 0")
NOT_NEGATIVE: Check = (lambda v: v >= 0, "a number from 0 up")


def one_of(*choices: str) -> Check:
    return (lambda v: v in choices, "one of " + ", ".join(choices))


def _setting(default: Any, help: str, *, secret: bool = False, check: Check | None = None) -> Any:
    # Secrets stay out of repr(): a Settings object in a log line, a traceback or a test failure shows none.
    return field(default=default, repr=not secret, metadata={"help": help, "secret": secret, "check": check})


@dataclass(frozen=True)
class Settings:
    # --- where things live -------------------------------------------------------------------------
    data_dir: Path = _setting(Path(".ioxhub"), "Local data directory: server data, logs, pid files, secrets, keys.")
    orgs_file: Path = _setting(PROJECT_ROOT / "infra" / "orgs.yaml", "Declarative provisioning file (orgs, topics, zones, keys).")
    schemas_dir: Path = _setting(PROJECT_ROOT / "schemas", "Avro schema registry directory (<name>/vN.avsc).")
    dags_dir: Path = _setting(PROJECT_ROOT / "dags", "Airflow DAG folder.")
    airflow_home: Path | None = _setting(None, "AIRFLOW_HOME for local Airflow (default: <data_dir>/airflow).")

    # --- Kafka ---------------------------------------------------------------------------------------
    kafka_bootstrap: str = _setting("127.0.0.1:19092", "Kafka bootstrap servers, comma-separated host:port.")
    kafka_security_protocol: str = _setting("PLAINTEXT", "PLAINTEXT, SASL_PLAINTEXT or SASL_SSL.",
                                            check=one_of("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"))
    kafka_sasl_mechanism: str | None = _setting(None, "SCRAM-SHA-256 or SCRAM-SHA-512 when SASL is on.",
                                                check=one_of("SCRAM-SHA-256", "SCRAM-SHA-512"))
    kafka_username: str | None = _setting(None, "SASL user of this client.")
    kafka_password: str | None = _setting(None, "SASL password of this client.", secret=True)
    kafka_admin_username: str | None = _setting(None, "SASL user allowed to create topics, users and ACLs (provisioning).")
    kafka_admin_password: str | None = _setting(None, "Its password.", secret=True)

    # --- S3 object storage ---------------------------------------------------------------------------
    s3_endpoint: str = _setting("127.0.0.1:18333", "S3 endpoint host:port (MinIO in compose, SeaweedFS locally).")
    s3_secure: bool = _setting(False, "Use HTTPS for S3.")
    s3_region: str = _setting("us-east-1", "S3 region name.")
    s3_access_key: str | None = _setting(None, "S3 access key of the hub (ingest/derive). Local stack: generated.", secret=False)
    s3_secret_key: str | None = _setting(None, "S3 secret key of the hub. Local stack: generated.", secret=True)
    s3_admin_access_key: str | None = _setting(None, "S3 admin access key (provisioning only). Local stack: generated.")
    s3_admin_secret_key: str | None = _setting(None, "S3 admin secret key. Local stack: generated.", secret=True)
    bucket: str = _setting("ioxhub", "Bucket holding the zones raw/ harmonized/ curated/ quarantine/ and the catalog.")
    iceberg_catalog_uri: str | None = _setting(None, "SQLAlchemy URI of the Iceberg SQL catalog (compose: the Postgres database `iceberg`). Default: SQLite at <data_dir>/iceberg/catalog.db.", secret=True)

    # --- local stack ports (loopback only) -----------------------------------------------------------
    s3_master_port: int = _setting(19333, "Local SeaweedFS master port.", check=PORT)
    s3_volume_port: int = _setting(18081, "Local SeaweedFS volume port.", check=PORT)
    s3_filer_port: int = _setting(18888, "Local SeaweedFS filer port.", check=PORT)
    broker_bucket: str = _setting("ioxhub-broker", "Bucket where the local tansu broker keeps its data (durable mode).")
    airflow_port: int = _setting(18080, "Local Airflow api-server port (`ioxhub stack up --airflow`).", check=PORT)

    # --- ingest --------------------------------------------------------------------------------------
    consumer_group: str = _setting("ioxhub-ingest", "Kafka consumer group prefix of the ingest DAGs.")
    ingest_max_records: int = _setting(200_000, "Most Kafka records one ingest run consumes.", check=POSITIVE)
    ingest_idle_ms: int = _setting(1500, "An ingest run stops polling after this long without records.", check=POSITIVE)
    ingest_lease_seconds: int = _setting(60, "An ingest run, replay or quarantine retry holds its kind's lease (one at a time: DAG, follow, CLI) this long past its last renewal.", check=POSITIVE)
    follow_idle_ms: int = _setting(300, "`ingest --follow` ends a batch after this long without records (then applies it).", check=POSITIVE)
    follow_batch_seconds: float = _setting(2.0, "`ingest --follow` ends a batch after polling this long even while records keep coming.", check=POSITIVE)
    require_signatures: bool = _setting(True, "Ingest refuses records without a valid Ed25519 signature of their org.")
    staging_max_age_hours: float = _setting(72.0, "A release still incomplete in staging/ this long after its first staged event is quarantined (incomplete-release).", check=NOT_NEGATIVE)
    trigger_poll_seconds: float = _setting(2.0, "How often the ingest DAGs' event triggers compare the topics' end offsets with the ingest groups' committed offsets.", check=POSITIVE)
    ingest_safety_interval_minutes: int = _setting(60, "An ingest DAG's trigger fires after this long without firing, records seen or not (a safety net: records left by a failed run).", check=POSITIVE)

    # --- operations: logs, waiting for the ingest lease, `ioxhub status --check` (docs/operations.md) -------------------
    log_format: str = _setting("text", "Log lines: text (human-readable) or json (one JSON object a line with run id, org, dataset, release, topic, partition, offsets).",
                               check=one_of("text", "json"))
    lock_wait_seconds: float = _setting(60.0, "How long a replay or quarantine retry waits for the ingest lease of its kind (held by an ingest run or a follow process) before giving up.", check=NOT_NEGATIVE)
    check_max_lag: int = _setting(100_000, "`status --check`: most records a topic may wait for the ingest.", check=NOT_NEGATIVE)
    check_staging_hours: float = _setting(24.0, "`status --check`: longest a release may wait incomplete in staging/ (hours).", check=NOT_NEGATIVE)
    check_quarantine_rate: float = _setting(0.05, "`status --check`: highest share of the consumed events of a DAG's last run that may be quarantined.",
                                            check=(lambda v: 0 <= v <= 1, "a number from 0 to 1"))
    check_key_expiry_days: float = _setting(14.0, "`status --check`: a signing key ending within this many days is a problem.", check=NOT_NEGATIVE)

    # --- table maintenance: `ioxhub maintain`, DAG maintain_tables (docs/maintenance.md) -----------------------
    snapshot_retention_days: float = _setting(30.0, "`maintain` expires a table's snapshots older than this many days (an as-of can no longer name them), except the last IOXHUB_SNAPSHOT_KEEP.", check=NOT_NEGATIVE)
    snapshot_keep: int = _setting(10, "How many of each table's latest snapshots `maintain` always keeps, however old.", check=POSITIVE)
    orphan_grace_hours: float = _setting(24.0, "`maintain` deletes a file under a table's location that no kept snapshot or metadata references only when it is older than this (a writer uploads before it commits).", check=NOT_NEGATIVE)

    # --- Airflow runs (every task of the hub DAGs) ----------------------------------------------------
    task_retries: int = _setting(3, "Retries of a failed DAG task before its run fails.", check=NOT_NEGATIVE)
    task_retry_delay_seconds: int = _setting(60, "Wait before the first retry.", check=NOT_NEGATIVE)
    task_retry_backoff: float = _setting(2.0, "Each further retry waits this many times longer (exponential backoff; 1 = constant).",
                                         check=(lambda v: v >= 1, "a number from 1 up"))
    task_max_retry_delay_seconds: int = _setting(600, "Longest wait between two tries.", check=NOT_NEGATIVE)
    task_timeout_minutes: float = _setting(20.0, "A task try running longer is stopped and counts as failed (a hung poll or request).", check=POSITIVE)
    dagrun_timeout_minutes: int = _setting(120, "A DAG run still unfinished after this long fails, so the next run of a one-run-at-a-time DAG can start.", check=POSITIVE)

    # --- lineage and metrics -------------------------------------------------------------------------
    lineage_transport: str = _setting("file", "Where OpenLineage run events go: file (JSON lines in <data_dir>/lineage/), console, http or none.",
                                      check=one_of("file", "console", "http", "none"))
    lineage_url: str | None = _setting(None, "OpenLineage HTTP endpoint when the transport is http (e.g. Marquez: http://host:5000).")

    # --- web application: `ioxhub serve` (API and portal; docs/api.md) -----------------------------------------
    web_host: str = _setting("127.0.0.1", "Address `ioxhub serve` listens on.")
    web_port: int = _setting(8765, "Port `ioxhub serve` listens on (the portal at /, the API at /api/v1).", check=PORT)
    web_workers: int = _setting(1, "Server processes of `ioxhub serve` (uvicorn workers; more use more cores).", check=POSITIVE)
    web_s3_access_key: str | None = _setting(None, "S3 access key of the web application (read-only role `web`). Local stack: the one `ioxhub provision` generated.")
    web_s3_secret_key: str | None = _setting(None, "Its secret key.", secret=True)
    web_row_limit: int = _setting(1_000_000, "Most rows one API request returns (csv, json, jsonl, parquet); page with limit/cursor for more.", check=POSITIVE)
    web_sdmx_row_limit: int = _setting(100_000, "Most observations one SDMX response holds (SDMX messages are built whole in memory).", check=POSITIVE)
    web_key_cache_seconds: float = _setting(5.0, "How long the server caches an API key record (a revoked key stops working within this time).", check=NOT_NEGATIVE)
    web_cache_mb: float = _setting(256.0, "Memory of the API's response cache (encoded responses of immutable snapshots, each at most 1/8 of it); 0 turns it off.", check=NOT_NEGATIVE)
    web_catalog_cache_seconds: float = _setting(2.0, "How long the API reuses a dataset's catalog entry (a new snapshot is served within this time); 0: read it on every request.", check=NOT_NEGATIVE)
    web_session_secret: str | None = _setting(None, "Secret signing the portal's session cookies (default: random per server start, shared by its workers, so sessions end on restart).", secret=True)
    web_session_hours: float = _setting(12.0, "How long a portal sign-in lasts.", check=POSITIVE)

    # ------------------------------------------------------------------------------------------------
    @property
    def resolved_airflow_home(self) -> Path:
        return (self.airflow_home or self.data_dir / "airflow").resolve()

    @property
    def local_secrets_file(self) -> Path:
        return self.data_dir / "secrets" / "local-stack.json"

    def describe(self) -> dict[str, str]:
        """All settings as printable strings, secrets masked."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if (f.metadata["secret"] and value) else ("" if value is None else str(value))
        return out

    def secret_values(self) -> list[str]:
        """The secret values in force (for tests and log scrubbing)."""
        return [v for f in dataclasses.fields(self) if f.metadata["secret"] and (v := getattr(self, f.name))]


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def setting_env_names() -> set[str]:
    """Every IOXHUB_* variable the settings read (docs, compose validation)."""
    return {env_name(f.name) for f in dataclasses.fields(Settings)} | {ENV_PREFIX + "CONFIG"}


_BOOLEANS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
_EXPECTED = {"int": "a whole number", "float": "a finite number", "str": "a string", "Path": "a path (a string)",
             "bool": "a boolean (true/false, yes/no, on/off, 1/0)"}


def _coerce(f: dataclasses.Field, raw: Any, where: str) -> Any:
    """The value of setting `f` given as `raw` (a string from the environment, or a TOML value); a
    SettingsError naming `where` (the variable, or the file and key), the value and what is expected."""
    annotation = str(f.type)
    kind = annotation.split(" ")[0]
    if raw is None or (annotation.endswith("| None") and raw == ""):
        return None
    if kind == "bool":
        value = raw if isinstance(raw, bool) else _BOOLEANS.get(str(raw).strip().lower())
    elif kind in ("int", "float"):
        value = _number(raw, kind)
    else:
        value = (Path(raw).expanduser() if kind == "Path" else raw) if isinstance(raw, str) else None
    if value is None:
        raise SettingsError(f"{where} = {raw!r}: not {_EXPECTED[kind]}")
    check = f.metadata["check"]
    if check is not None and not check[0](value):
        raise SettingsError(f"{where} = {raw!r}: not {check[1]}")
    return value


def _number(raw: Any, kind: str) -> int | float | None:
    if isinstance(raw, bool) or (kind == "int" and isinstance(raw, float)):
        return None
    try:
        value = int(raw) if kind == "int" else float(raw)
    except (TypeError, ValueError):
        return None
    return value if kind == "int" or math.isfinite(value) else None


def load_settings(environ: Mapping[str, str] | None = None, config_file: Path | None = None) -> Settings:
    """Build Settings from the environment, the optional TOML file and the defaults."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    config_path = config_file or (Path(environ[ENV_PREFIX + "CONFIG"]) if environ.get(ENV_PREFIX + "CONFIG") else None)
    if config_path is None and Path("ioxhub.toml").is_file():
        config_path = Path("ioxhub.toml")
    if config_path is not None:
        try:
            file_values = tomllib.loads(config_path.read_text())
        except FileNotFoundError:
            raise SettingsError(f"{ENV_PREFIX}CONFIG: settings file {config_path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_path}: not valid TOML ({exc})") from None
    known = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(file_values) - set(known))
    if unknown:
        raise SettingsError(f"{config_path}: unknown setting(s) {', '.join(unknown)}")

    values: dict[str, Any] = {}
    for name, f in known.items():
        if env_name(name) in environ:
            values[name] = _coerce(f, environ[env_name(name)], env_name(name))
        elif name in file_values:
            values[name] = _coerce(f, file_values[name], f"{config_path}: {name}")
    settings = Settings(**values)
    settings = dataclasses.replace(settings, data_dir=settings.data_dir.resolve())
    return _with_local_stack_secrets(settings)


def _with_local_stack_secrets(settings: Settings) -> Settings:
    """Fill unset S3 keys from the secrets the local stack generated (if it did)."""
    path = settings.local_secrets_file
    if not path.is_file():
        return settings
    try:
        generated = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SettingsError(f"{path}: the local stack's secrets file cannot be read ({exc}); "
                            "remove it and run `ioxhub stack up` to generate new keys") from None
    fill = {k: generated[k] for k in ("s3_access_key", "s3_secret_key", "s3_admin_access_key", "s3_admin_secret_key")
            if getattr(settings, k) is None and k in generated}
    # the web role's keys, generated by `ioxhub provision` (role `web` of infra/orgs.yaml)
    fill.update({f"web_s3_{k}": generated[f"web_{k}"] for k in ("access_key", "secret_key")
                 if getattr(settings, f"web_s3_{k}") is None and generated.get(f"web_{k}")})
    return dataclasses.replace(settings, **fill) if fill else settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests, or after the local stack generated its secrets)."""
    get_settings.cache_clear()


def reference_markdown() -> str:
    """The configuration reference table of README.md (a test keeps the two identical)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, Path):
            default = default.relative_to(PROJECT_ROOT) if default.is_absolute() and default.is_relative_to(PROJECT_ROOT) else default
        shown = "–" if default is None else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        secret = " (secret)" if f.metadata["secret"] else ""
        lines.append(f"| `{env_name(f.name)}` | {shown} | {f.metadata['help']}{secret} |")
    lines.append(f"| `{ENV_PREFIX}CONFIG` | `ioxhub.toml` if present | A TOML file with any of the settings above (keys: the names without the prefix, lower case). |")
    return "\n".join(lines)
