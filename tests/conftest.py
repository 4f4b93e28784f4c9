"""Shared fixtures: one broker per session, and a topic and ledger file per test.

The broker is, in order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; testcontainers' Kafka module
if a Docker engine answers; else the project's local KRaft broker (jars from Maven
Central).

A test that needs a part this machine may lack (the broker, Chromium) calls
:func:`skip_missing_part`: it skips, saying what is missing and how to install it, except
under ``CI=true``, where it fails with the same words, so that CI cannot go green while
running less than it should.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import duckdb
import pytest

from disclosure_ledger.settings import load_settings
from ledger.lake import EXTENSIONS, EXTRA, PREFIX, LakeLocation, attach_lake
from ledger.pseudonyms import SubjectKeyStore
from reference import ReferenceData, load_reference
from tests.postgres_server import (
    POSTGRES_INSTALL,
    PostgresMissing,
    PostgresServer,
    running_postgres,
)

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = b"test-secret-" + b"0" * 20


def skip_missing_part(part: str, install: str, *, detail: str = "") -> NoReturn:
    """Skip the test for lack of ``part``; under ``CI=true`` fail it instead.

    ``install`` says how to get the part, ``detail`` what went wrong when looking for it.
    """
    because = f" ({detail})" if detail else ""
    if os.environ.get("CI") == "true":
        pytest.fail(
            f"{part} is missing{because}, and under CI=true a test may not skip for a "
            f"missing part: install it in the CI setup with: {install}",
            pytrace=False,
        )
    pytest.skip(f"{part} is missing{because}; install it with: {install}")


BROKER_INSTALL = (
    "`apt-get install openjdk-17-jre-headless maven && disclosure-ledger broker fetch` "
    "(the local broker), or set KAFKA_BOOTSTRAP_SERVERS to a running Kafka broker"
)


def _docker_answers() -> bool:
    """Whether a Docker engine answers on its Unix socket (a plain /_ping, closed after)."""
    path = Path("/var/run/docker.sock")
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(2)
            probe.connect(str(path))
            probe.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"200 OK" in probe.recv(1024)
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        yield settings.kafka_bootstrap_servers
        return
    try:
        if _docker_answers():
            from testcontainers.community.kafka import KafkaContainer

            # Untested here (this kind of machine has no Docker engine); the module's
            # KRaft mode needs a Confluent image.
            with KafkaContainer("confluentinc/cp-kafka:7.6.0").with_kraft() as container:
                yield container.get_bootstrap_server()
            return
        from disclosure_ledger.local_broker import LocalBroker

        broker = LocalBroker(
            state_dir=ROOT / ".local",
            port=settings.broker_port,
            controller_port=settings.controller_port,
        )
        was_running = broker.status().running
        address = broker.start()
    except Exception as exc:
        skip_missing_part("a Kafka broker", BROKER_INSTALL, detail=str(exc))
    yield address
    if not was_running:
        broker.stop()


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    from producers.topics import ensure_topic

    def make(partitions: int = 1) -> str:
        name = f"test.disclosures.{uuid.uuid4().hex[:12]}"
        ensure_topic(kafka_bootstrap, name, partitions)
        return name

    return make


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the session's own (tests/postgres_server.py), stopped at its end."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except PostgresMissing as exc:
            skip_missing_part("a PostgreSQL server", POSTGRES_INSTALL, detail=str(exc))
        yield server


LedgerLocation = Path | LakeLocation
"""Where a test's ledger is: a DuckDB file, or a DuckLake (:func:`ledger_location`)."""

BACKENDS = ("file", "ducklake")
"""The ledger's storage backends: one DuckDB file, or a DuckLake on a PostgreSQL catalog."""


@pytest.fixture(params=BACKENDS)
def ledger_backend(request: pytest.FixtureRequest) -> str:
    """Each storage backend in turn: the ledger's contract tests run once with each."""
    return str(request.param)


both_backends = pytest.mark.parametrize("ledger_backend", BACKENDS, indirect=True)
"""In a module whose ``ledger_backend`` is :func:`file_unless_both`: a test that runs on
each backend. Those modules test report or proof logic over a ledger that costs ~3.5 s to
build on a lake; a few of their tests on both backends show the backend gives the same
answer, the rest run on the file, to keep the suite within its time."""


def file_unless_both(request: pytest.FixtureRequest) -> str:
    """``ledger_backend`` for such a module: ``file``, or each backend under ``both_backends``."""
    return str(getattr(request, "param", "file"))


@pytest.fixture
def ledger_location(
    ledger_backend: str, ledger_path: Path, request: pytest.FixtureRequest
) -> LedgerLocation:
    """A new, empty ledger of ``ledger_backend``: the file ``ledger_path``, or a lake on a
    database of its own, whose local files (key store, checkpoints) sit where the file's
    would, so every other fixture finds them."""
    if ledger_backend == "file":
        return ledger_path
    for name in EXTENSIONS.values():
        if importlib.util.find_spec(name) is None:
            skip_missing_part("the DuckLake extension wheels", EXTRA, detail=f"no {name}")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    data_path = str(ledger_path.parent / "lake-data") + "/"
    # the CLI finds the same lake settings: `--ledger cli_argument(location)` is this ledger
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_DATA_PATH", data_path)
    monkeypatch.setenv("DISCLOSURE_LEDGER_LAKE_LOCAL_PATH", str(ledger_path))
    return LakeLocation(server.conninfo(server.new_database()), data_path, ledger_path)


def cli_argument(location: LedgerLocation) -> str:
    """What ``--ledger`` is given for ``location`` (with the settings
    :func:`ledger_location` sets, the CLI opens the same ledger)."""
    if isinstance(location, LakeLocation):
        return PREFIX + location.catalog
    return str(location)


@pytest.fixture
def key_store(tmp_path: Path) -> Iterator[SubjectKeyStore]:
    with SubjectKeyStore(tmp_path / "ledger.duckdb.keys.sqlite", TEST_SECRET) as store:
        yield store


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    return load_reference()


@pytest.fixture
def subject_secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    secret = secrets.token_hex(32)
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secret)
    return secret


def raw_connection(location: LedgerLocation) -> duckdb.DuckDBPyConnection:
    """A plain DuckDB connection to a ledger's tables, past the :class:`Ledger` class (as
    someone altering rows would have), for either backend."""
    if isinstance(location, LakeLocation):
        con = duckdb.connect(config={"autoinstall_known_extensions": False})
        attach_lake(con, location)
        return con
    return duckdb.connect(str(location))
