"""The local stack as a whole: `ioxhub stack up | down | status | logs` and the test fixture use this.

Entry points: `up`, `down`, `status`, `logs`, `endpoints`; `free_ports_env`, `isolated_env`, `start_guard`.

Order matters: SeaweedFS first (tansu keeps its data in it), then tansu, then Airflow, then the web
server (`ioxhub serve`, read-only storage identity); `down` stops them in reverse. A leftover server of this data directory that no pid file names (see
`process.leftovers`) is stopped by `up` (with a one-line note) and by `down`, and `status` shows it.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import psutil

from ioxhub.settings import Settings, load_settings, reset_settings_cache
from ioxhub.stack import airflow, process, seaweedfs, tansu, web
from ioxhub.stack.process import StackError
from ioxhub.stack.tansu import Storage

SERVICES = (seaweedfs.NAME, tansu.NAME, airflow.NAME, web.NAME)
PORTS = {seaweedfs.NAME: seaweedfs.ports, tansu.NAME: tansu.ports, airflow.NAME: airflow.ports, web.NAME: web.ports}
STOPS = {m.NAME: (m.STOP_SIGNAL, m.STOP_GRACE) for m in (seaweedfs, tansu, airflow, web)}


@dataclass(frozen=True)
class ServiceState:
    name: str
    running: bool
    pid: int | None
    endpoint: str
    health: str  # "ok", "-" (not running) or what the probe reported
    leftovers: tuple[int, ...] = ()  # pids of processes of the service that no pid file names

    @property
    def state(self) -> str:
        return "running" if self.running else "leftover" if self.leftovers else "stopped"


@dataclass(frozen=True)
class UpResult:
    settings: Settings  # reloaded: carries the generated keys
    started: list[str]
    already_running: list[str]
    notes: tuple[str, ...] = ()  # leftovers stopped before the start


def free_ports_env(*, airflow: bool = False) -> dict[str, str]:
    """IOXHUB_* port settings for a local stack of its own: free loopback ports, each SeaweedFS port's
    gRPC twin (+GRPC_OFFSET) free too, the web server's port, and an Airflow port when asked."""
    ports = process.free_ports(7 if airflow else 6, offsets=(0, seaweedfs.GRPC_OFFSET))
    s3, master, volume, filer, kafka, web_port = ports[:6]
    env = {"IOXHUB_S3_ENDPOINT": f"127.0.0.1:{s3}", "IOXHUB_S3_MASTER_PORT": str(master),
           "IOXHUB_S3_VOLUME_PORT": str(volume), "IOXHUB_S3_FILER_PORT": str(filer),
           "IOXHUB_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}", "IOXHUB_WEB_PORT": str(web_port)}
    if airflow:
        env["IOXHUB_AIRFLOW_PORT"] = str(ports[6])
    return env


def isolated_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without its IOXHUB_* and AIRFLOW* settings, with `data_dir`: what a
    second, independent hub runs with (CLI tests, the benchmark and its demo), plus `free_ports_env()`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IOXHUB_", "AIRFLOW"))}
    env["IOXHUB_DATA_DIR"] = str(data_dir)
    return env


def up_on_free_ports(base_env: Mapping[str, str], *, broker_storage: Storage = "s3", attempts: int = 3) -> Settings:
    """Start a throwaway stack for this process (tests, benchmarks): `os.environ` becomes `base_env` plus
    free loopback ports (a port picked as free can be taken before its server binds it: then it tries
    again), and a guard stops the servers if this process dies. Returns the stack's settings."""
    base = dict(base_env)
    for attempt in range(attempts):
        os.environ.clear()
        os.environ.update({**base, **free_ports_env()})
        reset_settings_cache()
        try:
            settings = up(load_settings(), broker_storage=broker_storage).settings
            break
        except StackError as exc:
            if "already in use" not in str(exc) or attempt == attempts - 1:
                raise
    start_guard(settings, os.getpid())
    return settings


def with_stack_keys(settings: Settings) -> Settings:
    """`settings` with unset S3 keys filled from the local stack's secrets file (as load_settings does)."""
    keys = seaweedfs.load_or_create_secrets(settings)
    fill = {k: keys[k] for k in ("s3_access_key", "s3_secret_key", "s3_admin_access_key", "s3_admin_secret_key")
            if getattr(settings, k) is None}
    return dataclasses.replace(settings, **fill) if fill else settings


def up(settings: Settings, *, with_airflow: bool = False, with_web: bool = False,
       broker_storage: Storage = "s3") -> UpResult:
    """Start what is not running yet and wait until each answers; on failure stop what this call started."""
    started: list[str] = []
    wanted = [seaweedfs.NAME, tansu.NAME] + ([airflow.NAME] if with_airflow else []) + ([web.NAME] if with_web else [])
    missing = [name for name in wanted if not process.running(settings.data_dir, name)]
    already = [name for name in wanted if name not in missing]
    notes = []
    for name in missing:  # a server of ours no pid file names (an earlier run's) would hold the ports
        pids = [p.pid for p in process.leftovers(settings.data_dir, name)]
        if pids:
            _stop_one(settings, name)
            notes.append(f"{name}: stopped a leftover server of {settings.data_dir} that no pid file named "
                         f"(pid {', '.join(map(str, pids))})")
    for name in missing:  # every port before any start: a taken one fails fast and starts nothing
        process.check_ports(name, PORTS[name](settings))
    if web.NAME in missing:  # so do the web server's storage keys (made by `ioxhub provision`)
        web.read_only_settings(settings)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for name in missing:
            if name == seaweedfs.NAME:
                seaweedfs.start(settings)
                settings = with_stack_keys(settings)
                reset_settings_cache()
            elif name == tansu.NAME:
                tansu.start(settings, broker_storage, seaweedfs.load_or_create_secrets(settings))
            elif name == airflow.NAME:
                airflow.start(with_stack_keys(settings))
            else:
                web.start(with_stack_keys(settings))
            started.append(name)
    except BaseException as exc:
        for name in reversed(started):
            _stop_one(settings, name)
        if isinstance(exc, OSError):  # the data directory cannot be prepared (a file in the way, rights)
            raise StackError(f"local stack: {exc.strerror or exc}: {exc.filename or settings.data_dir}") from None
        raise
    return UpResult(with_stack_keys(settings), started, already, tuple(notes))


