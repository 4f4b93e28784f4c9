"""``disclosure-ledger serve`` as a child process of a test: on a free port, its log in a
file, ready once its /readyz answers 200; stopped with SIGTERM (its exit status returned).

Shared by the integration tests that talk to a real service. The child is registered in
``LIVE_PROCESSES``, so one a failing test leaves running is killed after it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.background import log_tail, wait_until_ready
from ledger.lake import LakeLocation
from tests.integration.reliability_support import CLI, LIVE_PROCESSES


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def issue_token(ledger: Path | LakeLocation, role: Role) -> str:
    """An API token of ``role`` for the service of ``ledger`` (its account store; a lake's is
    in its PostgreSQL database, shared by every instance)."""
    accounts = AccountStore(default_account_store(ledger))
    return accounts.issue_token(role, label=f"test-{role.value}", created_by="tests").token


class ServiceProcess:
    """One ``serve`` child process over ``ledger``; ``options`` are serve's other options."""

    def __init__(
        self,
        ledger: Path,
        log_path: Path,
        *options: str,
        env: dict[str, str] | None = None,
        location: str | None = None,
    ) -> None:
        """``location``: what ``--ledger`` is given when not ``ledger`` (a lake, whose local
        path ``ledger`` then is)."""
        self.ledger = ledger
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            str(CLI),
            "serve",
            "--ledger",
            location or str(ledger),
            "--listen",
            f"127.0.0.1:{self.port}",
            *options,
        ]
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        LIVE_PROCESSES.append(self.process)

    def wait_ready(self, timeout: float = 60.0) -> None:
        wait_until_ready(self.ledger, lambda: self.process.poll() is None, self.log_path, timeout)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def request(
        self, path: str, token: str | None = None, *, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        """(status, body) of a GET (or a JSON POST with ``body``) to the service."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return int(answer.status), answer.read()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()

    def json(self, path: str, token: str) -> Any:
        status, body = self.request(path, token)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, and the exit status once it has exited."""
        self.process.send_signal(signal.SIGTERM)
        return int(self.process.wait(timeout=timeout))

    def summary(self) -> str:
        return f"exit {self.process.returncode}; log:\n{log_tail(self.log_path, 40)}"
