"""The service as users run it: a real ``disclosure-ledger serve`` process over a real
ledger file, ingesting from a real broker while its API is asked questions.

- While events are published and ingested, the status answers, its row count grows, and
  the CCPA report answers (when the reports route is there).
- SIGTERM in the middle of ingesting: exit 0, the state file gone, the ledger verifies
  (chains, signed checkpoints, every offset); a restart resumes where it stopped, and in
  the end the ledger holds every message exactly once.
- The broker crashes while the service ingests: the service keeps answering, says so in
  its status, and carries on when the broker is back, losing and doubling nothing. This
  stops and restarts the session's local broker (the test restarts it whatever happens).
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.local_broker import LocalBroker
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.state_file import state_file
from disclosure_ledger.settings import load_settings
from ledger.checkpoints import generate_key_pair
from tests.conftest import ROOT
from tests.integration.reliability_support import (
    CLI,
    EventFactory,
    Sent,
    assert_ledger_holds_exactly,
    run_seed,
    send,
    traffic,
)
from tests.integration.service_process import ServiceProcess, issue_token

pytestmark = pytest.mark.integration

CCPA_ROUTE = "/api/v1/reports/ccpa"


@pytest.fixture
def signing_env(tmp_path: Path) -> dict[str, str]:
    """A checkpoint key pair; the environment that gives the service its private key."""
    generate_key_pair(tmp_path / "signing.pem", tmp_path / "public.pem")
    return {"DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE": str(tmp_path / "signing.pem")}


class Publisher(threading.Thread):
    """Sends ``chunks`` one after another, ``pause`` seconds apart, recording positions."""

    def __init__(self, bootstrap: str, topic: str, chunks: list[list[Sent]], pause: float):
        super().__init__(name="publisher", daemon=True)
        self.bootstrap, self.topic, self.chunks, self.pause = bootstrap, topic, chunks, pause
        self.positions: list[tuple[int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for chunk in self.chunks:
                self.positions += send(self.bootstrap, self.topic, chunk)
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self) -> list[tuple[int, int]]:
        self.join(timeout=120)
        assert not self.is_alive() and self.error is None, self.error
        return self.positions


def _serve(tmp_path: Path, bootstrap: str, topic: str, env: dict[str, str], name: str) -> Any:
    service = ServiceProcess(
        tmp_path / "ledger.duckdb",
        tmp_path / f"{name}.log",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--batch-size",
        "500",
        "--probe-every",
        "1",
        env=env,
    )
    service.wait_ready()
    return service


def _wait_for(condition: Callable[[], bool], what: str, service: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert service.process.poll() is None, f"the service exited: {service.summary()}"
        assert time.monotonic() < deadline, f"not {what} within {timeout} s: {service.summary()}"
        time.sleep(0.2)


def _verify(ledger: Path, public_key: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "verify", "--ledger", str(ledger), "--public-key", str(public_key)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _has_route(service: Any, path: str) -> bool:
    status, body = service.request("/api/v1/openapi.json")
    return status == 200 and f'"{path}"' in body.decode()


def test_the_service_answers_while_it_ingests_and_resumes_after_sigterm(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    signing_env: dict[str, str],
) -> None:
    rng = random.Random(run_seed("service answers while ingesting"))
    topic = new_topic(3)
    ledger = tmp_path / "ledger.duckdb"
    factory = EventFactory(rng)
    chunks = [traffic(rng, factory, 1_500, duplicates=15, poison_count=3) for _ in range(16)]
    valid = sum(1 for chunk in chunks for m in chunk if m.kind == "valid")
    token = issue_token(ledger, Role.compliance)
    publisher = Publisher(kafka_bootstrap, topic, chunks, pause=0.3)

    service = _serve(tmp_path, kafka_bootstrap, topic, signing_env, "first")
    publisher.start()
    seen: list[int] = []
    reports: list[int] = []
    ccpa = _has_route(service, CCPA_ROUTE)
    as_of = datetime.now(UTC).date().isoformat()
    while publisher.is_alive() and (len(set(seen)) < 4 or seen[-1] < 5_000):
        assert service.request("/readyz") == (200, b"ready\n"), service.summary()
        status = service.json("/api/v1/status", token)
        assert status["ingest"]["running"] and status["ingest"]["error"] is None
        seen.append(status["rows"])
        if ccpa:  # a report read while the writer appends: one snapshot, an answer
            code, _ = service.request(f"{CCPA_ROUTE}?as_of={as_of}&allow_incomplete=true", token)
            reports.append(code)
        time.sleep(0.3)
    print(f"rows seen by the status while ingesting: {seen}; CCPA answers {reports}")
    assert seen == sorted(seen), "the row count went backwards"
    assert len(set(seen)) >= 4 and 0 < seen[-1] < valid, "no answers while ingesting"
    assert all(code == 200 for code in reports)

    # SIGTERM in the middle of ingesting: the batch in hand commits, the process exits 0.
    assert publisher.is_alive(), "the publisher finished before the stop: publish more"
    assert service.stop() == 0, service.summary()
    log = service.log()
    assert "stopped on request" in log and "stopped; the ledger holds" in log, log[-2000:]
    assert not state_file(ledger).exists()
    verified = _verify(ledger, tmp_path / "public.pem")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    print(verified.stdout.strip().splitlines()[-1])

    # A restart resumes where it stopped: in the end every message is there exactly once.
    service = _serve(tmp_path, kafka_bootstrap, topic, signing_env, "second")
    positions = publisher.finish()
    assert "resuming at" in service.log()

    def caught_up() -> bool:
        return bool(service.json("/api/v1/status", token)["rows"] == valid)

    _wait_for(caught_up, f"at {valid} rows", service, timeout=120)
    assert service.stop() == 0, service.summary()
    verified = _verify(ledger, tmp_path / "public.pem")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "checkpoint(s) checked" in verified.stdout
    messages = [m for chunk in chunks for m in chunk]
    assert_ledger_holds_exactly(ledger, topic, messages, positions, bootstrap=kafka_bootstrap)


@pytest.fixture
def local_broker(kafka_bootstrap: str) -> Iterator[LocalBroker]:
    """The session's broker when it is the project's local one (which a test may stop);
    started again after the test whatever happened."""
    settings = load_settings()
    broker = LocalBroker(
        state_dir=ROOT / ".local",
        port=settings.broker_port,
        controller_port=settings.controller_port,
    )
    if settings.kafka_bootstrap_servers or broker.bootstrap != kafka_bootstrap:
        pytest.skip("stopping the broker needs the project's local broker, not an outside one")
    try:
        yield broker
    finally:
        broker.start(timeout=120)


def test_the_service_rides_out_a_broker_crash(
    local_broker: LocalBroker,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    signing_env: dict[str, str],
) -> None:
    rng = random.Random(run_seed("service rides out a broker crash"))
    bootstrap = local_broker.bootstrap
    topic = new_topic(2)
    ledger = tmp_path / "ledger.duckdb"
    factory = EventFactory(rng)
    before = traffic(rng, factory, 4_000, duplicates=40, poison_count=4)
    positions = send(bootstrap, topic, before)
    token = issue_token(ledger, Role.auditor)
    service = _serve(tmp_path, bootstrap, topic, signing_env, "service")
    _wait_for(lambda: service.json("/api/v1/status", token)["rows"] > 0, "ingesting", service, 60)

    local_broker.kill()  # SIGKILL: the broker crashes
    _wait_for(lambda: "unreachable (attempt" in service.log(), "waiting", service, 60)
    status = service.json("/api/v1/status", token)  # the service keeps answering
    assert status["ingest"]["outages"] >= 1 and status["ingest"]["error"] is None
    assert service.request("/healthz") == (200, b"ok\n")

    local_broker.start(timeout=120)
    after = traffic(rng, factory, 2_000, duplicates=20, poison_count=2)
    positions += send(bootstrap, topic, after)
    valid = sum(1 for m in before + after if m.kind == "valid")
    _wait_for(
        lambda: service.json("/api/v1/status", token)["rows"] == valid,
        f"at {valid} rows",
        service,
        timeout=120,
    )
    assert "answers again after" in service.log()
    assert service.stop() == 0, service.summary()
    verified = _verify(ledger, tmp_path / "public.pem")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert_ledger_holds_exactly(ledger, topic, before + after, positions, bootstrap=bootstrap)