def _stop_one(settings: Settings, name: str) -> int | None:
    return process.stop(settings.data_dir, name, *STOPS[name])


def down(settings: Settings) -> dict[str, int | None]:
    """Stop every server of this data directory, recorded or leftover (reverse start order); name -> stopped
    pid or None."""
    return {name: _stop_one(settings, name) for name in reversed(SERVICES)}


def status(settings: Settings) -> list[ServiceState]:
    """Each service: running (by its pid file), leftover (a process of it no pid file names) or stopped,
    its endpoint, and a real health probe."""
    states = []
    for name in SERVICES:
        found = process.running(settings.data_dir, name)
        if not found:
            strays = tuple(p.pid for p in process.leftovers(settings.data_dir, name))
            health = "no pid file names it; `ioxhub stack down` stops it" if strays else "-"
            states.append(ServiceState(name, False, None, _endpoint(settings, name), health, strays))
            continue
        record, _ = found
        states.append(ServiceState(name, True, record.pid, str(record.extra.get("endpoint", "")),
                                   _health(settings, name)))
    return states


def _endpoint(settings: Settings, name: str) -> str:
    return {seaweedfs.NAME: f"http://{settings.s3_endpoint}", tansu.NAME: settings.kafka_bootstrap,
            airflow.NAME: airflow.url(settings), web.NAME: web.url(settings)}[name]


def _health(settings: Settings, name: str) -> str:
    try:
        if name == seaweedfs.NAME:
            seaweedfs.probe(settings, seaweedfs.load_or_create_secrets(settings))
        elif name == tansu.NAME:
            tansu.probe(settings)
        elif name == airflow.NAME:
            airflow.probe(settings)
        else:
            web.probe(settings)
    except Exception as exc:  # the probe's failure is the answer
        return f"failing: {type(exc).__name__}: {str(exc)[:160]}"
    return "ok"


def log_file(settings: Settings, service: str) -> Path:
    if service not in SERVICES:
        raise StackError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    return process.log_path(settings.data_dir, service)


def logs(settings: Settings, service: str | None, lines: int) -> list[tuple[str, str]]:
    """The last `lines` lines of each service's log (or of one service): (name, text) pairs."""
    names = [service] if service else list(SERVICES)
    out = []
    for name in names:
        path = log_file(settings, name)
        if path.is_file():
            out.append((name, process.tail(path, lines)))
        elif service:
            raise StackError(f"{name} has no log yet ({path}); start it with `ioxhub stack up`")
    return out



def start_guard(settings: Settings, owner_pid: int) -> None:
    """A detached watcher that stops this data directory's servers once `owner_pid` is gone.

    For throwaway stacks (the test session): if their owner is killed before it can run `down`,
    nothing is left running. The guard exits by itself once no server of the directory runs.
    """
    import subprocess
    import sys

    owner = psutil.Process(owner_pid)
    code = "import sys; from ioxhub.stack.local import guard; guard(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])"
    subprocess.Popen([sys.executable, "-c", code, str(owner_pid), repr(owner.create_time()), str(settings.data_dir)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True, close_fds=True)


def guard(owner_pid: int, owner_create_time: float, data_dir: str, interval: float = 1.0) -> None:
    import time

    root = Path(data_dir)
    while any(process.running(root, name) for name in SERVICES):
        try:
            alive = process.same_start(psutil.Process(owner_pid).create_time(), owner_create_time)
        except psutil.NoSuchProcess:
            alive = False
        if not alive:
            for name in reversed(SERVICES):
                process.stop(root, name, *STOPS[name])
            return
        time.sleep(interval)


# ------------------------------------------------------------------------------------ where things are
@dataclass(frozen=True)
class Endpoints:
    """Where a client finds the local stack: addresses, the keys file (never the keys), the data directory."""
    kafka_bootstrap: str
    s3_endpoint: str
    bucket: str
    keys_file: Path
    data_dir: Path
    airflow_url: str | None = None               # None: Airflow not running
    airflow_passwords_file: Path | None = None
    web_url: str | None = None                   # None: the web server not running


def endpoints(settings: Settings) -> Endpoints:
    running = process.running(settings.data_dir, airflow.NAME)
    return Endpoints(tansu.bootstrap_address(settings), settings.s3_endpoint, settings.bucket,
                     settings.local_secrets_file, settings.data_dir,
                     airflow.url(settings) if running else None,
                     airflow.passwords_file(settings) if running else None,
                     web.url(settings) if process.running(settings.data_dir, web.NAME) else None)
