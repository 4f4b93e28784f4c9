"""The request register page for compliance: open a request, verify the identity, extend,
answer with an uploaded document (hashed), deny; overdue first; CSRF on every step; the
subject id never shown."""

from __future__ import annotations

import hashlib
import re

from fastapi.testclient import TestClient

from disclosure_ledger.service.auth.roles import Role
from tests.service.conftest import ServiceClient
from tests.service.test_console import assert_secure_headers, sign_in


def _open(client: TestClient, csrf: str, **changes: str) -> str:
    form = {
        "csrf_token": csrf,
        "kind": "know",
        "law": "ccpa",
        "subject_type": "member",
        "subject_id": "member-secret-77",
        "received_on": "2026-11-20",
        "received_via": "email",
        **changes,
    }
    answer = client.post("/register", data=form)
    assert answer.status_code == 200, answer.text
    assert "member-secret-77" not in answer.text
    found = re.search(r'id="opened">Request <a href="/register/([0-9a-f-]+)"', answer.text)
    assert found, answer.text
    return found.group(1)


def test_a_request_goes_through_the_register_page(service_client: ServiceClient) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.compliance)
    request_id = _open(client, csrf)
    late = _open(client, csrf, subject_id="member-2", received_on="2026-09-01")

    page = client.get("/register", params={"as_of": "2026-12-01"})
    assert_secure_headers(page)
    assert "<script" not in page.text
    rows = re.findall(r'<a href="/register/([0-9a-f-]+)">', page.text)
    assert rows[:2] == [late, request_id]  # overdue first
    assert "OVERDUE by 46 day(s)" in page.text

    entry = f"/register/{request_id}"
    forged = client.post(f"{entry}/identity", data={"method": "email code"})
    assert forged.status_code == 403
    too_early = client.post(
        f"{entry}/answer", data={"csrf_token": csrf}, files={"document": ("a.txt", b"x")}
    )
    assert too_early.status_code == 400 and "identity is verified" in too_early.text
    done = client.post(f"{entry}/identity", data={"csrf_token": csrf, "method": "email code"})
    assert done.status_code == 200 and "email code, by user-compliance" in done.text
    extended = client.post(
        f"{entry}/extension",
        data={"csrf_token": csrf, "notice_sent_on": "2026-11-25", "reason": "many systems"},
    )
    assert "2027-02-18" in extended.text
    answered = client.post(
        f"{entry}/answer",
        data={"csrf_token": csrf, "stored_at": "s3://answers/77.pdf"},
        files={"document": ("answer.pdf", b"%PDF the answer")},
    )
    assert answered.status_code == 200, answered.text
    assert hashlib.sha256(b"%PDF the answer").hexdigest() in answered.text
    assert "s3://answers/77.pdf" in answered.text and "answer-form" not in answered.text

    denied = client.post(
        f"/register/{late}/denial",
        data={"csrf_token": csrf, "ground": "not_verifiable", "basis": "no reply"},
    )
    assert "not_verifiable: no reply" in denied.text


def test_other_roles_may_not_see_the_register(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.investigator)
    assert client.get("/register").status_code == 403
