"""Structured logs: JSON lines with the route template, status, duration and actor of each
request, and nothing of what a request carries: a subject id sent in a body, a query
string or a URL leaves no trace; uvicorn's own lines are JSON too, its access log off."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.logs import JsonLogFormatter
from tests.service.conftest import ServiceClient
from tests.service.test_verify_jobs import wait_for_job

SUBJECT_ID = "member-4417-secret"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every log line of the service's loggers, as the service writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLogFormatter())
    logger = logging.getLogger("disclosure_ledger")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_a_request_to_know_leaves_no_subject_id_in_the_logs(
    service_client: ServiceClient, log_lines: io.StringIO
) -> None:
    client = service_client.client
    body = {"subject_id": SUBJECT_ID, "subject_type": "member", "reason": "CASE-9"}
    compliance = service_client.as_role(Role.compliance)
    # a request to know as the console and the API send it: the id in a POST body
    client.post("/api/v1/requests/know", json=body, headers=compliance)
    client.post("/api/v1/reports/subject", data=body, headers=compliance)
    # and the mistakes a client may make: the id in the URL or the query string
    client.get(f"/api/v1/subjects/{SUBJECT_ID}", headers=compliance)
    client.get("/api/v1/status", params={"subject_id": SUBJECT_ID}, headers=compliance)
    auditor = service_client.as_role(Role.auditor)
    started = client.post("/api/v1/verify", json=body, headers=auditor)
    assert started.status_code == 202
    wait_for_job(service_client, started.json()["job_id"])
    text = log_lines.getvalue()
    assert SUBJECT_ID not in text and "4417" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    requests = [line for line in lines if line["logger"] == "disclosure_ledger.service.http"]
    assert len(requests) >= 6
    for line in requests:
        assert {"method", "route", "status", "duration_ms"} <= set(line)
        assert "?" not in line["route"] and "?" not in line["message"]
    status = [line for line in requests if line["route"] == "/api/v1/status"]
    assert status and status[0]["status"] == 200 and status[0]["actor"].startswith("token:")
    verify = [line for line in requests if line["route"] == "/api/v1/verify"]
    assert verify[0]["method"] == "POST" and verify[0]["status"] == 202


def test_a_line_is_one_json_object_with_its_time_in_utc() -> None:
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    record.created = 1_767_225_600.25
    line = json.loads(JsonLogFormatter().format(record))
    assert line == {
        "time": "2026-01-01T00:00:00.250Z",
        "level": "WARNING",
        "logger": "x.y",
        "message": "a b",
    }


def test_uvicorn_lines_are_json_and_its_access_log_is_off() -> None:
    """In a process of its own: the configuration is the whole process's."""
    program = (
        "import logging\n"
        "from disclosure_ledger.service.logs import configure_logging\n"
        "configure_logging()\n"
        "logging.getLogger('uvicorn.error').info('Uvicorn running on http://127.0.0.1:1')\n"
        f"logging.getLogger('uvicorn.access').info('GET /x?subject_id={SUBJECT_ID} 200')\n"
        "logging.getLogger('disclosure_ledger.service').warning('no checkpoint key')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("uvicorn.error", "INFO"),
        ("disclosure_ledger.service", "WARNING"),
    ]
    assert SUBJECT_ID not in done.stderr
