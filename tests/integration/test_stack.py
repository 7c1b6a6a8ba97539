"""The local stack for real: the session fixtures, and `ioxhub stack up | down | status | logs` as a user runs it."""
from __future__ import annotations

import io
import json
import os
import re
import socket
import time
import urllib.request
import uuid
from pathlib import Path

import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from minio import Minio
from minio.error import S3Error

from ioxhub.kafka import make_admin, make_consumer, make_producer
from ioxhub.s3 import make_client
from ioxhub.settings import load_settings
from ioxhub.stack import local, process, seaweedfs, tansu
from ioxhub_cli import cli_env, ioxhub

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------------------------------ fixtures
def test_fixture_stack_serves_kafka_and_s3(stack_settings):
    topic = f"stack-fixture-{uuid.uuid4().hex[:8]}"
    producer = make_producer(stack_settings)
    producer.send(topic, key=b"k", value=b"hello", headers=[("h", b"1")]).get(timeout=10)
    producer.close()
    consumer = make_consumer(None, stack_settings, consumer_timeout_ms=5000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = [(m.key, m.value, m.headers) for m in consumer]
    consumer.close()
    assert got == [(b"k", b"hello", [("h", b"1")])]

    hub = make_client(stack_settings)
    key = f"tests/{uuid.uuid4().hex}"
    hub.put_object(stack_settings.bucket, key, io.BytesIO(b"payload"), 7)
    response = hub.get_object(stack_settings.bucket, key)
    assert response.read() == b"payload"
    response.close()
    hub.remove_object(stack_settings.bucket, key)


def test_fixture_hub_identity_is_limited_to_the_hub_bucket(stack_settings):
    hub = make_client(stack_settings)
    with pytest.raises(S3Error) as denied:
        hub.put_object(stack_settings.broker_bucket, "intruder", io.BytesIO(b"x"), 1)
    assert denied.value.code == "AccessDenied"
    with pytest.raises(S3Error) as denied:
        hub.make_bucket(f"other-{uuid.uuid4().hex[:8]}")
    assert denied.value.code == "AccessDenied"
    admin = make_client(stack_settings, admin=True)
    assert admin.bucket_exists(stack_settings.bucket) and admin.bucket_exists(stack_settings.broker_bucket)


def test_fixture_kafka_metadata(stack_settings):
    admin = make_admin(stack_settings)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


PROBE_DAG = """
import io
from airflow.sdk import dag, task


@dag(dag_id="DAG_ID", schedule=None, catchup=False)
def probe():
    @task
    def write() -> str:
        from ioxhub.s3 import make_client
        from ioxhub.settings import get_settings
        s = get_settings()
        make_client(s).put_object(s.bucket, "KEY", io.BytesIO(b"from-airflow"), 12)
        return s.kafka_bootstrap

    write()


probe_dag = probe()
"""


@pytest.mark.airflow
def test_airflow_dag_test_task_sees_the_stack(stack_settings, airflow_db, tmp_path, monkeypatch):
    """dag.test() runs a real task here, and the task reaches the fixture's S3 through get_settings()."""
    import importlib.util
    import json

    dag_id, key = f"stack_probe_{uuid.uuid4().hex[:8]}", f"tests/airflow-{uuid.uuid4().hex}"
    (tmp_path / "probe_dag.py").write_text(PROBE_DAG.replace("DAG_ID", dag_id).replace("KEY", key))
    # dag.test() serializes the DAG from a bundle: add this test's folder as a second bundle.
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
        {"name": "stack-tests", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(tmp_path)}},
    ]))
    spec = importlib.util.spec_from_file_location("probe_dag", tmp_path / "probe_dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = module.probe_dag.test()
    assert run.state == "success"
    hub = make_client(stack_settings)
    response = hub.get_object(stack_settings.bucket, key)
    assert response.read() == b"from-airflow"
    response.close()


# ------------------------------------------------------------------------------- `ioxhub stack` as a user runs it
def printed(output: str, label: str) -> str:
    match = re.search(rf"^{label}:\s+(\S+)", output, re.M)
    assert match, f"`stack up` did not print {label!r}:\n{output}"
    return match.group(1)


def recorded_pids(data_dir: Path) -> list[int]:
    pids = []
    for pid_file in (data_dir / "run").glob("*.pid"):
        record = process.PidRecord.from_json(pid_file.read_text())
        leader = psutil.Process(record.pid)
        pids += [record.pid, *(c.pid for c in leader.children(recursive=True))]
    return pids


def gone(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)  # a zombie has exited once its last thread has; only the reaping is left
        return proc.status() == psutil.STATUS_ZOMBIE and proc.num_threads() <= 1
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def cli_stack(tmp_path):
    env = cli_env(tmp_path / "data")
    yield env
    ioxhub(env, "stack", "down")


def test_stack_up_down_up_keeps_kafka_messages_and_objects(cli_stack):
    env, data_dir = cli_stack, Path(cli_stack["IOXHUB_DATA_DIR"])
    up = ioxhub(env, "stack", "up")
    assert up.returncode == 0, up.stderr
    assert "seaweedfs: started" in up.stdout and "tansu: started" in up.stdout
    bootstrap, endpoint = printed(up.stdout, "Kafka bootstrap"), printed(up.stdout, "S3 endpoint")
    bucket = re.search(r"\(bucket (\S+)\)", up.stdout).group(1)
    keys_file = Path(printed(up.stdout, "S3 keys"))
    keys = json.loads(keys_file.read_text())
    assert not any(secret in up.stdout + up.stderr for secret in keys.values()), "stack up printed a key"
    assert oct(keys_file.stat().st_mode & 0o777) == "0o600"

    # A plain kafka-python client and a plain minio client against what was printed.
    topic, values = f"stack-{uuid.uuid4().hex[:8]}", [f"message {i}".encode() for i in range(5)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for value in values:
        producer.send(topic, value)
    producer.flush(timeout=30)
    producer.close()

    def read_topic() -> list[bytes]:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=5000)
        consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
        consumer.seek_to_beginning()
        got = sorted(m.value for m in consumer)
        consumer.close()
        return got

    assert read_topic() == values
    s3 = Minio(endpoint.removeprefix("http://"), access_key=keys["s3_access_key"], secret_key=keys["s3_secret_key"],
               secure=False)
    s3.put_object(bucket, "stack-test/object.bin", io.BytesIO(b"survives restarts"), 17)
    assert s3.get_object(bucket, "stack-test/object.bin").read() == b"survives restarts"

    again = ioxhub(env, "stack", "up")
    assert again.returncode == 0 and "seaweedfs: already running" in again.stdout and "tansu: already running" in again.stdout

    status = ioxhub(env, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for service in ("seaweedfs", "tansu"):
        assert re.search(rf"{service}\s.*running\s.*\bok\b", status.stdout), status.stdout
    assert re.search(r"airflow\s.*stopped", status.stdout)

    pids = recorded_pids(data_dir)
    assert len(pids) >= 2
    down = ioxhub(env, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if not gone(pid)] == [], "stack down left processes running"
    assert list((data_dir / "run").glob("*.pid")) == []
    s3_port = endpoint.rsplit(":", 1)[1]
    assert not Path(f"/tmp/seaweedfs-s3-{s3_port}.sock").exists(), "SeaweedFS sockets left in /tmp"
    stopped = ioxhub(env, "stack", "status")
    assert re.search(r"seaweedfs\s.*stopped", stopped.stdout) and re.search(r"tansu\s.*stopped", stopped.stdout)

    up2 = ioxhub(env, "stack", "up")
    assert up2.returncode == 0, up2.stderr
    assert read_topic() == values, "Kafka messages did not survive down + up"
    assert s3.get_object(bucket, "stack-test/object.bin").read() == b"survives restarts"

    logs = ioxhub(env, "stack", "logs", "tansu", "-n", "50")
    assert logs.returncode == 0 and "tansu broker" in logs.stdout


def test_stack_up_with_a_taken_port_says_which_and_starts_nothing(tmp_path):
    env = cli_env(tmp_path / "data")
    port = int(env["IOXHUB_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = ioxhub(env, "stack", "up")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0, "expected one line, not a traceback"
    assert f"port {port}" in result.stderr and "IOXHUB_KAFKA_BOOTSTRAP" in result.stderr
    assert not list((tmp_path / "data" / "run").glob("*.pid"))



def test_servers_whose_pid_files_were_lost_are_shown_and_stopped_by_up_and_down(cli_stack):
    """A server of this data directory running without its pid file (as `stop` of earlier versions left
    them) is 'leftover' in `stack status`, stopped with a one-line note by `stack up`, and by `stack down`."""
    env, data_dir = cli_stack, Path(cli_stack["IOXHUB_DATA_DIR"])
    settings = load_settings(env)
    for attempt in range(2):
        up = ioxhub(env, "stack", "up")
        assert up.returncode == 0, up.stderr
        pids = recorded_pids(data_dir)
        for pid_file in (data_dir / "run").glob("*.pid"):
            pid_file.unlink()
        status = ioxhub(env, "stack", "status")
        assert status.returncode == 1, status.stdout
        for service in ("seaweedfs", "tansu"):
            assert re.search(rf"{service}\s.*leftover", status.stdout), status.stdout
        if attempt == 0:
            again = ioxhub(env, "stack", "up")
            assert again.returncode == 0, again.stderr
            for service in ("seaweedfs", "tansu"):
                assert re.search(rf"^{service}: stopped a leftover server of {re.escape(str(data_dir))} "
                                 rf"that no pid file named \(pid \d+\)$", again.stdout, re.M), again.stdout
                assert f"{service}: started" in again.stdout
            assert [pid for pid in pids if not gone(pid)] == []
            assert ioxhub(env, "stack", "down").returncode == 0
        else:
            down = ioxhub(env, "stack", "down")
            assert down.returncode == 0 and "seaweedfs: stopped (pid" in down.stdout, down.stdout
        assert [pid for pid in pids if not gone(pid)] == [], "a leftover was left running"
        assert stack_processes(settings) == [] and [p for p in stack_ports(settings) if process.port_in_use(p)] == []
    stopped = ioxhub(env, "stack", "status")
    assert stopped.returncode == 0 and re.search(r"seaweedfs\s.*stopped", stopped.stdout), stopped.stdout

def test_stack_logs_of_an_unknown_service_is_a_clear_error(tmp_path):
    result = ioxhub(cli_env(tmp_path / "data"), "stack", "logs", "kafka")
    assert result.returncode == 2 and "unknown service 'kafka'" in result.stderr


@pytest.mark.airflow
def test_stack_up_airflow_serves_the_ui_and_down_stops_all_of_it(cli_stack):
    env, data_dir = cli_stack, Path(cli_stack["IOXHUB_DATA_DIR"])
    up = ioxhub(env, "stack", "up", "--airflow", timeout=600)
    assert up.returncode == 0, up.stderr
    url = printed(up.stdout, "Airflow UI")
    assert url == f"http://127.0.0.1:{env['IOXHUB_AIRFLOW_PORT']}"
    passwords = data_dir / "airflow" / "simple_auth_manager_passwords.json.generated"
    assert str(passwords) in up.stdout and passwords.is_file()
    assert not any(pw in up.stdout for pw in json.loads(passwords.read_text()).values()), "stack up printed the password"
    status = ioxhub(env, "stack", "status")
    assert re.search(r"airflow\s.*running\s.*\bok\b", status.stdout), status.stdout

    pids = recorded_pids(data_dir)
    assert len(pids) > 5  # standalone forks scheduler, api-server, dag-processor, triggerer, workers
    down = ioxhub(env, "stack", "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if not gone(pid)] == [], f"stack down left Airflow processes running:\n{down.stdout}"


def test_stack_up_web_serves_the_portal_with_the_read_only_identity_and_down_stops_it(cli_stack):
    env, data_dir = cli_stack, Path(cli_stack["IOXHUB_DATA_DIR"])
    refused = ioxhub(env, "stack", "up", "--web")   # no read-only storage identity yet: nothing is started
    assert refused.returncode == 2 and "`ioxhub provision` first" in refused.stderr, refused.stderr
    assert not (data_dir / "run").is_dir() or not list((data_dir / "run").glob("*.pid"))
    assert ioxhub(env, "stack", "up").returncode == 0 and ioxhub(env, "provision").returncode == 0
    up = ioxhub(env, "stack", "up", "--web")
    assert up.returncode == 0, up.stderr
    url = printed(up.stdout, "Portal and API")
    assert url == f"http://127.0.0.1:{env['IOXHUB_WEB_PORT']}/"
    with urllib.request.urlopen(url + "login", timeout=10) as response:
        assert response.status == 200 and b'<label for="key">' in response.read()
    status = ioxhub(env, "stack", "status", "--json")
    web = next(r for r in json.loads(status.stdout) if r["service"] == "web")
    assert (web["state"], web["health"], web["endpoint"]) == ("running", "ok", url)

    record = process.read_record(data_dir, "web")
    environ = psutil.Process(record.pid).environ()
    secrets = json.loads((data_dir / "secrets" / "local-stack.json").read_text())
    assert environ["IOXHUB_S3_ACCESS_KEY"] == secrets["web_access_key"]
    assert secrets["s3_secret_key"] not in environ.values() and secrets["s3_admin_secret_key"] not in environ.values()
    down = ioxhub(env, "stack", "down")
    assert down.returncode == 0 and f"web: stopped (pid {record.pid})" in down.stdout, down.stdout
    assert gone(record.pid)


def alive_writing_to(log: Path) -> list[int]:
    """Pids of live processes whose stdout is `log` (every server writes its log there)."""
    pids = []
    for proc in psutil.process_iter():
        try:
            if os.readlink(f"/proc/{proc.pid}/fd/1") == str(log) and proc.status() != psutil.STATUS_ZOMBIE:
                pids.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return pids


@pytest.mark.parametrize("service", ["seaweedfs", "tansu"])
def test_a_server_stopped_right_after_its_start_is_gone(service, tmp_path):
    """Start the real binary and stop it at once, 40 times: the record names the server's own command
    line (not one read while it was still exec'ing) and `stop` leaves no process and no port behind."""
    settings = load_settings({**local.free_ports_env(), "IOXHUB_DATA_DIR": str(tmp_path / "data")})
    (seaweedfs.home(settings) / "data").mkdir(parents=True)
    log = process.log_path(settings.data_dir, service)
    try:
        for attempt in range(40):
            spec = seaweedfs.spec(settings) if service == "seaweedfs" else tansu.spec(settings, "memory")
            record = process.start(spec, settings.data_dir)
            assert record.cmdline == spec.argv, f"start {attempt}: recorded {record.cmdline[:3]}"
            assert process.stop(settings.data_dir, service) == record.pid
            assert alive_writing_to(log) == [], f"start {attempt}: stop left the server running"
            assert [p.number for p in spec.ports if process.port_in_use(p.number)] == []
    finally:
        for pid in alive_writing_to(log):
            os.kill(pid, 9)


# ------------------------------------------------------------------------------- up / provision / down, many times
CYCLES, LANES = 50, 5


def stack_processes(settings) -> list[str]:
    """Live processes that belong to this stack, found independently of the supervision code: those whose
    command line names its data directory or its Kafka listener, or whose stdout is one of its logs."""
    marks = (str(settings.data_dir), f"tcp://{tansu.bootstrap_address(settings)}")
    logs = {str(process.log_path(settings.data_dir, name)) for name in local.SERVICES}
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid == os.getpid() or not process._is_alive(proc):
                continue
            cmdline = " ".join(proc.cmdline())
            stdout = os.readlink(f"/proc/{proc.pid}/fd/1") if os.path.exists(f"/proc/{proc.pid}/fd/1") else ""
            if any(mark in cmdline for mark in marks) or stdout in logs:
                found.append(f"{proc.pid}: {cmdline[:100]}")
        except (OSError, psutil.Error):
            continue
    return found


def stack_ports(settings) -> list[int]:
    return [p.number for name in (seaweedfs.NAME, tansu.NAME) for p in local.PORTS[name](settings)]


def lane_envs(data_dirs: list[Path]) -> list[dict[str, str]]:
    """A data directory and free ports for each lane, no port shared between lanes."""
    envs, used = [], set()
    while len(envs) < len(data_dirs):
        env = {**local.free_ports_env(), "IOXHUB_DATA_DIR": str(data_dirs[len(envs)])}
        ports = set(stack_ports(load_settings(env)))
        if not ports & used:
            envs.append(env)
            used |= ports
    return envs


def up_provision_down(env: dict[str, str], cycles: int) -> list[float]:
    """`stack up`, `provision`, `stack down` (the functions the commands call) `cycles` times on one data
    directory; after each `down` nothing of the stack may run and none of its ports be taken."""
    from ioxhub.provision.apply import provision

    data_dir = Path(env["IOXHUB_DATA_DIR"])
    seconds = []
    for cycle in range(cycles):
        started = time.monotonic()
        settings = load_settings(env)
        try:
            up = local.up(settings)
            assert up.started == [seaweedfs.NAME, tansu.NAME], f"cycle {cycle}: started {up.started}, running {up.already_running}, {up.notes}"
            report = provision(up.settings)
            assert report.applied
        finally:
            stopped = local.down(settings)
        assert stopped[seaweedfs.NAME] and stopped[tansu.NAME], f"cycle {cycle}: down stopped {stopped}"
        assert stack_processes(settings) == [], f"cycle {cycle}: left running after down"
        taken = [port for port in stack_ports(settings) if process.port_in_use(port)]
        assert taken == [], f"cycle {cycle}: ports still taken after down"
        assert list((data_dir / "run").glob("*.pid")) == []
        seconds.append(time.monotonic() - started)
    return seconds


def test_up_provision_down_50_times_leaves_nothing_behind(tmp_path):
    """50 cycles in 5 lanes of 10, each lane its own data directory and ports (a cycle mostly waits for
    SeaweedFS's start, ~3 s; lanes overlap those waits). Stopping one lane's stack must not touch another's."""
    from concurrent.futures import ThreadPoolExecutor

    envs = lane_envs([tmp_path / f"lane{lane}" for lane in range(LANES)])
    started = time.monotonic()
    with ThreadPoolExecutor(LANES) as pool:
        lanes = list(pool.map(lambda env: up_provision_down(env, CYCLES // LANES), envs))
    cycles = [s for lane in lanes for s in lane]
    assert len(cycles) == CYCLES
    print(f"{CYCLES} up/provision/down cycles in {time.monotonic() - started:.1f} s "
          f"({LANES} lanes; per cycle median {sorted(cycles)[len(cycles) // 2]:.1f} s, max {max(cycles):.1f} s)")
