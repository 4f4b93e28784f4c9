"""The service's ingest thread as /readyz and the status report it: an ingestion that
fails leaves the service answering, with 503 on /readyz naming why and the error in the
status; a stop request turns /readyz to 503 "stopping" and stops the thread cleanly; a
thread that reads, and DuckDB's worker pool, are scheduled below the ingest thread (Linux).
(A real ``serve`` process, its signals and restarts: tests/integration/test_service_process.py.)
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from fastapi.testclient import TestClient

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.runtime import READER_NICENESS, IngestSettings, LedgerService
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.service.conftest import build_ledger


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(tmp_path: Path, reference: ReferenceData) -> Iterator[tuple[TestClient, str]]:
    """A service whose broker never answers and which gives up after a 1 s outage."""
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    accounts = AccountStore(default_account_store(path))
    token = accounts.issue_token(Role.auditor, label="test", created_by="test").token
    service = LedgerService(
        ServiceConfig(ledger=path, memory_limit="512MB"),
        reference=reference,
        subject_secret=TEST_SECRET,
        key_store=path.with_name(path.name + ".keys.sqlite"),
        ingest=IngestSettings(
            bootstrap_servers=f"127.0.0.1:{_closed_port()}",
            topic="test.lifecycle",
            max_batch=100,
            max_outage=1.0,
        ),
        signer=None,
    )
    service.start_ingest()
    try:
        with TestClient(create_app(service, accounts)) as client:
            yield client, token
    finally:
        assert service.stop(timeout=30)


def test_a_failed_ingestion_leaves_the_service_answering_and_says_why(
    unreachable: tuple[TestClient, str],
) -> None:
    client, token = unreachable
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code == 200:
        assert time.monotonic() < deadline, "ingestion did not give up after --max-outage"
        time.sleep(0.2)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.text.startswith("ingestion stopped: ConsumeError: ")
    assert "--max-outage" in ready.text
    status = client.get("/api/v1/status", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200  # the ledger still answers
    ingest = status.json()["ingest"]
    assert not ingest["running"] and ingest["outages"] == 1
    assert ingest["error"] == ready.text.removeprefix("ingestion stopped: ").strip()
    assert status.json()["rows"] == 60
    assert client.get("/healthz").status_code == 200


def test_a_stop_request_turns_readiness_off_and_stops_ingestion(
    tmp_path: Path, reference: ReferenceData
) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    service = LedgerService(
        ServiceConfig(ledger=path, memory_limit="512MB"),
        reference=reference,
        subject_secret=TEST_SECRET,
        key_store=path.with_name(path.name + ".keys.sqlite"),
        ingest=IngestSettings(
            bootstrap_servers=f"127.0.0.1:{_closed_port()}", topic="t", max_batch=100
        ),
        signer=None,
    )
    service.start_ingest()
    client = TestClient(create_app(service, AccountStore(default_account_store(path))))
    assert client.get("/readyz").text == "ready\n"  # waiting for a broker is no failure
    service.request_stop()
    stopping = client.get("/readyz")
    assert (stopping.status_code, stopping.text) == (503, "stopping\n")
    assert service.stop(timeout=30)
    assert not service.ingest_state.running and service.ingest_state.error is None


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_thread_that_reads_is_scheduled_below_the_ingest_thread(
    tmp_path: Path, reference: ReferenceData
) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    service = LedgerService(
        ServiceConfig(ledger=path, memory_limit="512MB"),
        reference=reference,
        subject_secret=TEST_SECRET,
        key_store=path.with_name(path.name + ".keys.sqlite"),
        ingest=IngestSettings(
            bootstrap_servers=f"127.0.0.1:{_closed_port()}", topic="t", max_batch=100
        ),
        signer=None,
    )
    me = threading.get_native_id()
    mine = os.getpriority(os.PRIO_PROCESS, me)
    others = [t.id for t in psutil.Process().threads() if t.id != me]
    assert others  # DuckDB's worker pool, at least
    assert all(  # they serve reads too: scheduled below the ingest thread
        os.getpriority(os.PRIO_PROCESS, tid) >= min(19, mine + READER_NICENESS) for tid in others
    )
    niceness: dict[str, int] = {}

    def read() -> None:
        tid = threading.get_native_id()
        niceness["before"] = os.getpriority(os.PRIO_PROCESS, tid)
        with service.view() as view:
            view.con.execute("SELECT count(*) FROM disclosures").fetchone()
        niceness["after"] = os.getpriority(os.PRIO_PROCESS, tid)

    try:
        reader = threading.Thread(target=read)
        reader.start()
        reader.join()
        ingest_side = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        service.stop()
    assert niceness["after"] == min(19, niceness["before"] + READER_NICENESS)
    assert ingest_side == niceness["before"]  # the other threads keep theirs
