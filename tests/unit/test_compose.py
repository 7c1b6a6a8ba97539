"""docker-compose.yml checked structurally (no Docker engine here): services, settings names, dependencies
and health checks, volumes, ports, Kafka's SASL/SCRAM + ACL configuration, the metrics services
(exporter, Prometheus, Grafana with a dashboard that queries only exported metrics), and the Iceberg
catalog's database on Postgres (its init script is run for real in tests/integration/test_outside_engines.py
when a PostgreSQL server is installed)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest
import yaml

from ioxhub.metrics import METRICS
from ioxhub.metrics_exporter import LIVE_METRICS
from ioxhub.settings import PROJECT_ROOT, setting_env_names

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
DOCKERFILE = PROJECT_ROOT / "infra" / "compose" / "airflow.Dockerfile"
KAFKA_START = PROJECT_ROOT / "infra" / "compose" / "kafka" / "start.sh"

VAR_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?][^}]*)?\}")
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())  # also resolves the x-* anchors and `<<` merges, as compose does


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def strings(node) -> list[str]:
    """Every string value of the parsed file (comments excluded, unlike the raw text)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


def interpolated(compose: dict) -> list[re.Match]:
    return [m for s in strings(compose) for m in VAR_RE.finditer(s)]


def env(service: dict) -> dict[str, str]:
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def env_example() -> dict[str, str]:
    pairs = [line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    return {k.strip(): v.strip() for k, v in pairs}


def depends(service: dict) -> dict[str, str]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


# ------------------------------------------------------------------------------------------- basics
def test_every_service_has_an_image_or_a_build(services):
    assert {"kafka", "minio", "postgres", "ioxhub-init", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name


def test_official_images_are_pinned(services):
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert services["postgres"]["image"].startswith("postgres:")
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag ({image})"


def test_every_ioxhub_name_is_a_setting(compose, services):
    known = setting_env_names()
    used = {k for s in services.values() for k in env(s) if k.startswith("IOXHUB_")}
    used |= {m.group(1) for m in interpolated(compose) if m.group(1).startswith("IOXHUB_")}
    assert used, "the deployment passes no ioxhub settings"
    assert used <= known, f"not settings of ioxhub.settings: {sorted(used - known)}"


def test_every_interpolated_variable_is_documented_in_env_example(compose):
    documented = env_example()
    for match in interpolated(compose):
        name, modifier = match.group(1), match.group(2) or ""
        if modifier.lstrip(":").startswith("-"):
            continue  # has a default
        assert name in documented, f"${{{name}}} is required by docker-compose.yml but missing from .env.example"


def test_secrets_come_from_env_never_from_the_file(services):
    for name, service in services.items():
        for key, value in env(service).items():
            if re.search(r"PASSWORD|SECRET|FERNET|JWT", key) and not key.endswith("_USERS"):
                assert "${" in value, f"{name}: {key} is a literal in docker-compose.yml; take it from .env"
    for key, value in env_example().items():
        if re.search(r"PASSWORD|SECRET|FERNET|CLUSTER_ID|ACCESS_KEY", key):
            assert re.search(r"changeme|replace", value), f".env.example: {key} must hold a placeholder, not a value"


# ------------------------------------------------------------------------------------------- dependencies
def test_depends_on_targets_exist_and_conditions_match_health_checks(services):
    for name, service in services.items():
        for target, condition in depends(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert target != name
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), f"{name} waits for {target} to be healthy, which has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is a one-shot job: restart must be 'no'"
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"


def test_long_running_services_have_health_checks(services):
    for name, service in services.items():
        if service.get("restart") != "no":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_no_dependency_cycles(services):
    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle: {' -> '.join(path + (name,))}"
        for target in depends(services[name]):
            visit(target, path + (name,))
    for name in services:
        visit(name, ())


def test_airflow_waits_for_migrations_provisioning_and_servers(services):
    for name in AIRFLOW_SERVICES:
        deps = depends(services[name])
        assert deps.get("airflow-init") == "service_completed_successfully", name
        assert deps.get("ioxhub-init") == "service_completed_successfully", name
        for server in ("postgres", "kafka", "minio"):
            assert deps.get(server) == "service_healthy", (name, server)
    assert depends(services["ioxhub-init"]) == {"kafka": "service_healthy", "minio": "service_healthy",
                                                "postgres": "service_healthy"}


# ------------------------------------------------------------------------------------------- volumes, ports
def test_named_volumes_are_declared_and_bind_mounts_exist(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for volume in service.get("volumes") or []:
            source = (volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0])
            if source.startswith((".", "/")):
                assert (PROJECT_ROOT / source).resolve().exists(), f"{name}: bind mount {source} does not exist"
            else:
                assert source in declared, f"{name}: volume {source} is not declared under volumes:"
                used.add(source)
    assert used == declared, f"declared but unused volumes: {declared - used}"
    for server, path in (("kafka", "/var/lib/kafka/data"), ("minio", "/data"), ("postgres", "/var/lib/postgresql/data")):
        assert any(v.endswith(":" + path) and not v.startswith(".") for v in services[server]["volumes"]), server


def test_published_ports_are_loopback_and_unique(services):
    seen = set()
    for name, service in services.items():
        for port in service.get("ports") or []:
            host_ip, host_port, container_port = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name}: publish {port} on 127.0.0.1 only"
            assert host_port not in seen, f"host port {host_port} published twice"
            seen.add(host_port)
    kafka_ports = {p.split(":")[2] for p in services["kafka"]["ports"]}
    assert "9093" not in kafka_ports, "the KRaft controller listener must not be published"
    assert {p.split(":")[2] for p in services["minio"]["ports"]} == {"9000", "9001"}
    assert {p.split(":")[2] for p in services["airflow-apiserver"]["ports"]} == {"8080"}


# ------------------------------------------------------------------------------------------- kafka security
def _listeners(value: str) -> dict[str, tuple[str, int]]:
    out = {}
    for item in value.split(","):
        name, _, rest = item.partition("://")
        host, _, port = rest.rpartition(":")
        out[name] = (host, int(port))
    return out


def test_kafka_is_kraft_with_scram_and_deny_by_default_acls(services):
    k = env(services["kafka"])
    assert k["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CLUSTER_ID" in k and "${" in k["CLUSTER_ID"]
    listeners = _listeners(k["KAFKA_LISTENERS"])
    advertised = _listeners(k["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in k["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    controller = k["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert set(listeners) == set(protocols)
    assert set(advertised) == set(listeners) - {controller}
    assert all(p.startswith("SASL_") for p in protocols.values()), f"an unauthenticated listener: {protocols}"
    assert k["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert k["KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL"] == "SCRAM-SHA-512"
    assert k["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    assert f"1@kafka:{listeners[controller][1]}" in k["KAFKA_CONTROLLER_QUORUM_VOTERS"]
    for name in set(listeners) - {controller}:
        jaas = k[f"KAFKA_LISTENER_NAME_{name}_SCRAM___SHA___512_SASL_JAAS_CONFIG"]
        assert "ScramLoginModule required" in jaas
    assert "PlainLoginModule" in k[f"KAFKA_LISTENER_NAME_{controller}_PLAIN_SASL_JAAS_CONFIG"]
    assert k["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert k["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert k["KAFKA_SUPER_USERS"] == "User:${IOXHUB_KAFKA_ADMIN_USERNAME}"
    assert k["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from ioxhub provision only
    published = {int(p.split(":")[2]) for p in services["kafka"]["ports"]}
    assert published <= {port for name, (_, port) in advertised.items()}


def test_clients_use_the_scram_listener(services):
    k = env(services["kafka"])
    advertised = _listeners(k["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(item.split(":") for item in k["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for name in ("ioxhub-init", *AIRFLOW_SERVICES):
        e = env(services[name])
        host, _, port = e["IOXHUB_KAFKA_BOOTSTRAP"].rpartition(":")
        listener = next(n for n, (h, p) in advertised.items() if (h, p) == (host, int(port)))
        assert e["IOXHUB_KAFKA_SECURITY_PROTOCOL"] == protocols[listener] == "SASL_PLAINTEXT", name
        assert e["IOXHUB_KAFKA_SASL_MECHANISM"] in k["KAFKA_SASL_ENABLED_MECHANISMS"].split(","), name
        assert e["IOXHUB_KAFKA_USERNAME"].startswith("${") and e["IOXHUB_KAFKA_PASSWORD"].startswith("${"), name
        assert e["IOXHUB_S3_ENDPOINT"] == "minio:9000", name
    init = env(services["ioxhub-init"])
    assert init["IOXHUB_KAFKA_ADMIN_USERNAME"] == "${IOXHUB_KAFKA_ADMIN_USERNAME:?set it in .env}"
    assert init["IOXHUB_S3_ADMIN_ACCESS_KEY"].startswith("${IOXHUB_S3_ADMIN_ACCESS_KEY")
    for name in AIRFLOW_SERVICES:  # the broker's super user never reaches Airflow: its "admin" is the hub user
        e = env(services[name])
        assert (e["IOXHUB_KAFKA_ADMIN_USERNAME"], e["IOXHUB_KAFKA_ADMIN_PASSWORD"]) == \
            (e["IOXHUB_KAFKA_USERNAME"], e["IOXHUB_KAFKA_PASSWORD"]), name
        assert "IOXHUB_S3_ADMIN_SECRET_KEY" not in e, name


def test_kafka_start_script_formats_with_the_admin_scram_user(services):
    assert any(v.startswith("./infra/compose/kafka/start.sh:") for v in services["kafka"]["volumes"])
    script = KAFKA_START.read_text()
    assert "--add-scram" in script and "SCRAM-SHA-512=[name=${IOXHUB_KAFKA_ADMIN_USERNAME}" in script
    assert script.rstrip().endswith("exec /etc/kafka/docker/run")
    assert "/tmp/ioxhub-admin-client.properties" in services["kafka"]["healthcheck"]["test"][1]
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n", str(KAFKA_START)]).returncode == 0


# ------------------------------------------------------------------------------------------- airflow
def test_airflow_services_run_the_four_components_on_postgres(services):
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands == {"airflow-apiserver": ["api-server"], "airflow-scheduler": ["scheduler"],
                        "airflow-dag-processor": ["dag-processor"], "airflow-triggerer": ["triggerer"]}
    assert services["airflow-init"]["command"] == ["db", "migrate"]
    assert services["ioxhub-init"]["command"] == ["provision"]
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        e = env(services[name])
        assert e["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        url = urlsplit(VAR_RE.sub("placeholder", e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
        assert url.scheme == "postgresql+psycopg2" and url.hostname == "postgres" and url.path == "/airflow"
        assert url.username == env(services["postgres"])["POSTGRES_USER"]
        api = urlsplit(e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert api.hostname == "airflow-apiserver" and api.path == "/execution/"
        assert f"./dags:{e['AIRFLOW__CORE__DAGS_FOLDER']}:ro" in services[name]["volumes"]
        assert e["IOXHUB_DAGS_DIR"] == e["AIRFLOW__CORE__DAGS_FOLDER"]
        assert services[name]["build"]["dockerfile"] == "infra/compose/airflow.Dockerfile"


def test_airflow_image_is_the_official_one_plus_the_locked_package():
    dockerfile = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert froms == ["apache/airflow:3.3.2-python3.11"]
    locked = re.search(r"^apache-airflow==(\S+)$", (PROJECT_ROOT / "requirements.lock").read_text(), re.M).group(1)
    assert froms[0].split(":")[1].startswith(locked + "-"), "image and lock disagree on the Airflow version"
    assert "-r /opt/ioxhub/requirements.lock" in dockerfile and "pip install --no-cache-dir --no-deps -e /opt/ioxhub" in dockerfile
    for source in re.findall(r"^COPY\s+(?:--\S+\s+)*(.+)\s+\S+$", dockerfile, re.M):
        for path in source.split():
            assert (PROJECT_ROOT / path).exists(), f"the Dockerfile copies {path}, which does not exist"
    # The build context is the repository root: its ignore file must exclude everything (.venv/, .ioxhub/
    # with local secrets, .env) except what the image copies.
    ignore = (DOCKERFILE.parent / (DOCKERFILE.name + ".dockerignore")).read_text().splitlines()
    assert ignore[0:1] == ["*"] or [line for line in ignore if not line.startswith("#")][0] == "*"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert not {".venv", ".ioxhub", ".env"} & allowed


# ------------------------------------------------------------------------------------------- metrics, dashboard
def test_prometheus_scrapes_the_exporter_and_grafana_is_provisioned(services):
    serve = services["ioxhub-metrics"]["command"]
    assert serve[:2] == ["metrics", "serve"]
    port = serve[serve.index("--port") + 1]
    config = yaml.safe_load((PROJECT_ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"ioxhub-metrics:{port}"]
    assert "./infra/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in services["prometheus"]["volumes"]
    # the exporter reads the volume the Airflow tasks write their textfiles to
    data_dir = env(services["airflow-scheduler"])["IOXHUB_DATA_DIR"]
    assert f"ioxhub-data:{data_dir}" in services["ioxhub-metrics"]["volumes"]
    assert f"ioxhub-data:{data_dir}" in services["airflow-scheduler"]["volumes"]
    grafana = services["grafana"]["volumes"]
    assert "./infra/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana
    assert "./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana
    datasource = yaml.safe_load((PROJECT_ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_dashboard_queries_only_metrics_the_hub_exports():
    exported = set(LIVE_METRICS) | {n + "_total" if kind == "counter" else n for n, (kind, _, _) in METRICS.items()}
    uid = yaml.safe_load((PROJECT_ROOT / "infra/grafana/provisioning/datasources/prometheus.yml").read_text())[
        "datasources"][0]["uid"]
    dashboard = json.loads((PROJECT_ROOT / "infra" / "grafana" / "dashboards" / "ioxhub.json").read_text())
    used = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        for target in panel["targets"]:
            used |= set(re.findall(r"\bioxhub_[a-z_]+", target["expr"]))
    assert used <= exported, f"not exported by ioxhub.metrics(_exporter): {sorted(used - exported)}"
    for needed in ("ioxhub_topic_lag_records", "ioxhub_dataset_freshness_seconds", "ioxhub_ingest_events_total",
                   "ioxhub_observations_refused_total", "ioxhub_run_duration_seconds"):
        assert needed in used, needed


# ------------------------------------------------------------------------------------------- web portal and API
WEB_START = PROJECT_ROOT / "infra" / "compose" / "web-start.sh"


def test_web_service_runs_the_hub_image_with_the_read_only_identity_only(services):
    web = services["ioxhub-web"]
    assert web["image"] == services["ioxhub-metrics"]["image"] and web["build"] == services["ioxhub-metrics"]["build"]
    assert web["entrypoint"] == ["sh", "/opt/ioxhub/web-start.sh"]
    assert f"./{WEB_START.relative_to(PROJECT_ROOT)}:/opt/ioxhub/web-start.sh:ro" in web["volumes"]
    e = env(web)
    # no read-write or admin S3 key, no Kafka credential: only the web role's keys, read from the secrets volume
    assert not {k for k in e if re.search(r"ACCESS_KEY|SECRET|PASSWORD|USERNAME", k)}, sorted(e)
    assert f"ioxhub-secrets:{e['IOXHUB_DATA_DIR']}:ro" in web["volumes"]
    assert "ioxhub-secrets:" + e["IOXHUB_DATA_DIR"] in services["ioxhub-init"]["volumes"]
    assert depends(web) == {"minio": "service_healthy", "postgres": "service_healthy",
                            "ioxhub-init": "service_completed_successfully"}
    assert web["ports"] == [f"127.0.0.1:{e['IOXHUB_WEB_PORT']}:{e['IOXHUB_WEB_PORT']}"]
    assert f"localhost:{e['IOXHUB_WEB_PORT']}/login" in " ".join(web["healthcheck"]["test"])


def test_web_role_reads_what_the_server_serves_and_writes_none():
    from ioxhub.orgs import load_orgs

    role = load_orgs(PROJECT_ROOT / "infra" / "orgs.yaml").storage.roles["web"]
    assert set(role.read) == {"raw", "harmonized", "quarantine", "curated", "catalog"} and role.write == ()


@pytest.mark.skipif(shutil.which("sh") is None, reason="no sh")
def test_web_start_script_serves_with_the_web_roles_keys(tmp_path):
    """The script run for real, with a `python` stub on PATH that reports how `ioxhub serve` would start."""
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "local-stack.json").write_text(json.dumps(
        {"web_access_key": "IOXWEB", "web_secret_key": "s3cr'et$x", "analyst_access_key": "IOXAN"}))
    stub = tmp_path / "bin" / "python"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\nif [ "$1" = "-m" ]; then echo "$IOXHUB_WEB_S3_ACCESS_KEY|$IOXHUB_WEB_S3_SECRET_KEY|${{IOXHUB_S3_ACCESS_KEY:-}}|$*"; '
                    f'exit 0; fi\nexec {shutil.which("python3")} "$@"\n')
    stub.chmod(0o755)
    done = subprocess.run(["sh", str(WEB_START)], capture_output=True, text=True, timeout=30,
                          env={"PATH": f"{stub.parent}:/usr/bin:/bin", "IOXHUB_DATA_DIR": str(tmp_path),
                               "IOXHUB_WEB_PORT": "8765"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "IOXWEB|s3cr'et$x||-m app.cli serve --host 0.0.0.0 --port 8765"


# ------------------------------------------------------------------------------------------- Iceberg catalog
ICEBERG_INIT = PROJECT_ROOT / "infra" / "compose" / "postgres" / "iceberg.sh"
HUB_IMAGE_SERVICES = (*AIRFLOW_SERVICES, "ioxhub-init", "ioxhub-metrics", "ioxhub-web")


def catalog_uri(service: dict) -> tuple:
    """(scheme, user, host, port, database) of a service's IOXHUB_ICEBERG_CATALOG_URI."""
    url = urlsplit(VAR_RE.sub("placeholder", env(service)["IOXHUB_ICEBERG_CATALOG_URI"]))
    return url.scheme, url.username, url.hostname, url.port, url.path


def test_every_service_running_hub_code_reads_the_catalog_on_postgres(services):
    for name in HUB_IMAGE_SERVICES:
        scheme, user, host, port, database = catalog_uri(services[name])
        assert (scheme, host, port, database) == ("postgresql+psycopg2", "postgres", 5432, "/iceberg"), name
        # the web server reads as the read-only role, as it reads the bucket with read-only keys
        assert user == ("iceberg_reader" if name == "ioxhub-web" else "iceberg"), name
        assert depends(services[name]).get("postgres") == "service_healthy", name
        assert "${ICEBERG_" in env(services[name])["IOXHUB_ICEBERG_CATALOG_URI"], name   # its password from .env


def test_postgres_creates_the_catalog_database_and_roles_on_first_start(services):
    postgres = services["postgres"]
    assert f"./{ICEBERG_INIT.relative_to(PROJECT_ROOT)}:/docker-entrypoint-initdb.d/iceberg.sh:ro" in postgres["volumes"]
    script = ICEBERG_INIT.read_text()
    for role, password in (("iceberg", "owner_password"), ("iceberg_reader", "reader_password")):
        assert f"CREATE ROLE {role} LOGIN PASSWORD :'{password}';" in script
    assert "CREATE DATABASE iceberg OWNER iceberg;" in script
    # the passwords the script reads are the ones the services' URIs carry
    assert env(postgres)["ICEBERG_DB_PASSWORD"] == "${ICEBERG_DB_PASSWORD:?set it in .env}"
    assert env(postgres)["ICEBERG_READER_PASSWORD"] == "${ICEBERG_READER_PASSWORD:?set it in .env}"
    assert "iceberg:${ICEBERG_DB_PASSWORD" in env(services["ioxhub-init"])["IOXHUB_ICEBERG_CATALOG_URI"]
    assert "iceberg_reader:${ICEBERG_READER_PASSWORD" in env(services["ioxhub-web"])["IOXHUB_ICEBERG_CATALOG_URI"]
    assert "127.0.0.1:5432:5432" in postgres["ports"]          # outside engines on this host


def test_the_catalog_tables_the_script_creates_are_pyicebergs():
    """A read-only role cannot create the catalog's tables, so the script does: with pyiceberg's columns."""
    from pyiceberg.catalog.sql import IcebergNamespaceProperties, IcebergTables

    script = ICEBERG_INIT.read_text()
    for model in (IcebergTables, IcebergNamespaceProperties):
        body = re.search(rf"CREATE TABLE {model.__tablename__} \((.*?)\n\);", script, re.S).group(1)
        columns = {m.group(1): m.group(2) for m in re.finditer(r"^\s+(\w+) VARCHAR\((\d+)\)", body, re.M)}
        assert columns == {c.name: str(c.type.length) for c in model.__table__.columns}, model.__tablename__
        primary = re.search(r"PRIMARY KEY \(([^)]*)\)", body).group(1).split(", ")
        assert primary == [c.name for c in model.__table__.primary_key.columns]
        assert f"GRANT SELECT ON iceberg_tables, iceberg_namespace_properties TO iceberg_reader" in script
