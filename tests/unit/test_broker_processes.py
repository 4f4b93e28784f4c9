"""How the local broker sees processes: alive, gone, a zombie, found by its command line,
and who holds a port. Real child processes, no JVM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from disclosure_ledger.local_broker.polling import poll_until
from disclosure_ledger.local_broker.processes import (
    describe_listener,
    port_free,
    process_alive,
    processes_running,
    send_signal,
    wait_exit,
)


@pytest.fixture
def sleeper() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A child whose command line carries a marker no other process has."""
    marker = f"marker-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(60)", marker])
    yield child, marker
    if child.poll() is None:
        child.kill()
    child.wait(timeout=30)


def test_a_running_process_is_alive_and_found_by_its_command_line(
    sleeper: tuple[subprocess.Popen[bytes], str],
) -> None:
    child, marker = sleeper
    assert process_alive(child.pid)
    assert list(processes_running(marker)) == [child.pid]


def test_a_signalled_process_exits_and_is_no_longer_found(
    sleeper: tuple[subprocess.Popen[bytes], str],
) -> None:
    child, marker = sleeper
    send_signal(child.pid, signal.SIGTERM)
    child.wait(timeout=30)  # reaped: gone from the process table
    assert wait_exit(child.pid, timeout=5)
    assert not process_alive(child.pid)
    assert list(processes_running(marker)) == []
    send_signal(child.pid, signal.SIGTERM)  # a process already gone is no error


def test_a_zombie_whose_threads_are_gone_counts_as_dead(
    sleeper: tuple[subprocess.Popen[bytes], str],
) -> None:
    child, _ = sleeper
    os.kill(child.pid, signal.SIGKILL)
    # Not reaped yet: the pid stays in the table as a zombie, with nothing left running.
    assert wait_exit(child.pid, timeout=10)
    assert os.waitpid(child.pid, os.WNOHANG)[0] == child.pid  # it was a zombie until now
    child.returncode = -signal.SIGKILL


def test_a_port_someone_listens_on_is_not_free_and_names_the_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not port_free(port)
        holder = describe_listener(port)
        assert f"pid {os.getpid()}:" in holder
    assert poll_until(lambda: port_free(port), deadline=time.monotonic() + 5, interval=0.1)
    assert describe_listener(port) == "another process (`ss -ltnp` shows which)"


def test_poll_until_gives_up_at_the_deadline_and_lets_errors_through() -> None:
    calls: list[float] = []

    def never() -> bool:
        calls.append(time.monotonic())
        return False

    assert not poll_until(never, deadline=time.monotonic() + 0.3, interval=0.05)
    assert len(calls) >= 2

    def broken() -> bool:
        raise RuntimeError("the broker died")

    with pytest.raises(RuntimeError, match="the broker died"):
        poll_until(broken, deadline=time.monotonic() + 5, interval=0.05)
