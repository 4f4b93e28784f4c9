"""``serve`` as a real process (no broker: ``--no-ingest``): its log is JSON lines, its
/metrics answer without sign-in, and SIGTERM closes the ledger and exits 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.service.conftest import build_ledger


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return int(answer.status), answer.read().decode()


def test_serve_logs_json_serves_metrics_and_stops_cleanly_on_sigterm(
    tmp_path: Path, reference: ReferenceData
) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    port = _free_port()
    env = {**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": TEST_SECRET.decode()}
    command = [sys.executable, "-m", "disclosure_ledger.cli", "serve", "--ledger", str(path)]
    process = subprocess.Popen(
        [*command, "--no-ingest", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            time.sleep(0.2)
        status, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200 and "disclosure_ledger_ledger_rows 60.0" in metrics
        assert path.with_name(path.name + ".service.json").exists()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert not path.with_name(path.name + ".service.json").exists()
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    assert lines[-1]["message"].startswith("stopped")
    routes = {line.get("route") for line in lines if line["logger"].endswith(".http")}
    assert {"/healthz", "/metrics"} <= routes
