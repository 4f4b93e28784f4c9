"""The web console in process: sign-in, the security headers on every page, who may use
which page, CSRF, and that a subject id never reaches a URL, a redirect or a log line."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from disclosure_ledger.service.auth.roles import Action, Role, permission_allowed
from disclosure_ledger.service.console.page import CONTENT_SECURITY_POLICY, NAVIGATION
from tests.service.conftest import PASSWORD, ServiceClient


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    found = re.search(r'name="login_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def sign_in(client: TestClient, role: Role) -> str:
    """Signs ``client`` in as ``user-<role>``; returns the session's CSRF token."""
    answer = client.post(
        "/login",
        data={"name": f"user-{role.value}", "password": PASSWORD, "login_token": login_token(client)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/"
    page = client.get("/")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_sign_in_opens_the_dashboard(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.auditor)
    page = client.get("/")
    assert page.status_code == 200
    assert "Dashboard" in page.text
    assert "60 rows" in page.text
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_ccpa_page_embeds_the_library_report(service_client: ServiceClient) -> None:
    client = service_client.client
    sign_in(client, Role.compliance)
    page = client.get("/reports/ccpa", params={"as_of": "2026-12-01"})
    assert page.status_code == 200, page.text
    assert 'id="disclosures-per-month"' in page.text
    md = client.get("/reports/ccpa/download", params={"as_of": "2026-12-01", "format": "md"})
    assert md.status_code == 200
    assert md.headers["content-disposition"] == 'attachment; filename="ccpa-report-2026-12-01.md"'
