"""The web console in process: sign-in, the security headers on every response, who may
use which page, CSRF, expired sessions, and that a subject id never reaches a URL, a
redirect or a log line."""

from __future__ import annotations

import logging
import re
import sqlite3

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from disclosure_ledger.service.auth.roles import Role, permission_allowed
from disclosure_ledger.service.console.page import CONTENT_SECURITY_POLICY, NAVIGATION
from tests.service.conftest import PASSWORD, ServiceClient

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
        data={"name": "user-admin", "password": "wrong password!", "login_token": login_token(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "Wrong user name or password" in answer.text
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
    assert client.post("/logout", data={}, follow_redirects=False).status_code == 403
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
            assert f"The {role.value} role may not use this page" in answer.text
            assert nav_paths(answer.text) == allowed


def test_the_stylesheet_is_served_from_the_package(service_client: ServiceClient) -> None:
    answer = service_client.client.get("/console.css")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/css")
    assert "article.report" in answer.text


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
    assert client.get("/reports/ccpa/download", params={"as_of": "2026-12-01", "format": "../x"}).status_code == 400


def test_a_bad_as_of_is_named_and_a_future_one_refused(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.compliance)
    bad = client.get("/reports/transfers", params={"as_of": "yesterday"})
    assert bad.status_code == 400
    assert "As of: give a date as YYYY-MM-DD" in bad.text
    assert client.get("/reports/ccpa", params={"as_of": "2999-01-01"}).status_code == 400
    assert client.get("/reports/nonsense", params={"as_of": "2026-01-01"}).status_code == 404
