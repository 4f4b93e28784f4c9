"""The broker's operating-system process, seen through psutil.

Finding the JVM that runs ``kafka.Kafka`` for one state dir, whether it still lives,
signalling it and waiting for it to exit, and naming whoever holds a port. psutil reads
``/proc`` on Linux and the native interfaces elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker.polling import poll_until

__all__ = [
    "HOST",
    "command_line",
    "describe_listener",
    "port_free",
    "process_alive",
    "processes_running",
    "run_to_completion",
    "send_signal",
    "wait_exit",
]

HOST = "127.0.0.1"
_EXIT_POLL_S = 0.1


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process.

    A zombie counts as dead once all its threads are gone. The JVM's main thread turns
    zombie first while the others still exit and hold its files and listening sockets.
    """
    try:
        process = psutil.Process(pid)
        if process.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return True
        return process.num_threads() > 1
    except psutil.NoSuchProcess:  # ZombieProcess included: nothing left of it
        return False
    except psutil.AccessDenied:  # it exists; someone else's
        return True


def wait_exit(pid: int, timeout: float) -> bool:
    """Whether ``pid`` exited (see :func:`process_alive`) within ``timeout`` seconds."""
    return poll_until(
        lambda: not process_alive(pid),
        deadline=time.monotonic() + timeout,
        interval=_EXIT_POLL_S,
    )


def send_signal(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid``; a process that is gone already is no error."""
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).send_signal(sig)


def command_line(pid: int) -> list[str]:
    """The process's arguments; ``[]`` when it is gone or unreadable."""
    try:
        return [str(part) for part in psutil.Process(pid).cmdline()]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def processes_running(main_class: str) -> Iterator[int]:
    """Pids of the processes whose command line names ``main_class`` (a JVM's main class)."""
    for process in psutil.process_iter(["cmdline"]):
        if main_class in (process.info.get("cmdline") or ()):
            yield process.pid


def run_to_completion(
    command: list[str], *, cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run a tool with no input; its stdout and stderr together, as text, in ``stdout``.

    Raises OSError when it cannot start and subprocess.TimeoutExpired after ``timeout``.
    """
    return subprocess.run(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def port_free(port: int) -> bool:
    """Whether a listener could bind ``127.0.0.1:port`` (as the broker will, REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise BrokerError(f"cannot check port {HOST}:{port}: {exc}") from exc
    return True


def describe_listener(port: int) -> str:
    """Best effort: which process listens on ``port``, for error messages."""
    unknown = "another process (`ss -ltnp` shows which)"
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:  # macOS lists sockets to root only
        return unknown
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:  # another user's socket
                break
            args = " ".join(command_line(conn.pid))
            shown = args if len(args) <= 200 else args[:197] + "..."
            return f"another process (pid {conn.pid}: {shown})"
    return unknown
