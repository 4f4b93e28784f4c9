"""The request register through the service: ``/api/v1/requests`` (compliance), the CLI's
``requests`` commands with ``--server``, a register entry answered by ``POST
/requests/know`` with ``request``, and an erasure unlinking the subject's requests."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

import httpx2
import pytest

from disclosure_ledger.cli import build_parser
from disclosure_ledger.commands.requests import _print, _through_service
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.client import LedgerClient
from tests.service.conftest import ServiceClient

REGISTER = "/api/v1/requests"


def post(sc: ServiceClient, path: str, role: Role = Role.compliance, **body: Any) -> Any:
    return sc.client.post(path, json=body, headers=sc.as_role(role))


def ask(sc: ServiceClient, **body: Any) -> Any:
    return post(sc, "/api/v1/requests/know", **body)


def get(sc: ServiceClient, path: str, **params: Any) -> Any:
    return sc.client.get(path, params=params, headers=sc.as_role(Role.compliance))


def test_a_request_opened_verified_and_answered_with_its_report(
    service_client: ServiceClient,
) -> None:
    opened = post(
        service_client,
        REGISTER,
        kind="know",
        law="ccpa",
        subject_id="member-4",
        received_on="2026-11-20",
        received_via="email",
    )
    assert opened.status_code == 200, opened.text
    entry = opened.json()
    request_id = entry["request_id"]
    assert (entry["status"], entry["deadline"], entry["identity_required"]) == (
        "open",
        "2027-01-04",
        True,
    )
    assert "member-4" not in opened.text
    know = {"subject_id": "member-4", "reason": "CASE-9", "as_of": "2026-12-01T00:00:00Z"}
    early = ask(service_client, request=request_id, **know)
    assert early.status_code == 422 and "identity is verified" in early.json()["detail"]
    wrong = ask(service_client, request=request_id, subject_id="x")
    assert wrong.status_code == 422

    verified = post(service_client, f"{REGISTER}/{request_id}/identity", method="email code")
    assert verified.status_code == 200, verified.text
    assert verified.json()["identity"]["method"] == "email code"
    someone_else = ask(
        service_client,
        request=request_id,
        **{**know, "subject_id": "member-5"},
    )
    assert someone_else.status_code == 422 and "someone else" in someone_else.json()["detail"]
    answered = ask(service_client, request=request_id, **know)
    assert answered.status_code == 200, answered.text
    assert answered.json()["request"]["request_id"] == request_id

    shown = get(service_client, f"{REGISTER}/{request_id}").json()
    assert shown["status"] == "answered"
    assert shown["answer_sha256"] == hashlib.sha256(answered.content).hexdigest()
    again = ask(service_client, request=request_id, **know)
    assert again.status_code == 422 and "already answered" in again.json()["detail"]
    assert get(service_client, f"{REGISTER}/no-such-id").status_code == 404


def test_overdue_and_due_soon_are_listed_through_the_api(service_client: ServiceClient) -> None:
    late = post(
        service_client,
        REGISTER,
        kind="delete",
        law="gdpr",
        subject_id="m1",
        received_on="2026-01-31",
    ).json()["request_id"]
    soon = post(
        service_client,
        REGISTER,
        kind="opt_out",
        law="ccpa",
        subject_id="m2",
        received_on="2026-11-01",
    ).json()["request_id"]
    extended = post(
        service_client,
        f"{REGISTER}/{late}/extension",
        notice_sent_on="2026-02-20",
        reason="several systems",
    ).json()
    assert extended["deadline"] == "2026-04-30"
    overdue = get(service_client, REGISTER, overdue="true", as_of="2026-12-10").json()
    assert [e["request_id"] for e in overdue["entries"]] == [late]
    within = get(service_client, REGISTER, due_within=7, as_of="2026-12-10").json()
    assert [e["request_id"] for e in within["entries"]] == [late, soon]
    by_status = get(service_client, REGISTER, status="extended").json()
    assert [e["request_id"] for e in by_status["entries"]] == [late]
    assert get(service_client, REGISTER, status="nonsense").status_code == 422
    # a CCPA opt-out needs no identity check
    done = post(service_client, f"{REGISTER}/{soon}/answer", document_sha256="a" * 64)
    assert done.json()["status"] == "answered", done.text
    denial = post(service_client, f"{REGISTER}/{late}/denial", ground="exempt", basis="legal hold")
    denied = denial.json()
    assert denial.status_code == 200, denial.text
    assert (denied["status"], denied["denial_ground"]) == ("denied", "exempt")
    for role in (Role.investigator, Role.auditor, Role.admin):
        assert post(service_client, REGISTER, role, kind="know", law="ccpa").status_code == 403


def test_the_cli_prints_the_register_through_the_service(
    service_client: ServiceClient, capsys: pytest.CaptureFixture[str]
) -> None:
    def forward(request: httpx2.Request) -> httpx2.Response:
        answer = service_client.client.request(
            request.method,
            str(request.url.path),
            params=dict(request.url.params),
            content=request.content,
            headers={**service_client.as_role(Role.compliance), "content-type": "application/json"},
        )
        return httpx2.Response(answer.status_code, content=answer.content)

    client = LedgerClient("http://ledger.test", "dl_token", transport=httpx2.MockTransport(forward))

    def run(*argv: str) -> str:
        args = build_parser().parse_args(["requests", *argv, "--server", "http://ledger.test"])
        _print(args, _through_service(args, client))
        return capsys.readouterr().out

    opened = run(
        "open",
        "--kind",
        "know",
        "--law",
        "ccpa",
        "--subject-id",
        "m9",
        "--received-on",
        "2026-09-01",
    )
    assert "deadline 2026-10-16" in opened
    request_id = opened.split()[1]
    listed = run("list", "--overdue", "--as-of", "2026-12-01")
    assert request_id in listed and "OVERDUE by 46 day(s)" in listed
    shown = json.loads(run("show", request_id, "--format", "json"))
    assert shown["status"] == "open"


def test_an_erasure_unlinks_the_subjects_requests(service_client: ServiceClient) -> None:
    post(service_client, REGISTER, kind="delete", law="gdpr", subject_id="member-1")
    with service_client.service.request_log() as log:
        token = log.requester("member", "member-1")
    erased = post(
        service_client,
        "/api/v1/erasures",
        Role.admin,
        subject_type="member",
        subject_id="member-1",
        reason="DSR-1",
    )
    assert erased.status_code == 202, erased.text  # a second admin approves it
    approver = service_client.accounts.issue_token(Role.admin, label="cpo", created_by="test")
    approved = service_client.client.post(
        f"/api/v1/approvals/{erased.json()['approval_id']}/approve",
        headers={"Authorization": f"Bearer {approver.token}"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["approval"]["outcome"]["erased"] is True
    db = sqlite3.connect(service_client.service.request_log_path)
    held = [row[0] for row in db.execute("SELECT requester FROM register")]
    db.close()
    assert len(held) == 1 and token not in held
