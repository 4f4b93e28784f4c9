"""``POST /api/v1/requests/know|recipients``: answered as ``report subject|recipients``
answers, recorded in the request log and, first, in the access log (pseudonym, never the
id; the reason kept); bad input refused with nothing recorded; who may ask."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from disclosure_ledger.service.auth.roles import Role
from ledger.errors import LedgerError
from ledger.key_check import KeyStoreAccess
from tests.service.conftest import PASSWORD, ServiceClient

KNOW = "/api/v1/requests/know"
RECIPIENTS = "/api/v1/requests/recipients"


def ask(sc: ServiceClient, path: str, **body: Any) -> Any:
    return sc.client.post(path, json=body, headers=sc.as_role(Role.compliance))


def access_rows(sc: ServiceClient) -> list[tuple[Any, ...]]:
    with sc.service.view() as view:
        found = view.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'access_log'"
        ).fetchone()
        if not found or not found[0]:
            return []
        return view.con.execute(
            "SELECT actor, role, action, reason, subject_pseudonym, rows_returned, detail, "
            "query_text FROM access_log ORDER BY seq"
        ).fetchall()


def logged_requests(sc: ServiceClient) -> list[Any]:
    if not sc.service.request_log_path.exists():
        return []
    with sc.service.request_log() as log:
        return log.entries(date(2000, 1, 1), date(2100, 1, 1))


def pseudonym_of(sc: ServiceClient, subject_id: str) -> str | None:
    with sc.service.view() as view, sc.service.subject_keys(KeyStoreAccess.read, view) as keys:
        return keys.pseudonym("member", subject_id)


def test_a_request_to_know_is_answered_and_recorded_in_both_logs(
    service_client: ServiceClient,
) -> None:
    answer = ask(
        service_client,
        KNOW,
        subject_id="member-4",
        reason="CASE-2026-118",
        received_via="email",
        received_on="2026-11-30",
        as_of="2026-12-01T00:00:00Z",
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    report = answer.json()
    assert report["report"] == "subject-report/1"
    assert report["subject"]["id"] == "member-4"
    assert report["request"]["received_via"] == "email"

    (logged,) = logged_requests(service_client)
    assert (logged.kind.value, logged.received_on, logged.response.value) == (
        "know",
        date(2026, 11, 30),
        "complied",
    )
    assert logged.request_id == report["request"]["request_id"]

    (entry,) = access_rows(service_client)
    actor, role, action, reason, pseudonym, rows, detail, query_text = entry
    assert (role, action, reason) == ("compliance", "report subject", "CASE-2026-118")
    assert actor.startswith("token:")
    assert pseudonym == pseudonym_of(service_client, "member-4") is not None
    assert rows == report["source"]["events_counted"] == 6
    assert "2026-12-01T00:00:00Z" in detail and "json" in detail
    assert query_text is None
    assert "member-4" not in repr(entry)


def test_a_recipients_request_counts_recipients_in_the_access_log(
    service_client: ServiceClient,
) -> None:
    answer = ask(service_client, RECIPIENTS, subject_id="member-2", reason="CASE-9", format="md")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/markdown; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="recipients-')
    json_answer = ask(service_client, RECIPIENTS, subject_id="member-2", reason="CASE-9")
    recipients = json_answer.json()["recipients"]
    entries = access_rows(service_client)
    assert [e[2] for e in entries] == ["report recipients", "report recipients"]
    assert entries[1][5] == len(recipients) > 0
    assert [r.kind.value for r in logged_requests(service_client)] == ["recipients"] * 2


def test_a_subject_without_a_key_is_logged_without_a_pseudonym(
    service_client: ServiceClient,
) -> None:
    answer = ask(service_client, KNOW, subject_id="never-seen", reason="CASE-3")
    assert answer.status_code == 200
    assert answer.json()["data_held"] is False
    ((_, _, _, _, pseudonym, rows, _, _),) = access_rows(service_client)
    assert (pseudonym, rows) == (None, 0)


def test_a_denial_is_recorded_as_the_cli_records_it(service_client: ServiceClient) -> None:
    answer = ask(
        service_client, KNOW, subject_id="member-1", reason="CASE-4", deny="identity not verified"
    )
    assert answer.status_code == 200
    assert answer.json()["report"] == "request-denial/1"
    (logged,) = logged_requests(service_client)
    assert (logged.response.value, logged.denial_basis) == ("denied", "identity not verified")
    assert access_rows(service_client)[0][5] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"subject_id": "member-5"},  # no reason
        {"subject_id": "member-5", "reason": "   "},  # a blank one
        {"subject_id": "member-5", "reason": "CASE-1", "received_via": "pigeon"},
        {"subject_id": "member-5", "reason": "CASE-1", "as_of": "yesterday"},
        {"subject_id": "member-5", "reason": "CASE-1", "subject": "member-5"},
        {"subject_id": "", "reason": "CASE-1"},
    ],
)
def test_bad_input_is_a_422_that_records_nothing_and_never_echoes_the_id(
    service_client: ServiceClient, body: dict[str, str]
) -> None:
    answer = ask(service_client, KNOW, **body)
    assert answer.status_code == 422
    assert "member-5" not in answer.text
    assert logged_requests(service_client) == []
    assert access_rows(service_client) == []


def test_reason_is_named_when_missing(service_client: ServiceClient) -> None:
    answer = ask(service_client, KNOW, subject_id="member-5")
    assert answer.status_code == 422
    assert "reason" in json.dumps(answer.json()["detail"])


def test_an_answer_whose_read_cannot_be_logged_is_not_given(
    service_client: ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_write(entry: object) -> None:
        raise LedgerError("cannot write the access log entry: disk full; the read is refused")

    monkeypatch.setattr(service_client.service, "record_access", cannot_write)
    answer = ask(service_client, KNOW, subject_id="member-4", reason="CASE-5")
    assert answer.status_code == 503
    assert "the read is refused" in answer.json()["detail"]
    assert "member-4" not in answer.text
    assert logged_requests(service_client) == []


def test_recipients_take_no_since(service_client: ServiceClient) -> None:
    answer = ask(
        service_client,
        RECIPIENTS,
        subject_id="member-1",
        reason="CASE-6",
        since="2024-01-01T00:00:00Z",
    )
    assert answer.status_code == 422
    assert "since" in answer.json()["detail"]


@pytest.mark.parametrize("path", [KNOW, RECIPIENTS])
def test_only_compliance_may_answer_requests(service_client: ServiceClient, path: str) -> None:
    body = {"subject_id": "member-1", "reason": "CASE-8"}
    assert service_client.client.post(path, json=body).status_code == 401
    for role in (Role.investigator, Role.auditor, Role.admin):
        answer = service_client.client.post(path, json=body, headers=service_client.as_role(role))
        assert answer.status_code == 403
    assert access_rows(service_client) == []


def test_a_session_must_send_its_csrf_token(service_client: ServiceClient) -> None:
    actor = service_client.accounts.authenticate("user-compliance", PASSWORD)
    assert actor is not None
    session, csrf = service_client.accounts.open_session(actor)
    client = service_client.client
    client.cookies.set("dl_session", session)
    body = {"subject_id": "member-1", "reason": "CASE-10"}
    try:
        assert client.post(KNOW, json=body).status_code == 403
        assert client.post(KNOW, json=body, headers={"X-CSRF-Token": "forged"}).status_code == 403
        assert client.post(KNOW, json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    finally:
        client.cookies.clear()
    assert [row[0] for row in access_rows(service_client)] == ["user-compliance"]


def test_an_unknown_format_records_nothing(service_client: ServiceClient) -> None:
    """What the console calls directly: a format it does not know is refused first."""
    from disclosure_ledger.service.answers import SubjectRequest, subject_answer
    from disclosure_ledger.service.auth.accounts import Actor
    from reports.errors import ReportError

    actor = Actor(name="user-compliance", role=Role.compliance, kind="user")
    request = SubjectRequest(kind="know", subject_id="member-1", reason="CASE-11")
    with pytest.raises(ReportError, match="unknown format 'pdf'"):
        subject_answer(service_client.service, actor, request, "pdf")
    assert logged_requests(service_client) == []
    assert access_rows(service_client) == []
