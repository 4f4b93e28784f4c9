"""A PostgreSQL server of the tests' own, as the broker fixtures start a broker of their own.

:class:`PostgresServer` runs Debian's ``initdb`` into a fresh directory and ``pg_ctl`` on a
free loopback port (locked against other test runs, :func:`tests.integration.ports.locked_ports`),
trusting loopback connections, so no password is needed; it listens on 127.0.0.1 and on a
Unix socket in its own directory only. Run as root, the server runs as the ``postgres``
user (PostgreSQL refuses to run as root). Each test asks for a database of its own
(:meth:`PostgresServer.new_database`); the session fixture stops the server and removes its
directory at the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

POSTGRES_INSTALL = "`apt-get install postgresql` (Debian's PostgreSQL server, 15 or later)"
FIRST_PORT = 55440
"""Where the port search starts (``DISCLOSURE_LEDGER_TEST_POSTGRES_PORT`` moves it)."""


class PostgresMissing(Exception):
    """No PostgreSQL server binaries here, or the server would not start."""


def server_bin_dir() -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: on PATH, or Debian's newest."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresMissing("no pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
    return versions[-1].parent


class PostgresServer:
    """One throwaway PostgreSQL server: :meth:`start`, :meth:`new_database`, :meth:`stop`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = server_bin_dir()
        self.home = Path(tempfile.mkdtemp(prefix="disclosure-ledger-pg-"))
        self.data = self.home / "data"
        self._runas: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse root
            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)
            self._runas = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            [*self._runas, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise PostgresMissing(
                f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()}"
            )

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.home / "server.log"),
            "-w",
            "start",
        )

    def conninfo(self, database: str = "postgres") -> str:
        """A libpq connection string for ``database`` (trust auth: no password)."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def new_database(self) -> str:
        """A new empty database's name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run(
            str(self.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            name,
        )
        return name

    def stop(self) -> None:
        with contextlib.suppress(PostgresMissing, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.home, ignore_errors=True)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server on a locked free port, stopped and removed when the block ends."""
    from tests.integration.ports import locked_ports

    first = int(os.environ.get("DISCLOSURE_LEDGER_TEST_POSTGRES_PORT", FIRST_PORT))
    with locked_ports(first, 1) as port:
        server = PostgresServer(port)
        try:
            server.start()
            yield server
        finally:
            server.stop()
