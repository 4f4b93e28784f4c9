"""A backup taken by a real ``serve`` process while it ingests from a real broker: the
ingest thread pauses for the copy and carries on; the backup verifies on its own (chains,
offsets, signed checkpoints); restored in place, the service resumes from the restored
offsets and in the end holds every message exactly once."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.service.auth.roles import Role
from tests.integration.reliability_support import (
    CLI,
    EventFactory,
    assert_ledger_holds_exactly,
    run_seed,
    traffic,
)
from tests.integration.service_process import ServiceProcess, issue_token
from tests.integration.test_service_process import Publisher, _wait_for, signing_env

pytestmark = pytest.mark.integration
__all__ = ["signing_env"]  # the fixture, shared


def _serve(tmp_path: Path, bootstrap: str, topic: str, env: dict[str, str], name: str) -> Any:
    """The service, with a checkpoint every 500 rows (so the backup holds some)."""
    service = ServiceProcess(
        tmp_path / "ledger.duckdb",
        tmp_path / f"{name}.log",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--batch-size",
        "200",
        "--checkpoint-every-rows",
        "500",
        env=env,
    )
    service.wait_ready()
    return service


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=180, check=False
    )


def test_a_backup_while_ingesting_restores_and_ingestion_resumes(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    signing_env: dict[str, str],
) -> None:
    rng = random.Random(run_seed("backup while ingesting"))
    topic = new_topic(2)
    ledger = tmp_path / "ledger.duckdb"
    factory = EventFactory(rng)
    chunks = [traffic(rng, factory, 400, duplicates=4) for _ in range(8)]
    valid = sum(1 for chunk in chunks for m in chunk if m.kind == "valid")
    admin = issue_token(ledger, Role.admin)
    publisher = Publisher(kafka_bootstrap, topic, chunks, pause=0.3)
    service = _serve(tmp_path, kafka_bootstrap, topic, signing_env, "first")
    publisher.start()

    def rows() -> int:
        return int(service.json("/api/v1/status", admin)["rows"])

    _wait_for(lambda: rows() > 500, "ingesting", service, timeout=60)
    backup = tmp_path / "backup"
    server = ["--server", service.url, "--token", admin]
    taken = _cli("backup", *server, "--to", str(backup), "--reason", "test backup")
    assert taken.returncode == 0, taken.stdout + taken.stderr + service.summary()
    assert "the service's writers were paused for" in taken.stdout
    positions = publisher.finish()
    _wait_for(lambda: rows() == valid, f"at {valid} rows", service, timeout=120)
    status = service.json("/api/v1/status", admin)
    assert status["ingest"]["running"] and status["ingest"]["error"] is None
    assert service.stop() == 0, service.summary()

    manifest = json.loads((backup / "manifest.json").read_text())
    assert 0 < manifest["rows"] <= valid
    public = str(tmp_path / "public.pem")
    copy = str(backup / "ledger.duckdb")
    checked = _cli(
        "verify",
        "--ledger",
        copy,
        "--checkpoints",
        str(backup / "checkpoints"),
        "--public-key",
        public,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{manifest['rows']} rows; verified" in checked.stdout

    restored = _cli("restore", "--from", str(backup), "--ledger", str(ledger))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert _cli("verify", "--ledger", str(ledger), "--public-key", public).returncode == 0

    service = _serve(tmp_path, kafka_bootstrap, topic, signing_env, "second")
    _wait_for(lambda: rows() == valid, f"at {valid} rows again", service, timeout=120)
    assert service.stop() == 0, service.summary()
    verified = _cli("verify", "--ledger", str(ledger), "--public-key", public)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    messages = [m for chunk in chunks for m in chunk]
    assert_ledger_holds_exactly(ledger, topic, messages, positions, bootstrap=kafka_bootstrap)
