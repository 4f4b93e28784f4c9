"""The web console in process: sign-in, the security headers on every response, who may
use which page, CSRF, expired sessions, and that a subject id never reaches a URL, a
redirect or a log line."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from disclosure_ledger.service.auth.roles import Role, permission_allowed
from disclosure_ledger.service.console.page import CONTENT_SECURITY_POLICY, NAVIGATION
from ledger.access_log import AccessEntry
from ledger.key_check import KeyStoreAccess
from ledger.store import Ledger
from reference import ReferenceData
from tests.service.conftest import PASSWORD, ServiceClient, build_ledger, serving

SUBJECT = "member-3"


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, role: Role) -> str:
    """Signs ``client`` in as ``user-<role>``; returns the session's CSRF token."""
    answer = client.post(
        "/login",
        data={
            "name": f"user-{role.value}",
            "password": PASSWORD,
            "login_token": login_token(client),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    page = client.get("/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def nav_paths(html: str) -> set[str]:
    nav = html.split('<nav aria-label="Pages">', 1)[1].split("</nav>", 1)[0]
    return set(re.findall(r'href="([^"]+)"', nav))


def assert_secure_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


# -- signing in ----------------------------------------------------------------------------
def test_a_page_without_a_session_redirects_to_sign_in(service_client: ServiceClient) -> None:
    for entry in NAVIGATION:
        answer = service_client.client.get(entry.path, follow_redirects=False)
        assert answer.status_code == 303, entry.path
        assert answer.headers["location"] == "/login"
        assert_secure_headers(answer)


def test_a_wrong_password_is_refused_and_opens_no_session(service_client: ServiceClient) -> None:
    client = service_client.client
    answer = client.post(
        "/login",
        data={
            "name": "user-admin",
            "password": "wrong password!",
            "login_token": login_token(client),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "wrong user name or password" in answer.text.lower()
    assert "dl_session" not in answer.cookies
    assert_secure_headers(answer)
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_sign_in_without_the_form_token_is_refused(service_client: ServiceClient) -> None:
    answer = service_client.client.post(
        "/login", data={"name": "user-admin", "password": PASSWORD}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "dl_session" not in answer.cookies


def test_the_session_cookie_is_httponly_and_strict(service_client: ServiceClient) -> None:
    client = service_client.client
    answer = client.post(
        "/login",
        data={"name": "user-auditor", "password": PASSWORD, "login_token": login_token(client)},
        follow_redirects=False,
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "dl_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_an_expired_session_redirects_to_sign_in(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.auditor)
    with sqlite3.connect(service_client.accounts.path) as db:
        db.execute("UPDATE sessions SET expires_at = '2000-01-01T00:00:00+00:00'")
    answer = client.get("/", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?expired=1"
    assert "session has expired" in client.get("/login?expired=1").text


def test_sign_out_needs_the_csrf_token_and_ends_the_session(service_client: ServiceClient) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.auditor)
    for forged in ({}, {"csrf_token": "forged"}):
        answer = client.post("/logout", data={"stay": "1", **forged}, follow_redirects=False)
        assert answer.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200
    answer = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


# -- every page, every role ----------------------------------------------------------------
@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_and_may_open_only_its_pages(
    service_client: ServiceClient, role: Role
) -> None:
    client = service_client.client
    sign_in(client, role)
    allowed = {e.path for e in NAVIGATION if permission_allowed(role, e.action)}
    assert nav_paths(client.get("/").text) == allowed
    for entry in NAVIGATION:
        answer = client.get(entry.path)
        assert_secure_headers(answer)
        if entry.path in allowed:
            assert answer.status_code == 200, (entry.path, answer.text[-600:])
        else:
            assert answer.status_code == 403, entry.path
            assert f"the {role.value} role may not" in answer.text
            assert nav_paths(answer.text) == allowed


def test_the_stylesheet_is_served_from_the_package(service_client: ServiceClient) -> None:
    answer = service_client.client.get("/static/console.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert "article.report" in answer.text
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert service_client.client.get("/static/../page.py").status_code == 404


# -- reports -------------------------------------------------------------------------------
def test_ccpa_page_embeds_the_library_report_and_its_downloads(
    service_client: ServiceClient,
) -> None:
    client = service_client.client
    sign_in(client, Role.compliance)
    page = client.get("/reports/ccpa", params={"as_of": "2026-12-01"})
    assert page.status_code == 200, page.text
    assert 'id="disclosures-per-month"' in page.text  # the library's chart
    assert "<style>" not in page.text  # the console's stylesheet, not the page's own
    for fmt in ("md", "html", "csv", "json"):
        answer = client.get("/reports/ccpa/download", params={"as_of": "2026-12-01", "format": fmt})
        assert answer.status_code == 200
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="ccpa-report-2026-12-01.{fmt}"'
        )
    assert (
        client.get(
            "/reports/ccpa/download", params={"as_of": "2026-12-01", "format": "../x"}
        ).status_code
        == 400
    )


def test_a_bad_as_of_is_named_and_a_future_one_refused(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.compliance)
    bad = client.get("/reports/transfers", params={"as_of": "yesterday"})
    assert bad.status_code == 400
    assert "As of: give a date as YYYY-MM-DD" in bad.text
    assert client.get("/reports/ccpa", params={"as_of": "2999-01-01"}).status_code == 400
    assert client.get("/reports/nonsense", params={"as_of": "2026-01-01"}).status_code == 404


@pytest.fixture
def incomplete_client(tmp_path: Path, reference: ReferenceData) -> Iterator[TestClient]:
    """The console over a ledger that knows it is complete through nothing (no watermark of
    any expected source), with a compliance user."""
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    with Ledger(path) as ledger:
        ledger.con.execute("DELETE FROM watermarks")
    with serving(path, reference) as served:
        yield served.client


def test_a_report_refused_as_incomplete_shows_the_coverage_and_offers_provisional(
    incomplete_client: TestClient,
) -> None:
    sign_in(incomplete_client, Role.compliance)
    refused = incomplete_client.get("/reports/ccpa", params={"as_of": "2026-12-01"})
    assert refused.status_code == 409
    assert "Refused as incomplete" in refused.text
    assert "the ledger is complete through no known time" in refused.text
    assert 'id="provisional"' in refused.text and 'value="1"' in refused.text
    provisional = incomplete_client.get(
        "/reports/ccpa", params={"as_of": "2026-12-01", "allow_incomplete": "1"}
    )
    assert provisional.status_code == 200
    assert 'class="notice provisional"' in provisional.text
    download = incomplete_client.get(
        "/reports/ccpa/download", params={"as_of": "2026-12-01", "format": "json"}
    )
    assert download.status_code == 409


# -- requests to know ----------------------------------------------------------------------
def access_entries(service_client: ServiceClient) -> list[tuple[str, str, str]]:
    with service_client.service.view() as view:
        rows = view.con.execute(
            "SELECT actor, action, reason FROM access_log ORDER BY seq"
        ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def know_form(csrf: str, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": csrf,
        "subject_type": "member",
        "subject_id": SUBJECT,
        "received_on": "2026-11-30",
        "received_via": "email",
        "reason": "case 17",
        "deliver": "page",
    } | changes


def test_a_request_to_know_is_answered_recorded_and_the_id_never_leaves_the_body(
    service_client: ServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.compliance)
    caplog.set_level(logging.DEBUG)
    answers = [
        client.post("/requests/know", data=know_form(csrf)),
        client.post("/requests/know", data=know_form(csrf, deliver="json")),
        client.post("/requests/recipients", data=know_form(csrf)),
        client.post("/requests/know", data=know_form(csrf, received_on="last tuesday")),
        client.post("/requests/recipients", data=know_form(csrf, since="2025-01-01")),
    ]
    page, download, recipients, bad_date, refused = answers
    assert page.status_code == 200, page.text
    assert 'id="report"' in page.text and "Categories" in page.text
    assert download.status_code == 200
    assert download.headers["content-disposition"].startswith(
        'attachment; filename="request-to-know-2026-11-30.json"'
    )
    assert download.json()["subject"]["id"] == SUBJECT  # the answer itself names the person
    assert recipients.status_code == 200
    assert bad_date.status_code == 400 and "received on" in bad_date.text
    assert refused.status_code == 400 and "since" in refused.text
    for answer in (bad_date, refused):
        assert SUBJECT not in answer.text  # an error page never names the person
    for answer in answers:
        assert_secure_headers(answer)
        for hop in [*answer.history, answer]:
            assert SUBJECT not in str(hop.url)
            assert SUBJECT not in hop.headers.get("location", "")
    assert SUBJECT not in caplog.text
    assert [e[1] for e in access_entries(service_client)] == [
        "report subject",
        "report subject",
        "report recipients",
    ]


def test_a_request_to_know_without_the_csrf_token_reads_and_records_nothing(
    service_client: ServiceClient,
) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.compliance)
    missing = know_form(csrf)
    del missing["csrf_token"]
    for form in (missing, know_form("forged-token")):
        answer = client.post("/requests/know", data=form)
        assert answer.status_code == 403
        assert "CSRF" in answer.text and SUBJECT not in answer.text
    assert access_entries(service_client) == []
    with service_client.service.request_log() as log:
        assert log.entries(date(2026, 1, 1), date(2027, 1, 1)) == []


# -- erasure -------------------------------------------------------------------------------
def pseudonym_held(service_client: ServiceClient) -> bool:
    service = service_client.service
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        return keys.pseudonym("member", SUBJECT) is not None


def sign_in_as(client: TestClient, name: str) -> str:
    """Signs ``client`` in as the user ``name``; returns the session's CSRF token."""
    answer = client.post(
        "/login",
        data={"name": name, "password": PASSWORD, "login_token": login_token(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def test_erasure_is_submitted_then_approved_by_a_second_admin(
    service_client: ServiceClient,
) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.admin)
    form = {"subject_type": "member", "subject_id": SUBJECT, "reason": "ticket 9"}
    forged = client.post("/erasure", data=form | {"csrf_token": "forged", "confirm": "erase"})
    assert forged.status_code == 403
    review = client.post("/erasure", data=form | {"csrf_token": csrf})
    assert review.status_code == 200 and 'id="confirm-erasure"' in review.text
    assert pseudonym_held(service_client)  # nothing changed before the confirmation
    submitted = client.post("/erasure", data=form | {"csrf_token": csrf, "confirm": "erase"})
    assert submitted.status_code == 200, submitted.text
    assert "Submitted for approval" in submitted.text and SUBJECT not in submitted.text
    assert pseudonym_held(service_client)  # not erased until a second admin approves
    found = re.search(r"erasure request ([0-9a-f]+)", submitted.text)
    assert found
    approval = found.group(1)

    page = client.get("/approvals")  # the asker sees it, and may only withdraw it
    assert f'id="approve-{approval}"' not in page.text and "Withdraw" in page.text
    own = client.post(f"/approvals/{approval}/approve", data={"csrf_token": csrf})
    assert own.status_code == 403 and "cannot approve their own request" in own.text
    client.post("/logout", data={"csrf_token": csrf})

    service_client.accounts.add_user("admin-2", Role.admin, PASSWORD)
    csrf = sign_in_as(client, "admin-2")
    page = client.get("/approvals")
    assert f'id="approve-{approval}"' in page.text and SUBJECT not in page.text
    forged = client.post(f"/approvals/{approval}/approve", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and pseudonym_held(service_client)
    done = client.post(f"/approvals/{approval}/approve", data={"csrf_token": csrf, "note": "ok"})
    assert done.status_code == 200, done.text
    assert "erased the key of one member" in done.text and "approved by admin-2" in done.text
    assert "outside this erasure&#39;s reach:" in done.text  # what it cannot reach, and until when
    assert not pseudonym_held(service_client)
    logged = access_entries(service_client)
    assert ("user-admin", "request erasure", "ticket 9") in logged
    assert ("admin-2", "approve erasure request", "ok") in logged
    assert ("user-admin", "erase subject", "ticket 9") in logged


# -- investigate, verify, access log -------------------------------------------------------
def test_investigate_refuses_a_write_and_pages_a_read(service_client: ServiceClient) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.investigator)
    base = {"csrf_token": csrf, "reason": "case 4", "deliver": "page"}
    refused = client.post("/investigate", data=base | {"sql": "DELETE FROM disclosures"})
    assert refused.status_code == 400
    assert "Refused: nothing ran" in refused.text
    first = client.post(
        "/investigate", data=base | {"sql": "SELECT seq FROM disclosures ORDER BY chain_id, seq"}
    )
    assert first.status_code == 200, first.text
    assert "50 rows on this page; more follow" in first.text
    second = client.post(
        "/investigate",
        data=base | {"sql": "SELECT seq FROM disclosures ORDER BY chain_id, seq", "page": "2"},
    )
    assert "10 rows on this page, 60 in all" in second.text
    csv = client.post("/investigate", data=base | {"sql": "SELECT 1 AS one", "deliver": "csv"})
    assert csv.text == "one\n1\n"
    timeline = client.post(
        "/investigate/preset",
        data={
            "csrf_token": csrf,
            "preset": "timeline",
            "subject_id": SUBJECT,
            "reason": "case 4",
            "deliver": "page",
        },
    )
    assert timeline.status_code == 200 and "timeline: 6 rows" in timeline.text
    assert SUBJECT not in timeline.text
    incomplete = client.post(
        "/investigate/preset",
        data={"csrf_token": csrf, "preset": "timeline", "reason": "case 4", "deliver": "page"},
    )
    assert incomplete.status_code == 400
    assert "subject_id: the timeline preset needs it" in incomplete.text
    with service_client.service.view() as view:
        count = view.con.execute("SELECT count(*) FROM disclosures").fetchone()
    assert count == (60,)


def test_verify_runs_and_the_access_log_shows_the_reads(service_client: ServiceClient) -> None:
    client = service_client.client
    csrf = sign_in(client, Role.auditor)
    started = client.post("/verify", data={"csrf_token": csrf}, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == "/verify"
    service_client.service.verify_jobs.join(60)
    page = client.get("/verify")
    assert 'id="outcome"' in page.text and "Verified: 60 rows" in page.text
    assert re.search(r'id="last-verify">last verify: verified, 20', client.get("/").text)
    service_client.service.record_access(
        AccessEntry(
            actor="someone",
            role="investigator",
            action="query",
            reason="case 77",
            rows_returned=3,
            query_text="SELECT 1",
        )
    )
    log = client.get("/access-log")
    assert log.status_code == 200
    assert "case 77" in log.text


def test_a_running_verify_shows_a_progress_bar_that_reloads_itself() -> None:
    from disclosure_ledger.service.console.page import TEMPLATES

    job = {
        "job_id": "j1",
        "state": "running",
        "requested_by": "user-auditor",
        "started_at": "2026-12-05T01:00:00.000Z",
        "rows_done": 30,
        "rows_total": 60,
    }
    html = TEMPLATES.get_template("verify.html.j2").render(
        actor=None, nav=[], current="/verify", csrf_token="t", job=job, refresh=1
    )
    assert '<meta http-equiv="refresh" content="1">' in html
    assert '<progress id="progress" value="30" max="60">' in html
    assert 'id="start-verify"' not in html  # one job at a time


def test_repeated_wrong_passwords_are_throttled(service_client: ServiceClient) -> None:
    client = service_client.client
    answers = [
        client.post(
            "/login",
            data={
                "name": "user-admin",
                "password": "not it at all",
                "login_token": login_token(client),
            },
        )
        for _ in range(7)
    ]
    assert [a.status_code for a in answers[:5]] == [401] * 5
    assert answers[-1].status_code == 429
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert "wait" in answers[-1].text


def test_an_unexpected_failure_names_neither_the_subject_on_the_page_nor_in_the_log(
    service_client: ServiceClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from disclosure_ledger.service.console import subject_requests

    def failing(*_args: object, **_kwargs: object) -> str:
        raise RuntimeError(f"something broke while answering {SUBJECT}")

    monkeypatch.setattr(subject_requests, "subject_answer", failing)
    client = service_client.client
    csrf = sign_in(client, Role.compliance)
    caplog.set_level(logging.DEBUG)
    answer = client.post("/requests/know", data=know_form(csrf))
    assert answer.status_code == 500
    assert_secure_headers(answer)
    assert "RuntimeError" in answer.text
    assert SUBJECT not in answer.text
    assert "console POST /requests/know failed: RuntimeError" in caplog.text
    assert SUBJECT not in caplog.text
