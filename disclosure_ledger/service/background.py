"""The service as a background process: started detached (``make demo``), found through
``LEDGER.service.json``, and stopped with SIGTERM (``make clean``,
``disclosure-ledger service stop``).

A detached service is not our child: it outlives the command that started it, as the
local broker does (:mod:`disclosure_ledger.local_broker.node`), and its log goes to a
file. Stopping it sends SIGTERM, which finishes the batch in hand, writes the final
checkpoint and removes the state file (:mod:`disclosure_ledger.service.server`).
"""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.local_broker.processes import (
    command_line,
    process_alive,
    send_signal,
    wait_exit,
)
from disclosure_ledger.service.state_file import ServiceState, read_service_state

# SIGTERM lets the batch in hand commit and uvicorn finish its requests (30 s at most).
STOP_TIMEOUT = 90.0


class ServiceProcessError(DisclosureLedgerError):
    """The background service could not be started or stopped (with what to look at)."""


def log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {log_path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(nothing in {log_path})"


def readyz(url: str, timeout: float = 2.0) -> tuple[int, str] | None:
    """``GET url/readyz``: (status, body), or None when nothing answers. A certificate
    is not checked here: this asks a service on this machine whether it is up."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=timeout, context=context) as answer:
            return int(answer.status), answer.read().decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace").strip()
    except (OSError, ValueError):
        return None


def wait_until_ready(
    ledger: Path, alive: Callable[[], bool], log_path: Path, timeout: float = 60.0
) -> ServiceState:
    """Wait until the service of ``ledger`` has written its state file and its /readyz
    answers 200; raise, with the log's tail, if ``alive()`` turns false first or on time."""
    deadline = time.monotonic() + timeout
    last: tuple[int, str] | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise ServiceProcessError(
                f"the service of {ledger} exited before it was ready; its log "
                f"({log_path}) ends:\n{log_tail(log_path)}"
            )
        state = read_service_state(ledger)
        if state is not None:
            last = readyz(state.url)
            if last is not None and last[0] == 200:
                return state
        time.sleep(0.2)
    raise ServiceProcessError(
        f"the service of {ledger} was not ready within {timeout:.0f} s (last /readyz: "
        f"{last}); its log ({log_path}) ends:\n{log_tail(log_path)}"
    )


def start_detached(
    command: Sequence[str],
    ledger: Path,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> ServiceState:
    """Start ``command`` (a ``disclosure-ledger serve`` command line for ``ledger``) in
    a session of its own, with ``env`` added to this environment, its output appended to
    ``log_path``; return once it is ready."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A shell starts the service in the background and exits at once (as the local
    # broker is started): the service is not our child, and outlives us.
    launcher = '"$@" </dev/null >>"$0" 2>&1 & echo $!'
    try:
        launched = subprocess.run(
            ["/bin/sh", "-c", launcher, str(log_path), *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            start_new_session=True,  # the terminal's Ctrl-C does not reach it
            env={**os.environ, **(env or {})},
            timeout=30,
            check=False,
        )
        pid = int(launched.stdout.strip())
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise ServiceProcessError(f"could not start the service of {ledger}: {exc}") from exc
    try:
        return wait_until_ready(ledger, lambda: process_alive(pid), log_path, timeout)
    except ServiceProcessError:
        send_signal(pid, signal.SIGTERM)
        wait_exit(pid, STOP_TIMEOUT)
        raise


def stop_service(ledger: Path, timeout: float = STOP_TIMEOUT) -> ServiceState | None:
    """SIGTERM the service of ``ledger`` and wait until it exits; the state of the service
    stopped, or None when none runs."""
    state = read_service_state(ledger)
    if state is None or not process_alive(state.pid):
        return None
    if "serve" not in command_line(state.pid):  # the pid was reused: not our service
        return None
    send_signal(state.pid, signal.SIGTERM)
    if not wait_exit(state.pid, timeout):
        raise ServiceProcessError(
            f"the service of {ledger} (pid {state.pid}) did not stop within {timeout:.0f} s "
            f"of SIGTERM; its batch may still be committing: wait, or `kill -KILL {state.pid}` "
            "(a restart resumes from the last committed batch)"
        )
    return state
