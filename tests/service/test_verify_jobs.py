"""Verify as a background job through the API: started, followed to its result, one at a
time, for auditors only; its result is the status's last verify; tampering shows in it."""

from __future__ import annotations

import time
from typing import Any

from disclosure_ledger.service.auth.roles import Role
from tests.service.conftest import ServiceClient


def wait_for_job(sc: ServiceClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """Poll the job until it is no longer running (bounded: a hang fails the test)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = sc.client.get(f"/api/v1/verify/{job_id}", headers=sc.as_role(Role.auditor))
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        if body["state"] != "running":
            return body
        assert time.monotonic() < deadline, f"verify job {job_id} still running: {body}"
        time.sleep(0.05)


def start_job(sc: ServiceClient) -> str:
    answer = sc.client.post("/api/v1/verify", headers=sc.as_role(Role.auditor))
    assert answer.status_code == 202, answer.text
    job_id: str = answer.json()["job_id"]
    assert answer.headers["location"] == f"/api/v1/verify/{job_id}"
    return job_id


def test_a_verify_job_runs_to_a_verified_result_with_progress(
    service_client: ServiceClient,
) -> None:
    job = wait_for_job(service_client, start_job(service_client))
    assert job["state"] == "done" and job["ok"] is True and job["error"] is None
    assert (job["rows_done"], job["rows_total"]) == (60, 60)
    result = job["result"]
    assert result["ok"] and result["rows"] == 60 and result["failures"] == []
    assert len(result["chains"]) == 3
    latest = service_client.client.get(
        "/api/v1/verify", headers=service_client.as_role(Role.auditor)
    ).json()
    assert latest["job_id"] == job["job_id"]
    status = service_client.client.get(
        "/api/v1/status", headers=service_client.as_role(Role.auditor)
    ).json()
    assert status["last_verify"]["job_id"] == job["job_id"]
    assert status["last_verify"]["ok"] is True and "result" not in status["last_verify"]


def test_the_access_log_is_verified_and_a_changed_entry_fails_the_job(
    service_client: ServiceClient,
) -> None:
    from ledger.access_log import AccessEntry

    service = service_client.service
    for n in range(3):
        service.record_access(AccessEntry("user-x", "investigator", "query", f"CASE-{n}", n))
    job = wait_for_job(service_client, start_job(service_client))
    assert job["ok"] is True and job["result"]["chains"]["access_log"]["length"] == 3
    with service.writable_view() as view:  # what a tamperer with the file would do
        view.con.execute("UPDATE access_log SET reason = 'nothing' WHERE seq = 2")
    job = wait_for_job(service_client, start_job(service_client))
    assert job["state"] == "done" and job["ok"] is False
    assert [(f["chain_id"], f["seq"], f["kind"]) for f in job["result"]["failures"]] == [
        ("access_log", 2, "row altered")
    ]
    status = service_client.client.get(
        "/api/v1/status", headers=service_client.as_role(Role.auditor)
    ).json()
    assert status["last_verify"]["ok"] is False and status["last_verify"]["failure_count"] == 1


def test_one_job_at_a_time(service_client: ServiceClient) -> None:
    from disclosure_ledger.service.jobs import VerifyRunningError

    jobs = service_client.service.verify_jobs
    release = __import__("threading").Event()
    original = jobs._trust

    def held() -> Any:
        release.wait(30)
        return original()

    jobs._trust = held  # type: ignore[method-assign]
    try:
        first = start_job(service_client)
        again = service_client.client.post(
            "/api/v1/verify", headers=service_client.as_role(Role.auditor)
        )
        assert again.status_code == 409 and again.json()["job_id"] == first
        try:
            jobs.start("someone")
        except VerifyRunningError as exc:
            assert exc.job_id == first
        else:
            raise AssertionError("a second job started while one ran")
    finally:
        release.set()
    assert wait_for_job(service_client, first)["state"] == "done"


def test_only_auditors_verify(service_client: ServiceClient) -> None:
    for role in (Role.compliance, Role.investigator, Role.admin):
        headers = service_client.as_role(role)
        assert service_client.client.post("/api/v1/verify", headers=headers).status_code == 403
        assert service_client.client.get("/api/v1/verify", headers=headers).status_code == 403
    assert service_client.client.post("/api/v1/verify").status_code == 401


def test_unknown_and_absent_jobs_are_404_with_what_to_do(service_client: ServiceClient) -> None:
    headers = service_client.as_role(Role.auditor)
    latest = service_client.client.get("/api/v1/verify", headers=headers)
    assert latest.status_code == 404 and "POST /api/v1/verify" in latest.json()["detail"]
    unknown = service_client.client.get("/api/v1/verify/nope", headers=headers)
    assert unknown.status_code == 404


def test_a_session_must_send_its_csrf_token(service_client: ServiceClient) -> None:
    from tests.service.conftest import PASSWORD

    client = service_client.client
    actor = service_client.accounts.authenticate("user-auditor", PASSWORD)
    assert actor is not None
    session_id, csrf = service_client.accounts.open_session(actor)
    client.cookies.set("dl_session", session_id)
    refused = client.post("/api/v1/verify")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    accepted = client.post("/api/v1/verify", headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 202
    wait_for_job(service_client, accepted.json()["job_id"])


def test_a_bad_public_key_file_fails_the_job_and_says_why(
    service_client: ServiceClient, monkeypatch: Any, tmp_path: Any
) -> None:
    bad = tmp_path / "not-a-key.pub"
    bad.write_text("nonsense")
    monkeypatch.setenv("DISCLOSURE_LEDGER_CHECKPOINT_PUBLIC_KEY_FILE", str(bad))
    job = wait_for_job(service_client, start_job(service_client))
    assert job["state"] == "failed" and "not an Ed25519 public key" in job["error"]
    status = service_client.client.get(
        "/api/v1/status", headers=service_client.as_role(Role.auditor)
    ).json()
    assert status["last_verify"]["state"] == "failed"
