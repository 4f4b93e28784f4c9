"""Path traversal in downloads: every spelling of "a file beside or above" answers 4xx,
and no byte of the file it names comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from disclosure_ledger.service.auth.roles import Role
from tests.service.conftest import ServiceClient

SECRET_LINE = "[build-system]"
"""The first line of pyproject.toml, two folders above the console's static files."""

TRAVERSALS = [
    "/static/../../../../pyproject.toml",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    "/static/..%2f..%2f..%2f..%2fpyproject.toml",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/....//....//pyproject.toml",
    "/api/v1/reports/..%2f..%2f..%2fpyproject.toml?as_of=2026-11-01",
    "/api/v1/reports/ccpa?as_of=2026-11-01&format=..%2f..%2fpyproject.toml",
    "/api/v1/access-log?since=2026-01-01&format=../../etc/passwd",
]


@pytest.mark.parametrize("url", TRAVERSALS)
@pytest.mark.parametrize("role", [Role.compliance, Role.auditor])
def test_a_traversal_is_refused_and_reads_nothing(
    service_client: ServiceClient, url: str, role: Role
) -> None:
    assert SECRET_LINE in Path("pyproject.toml").read_text(encoding="utf-8")
    answer = service_client.client.get(url, headers=service_client.as_role(role))
    assert 400 <= answer.status_code < 500, (url, answer.status_code)
    assert SECRET_LINE not in answer.text
    assert "root:" not in answer.text  # /etc/passwd


def test_the_static_files_themselves_are_served(service_client: ServiceClient) -> None:
    """The refusals above are not because nothing is served."""
    listed = [
        p.name
        for p in Path("disclosure_ledger/service/console/static").iterdir()
        if p.suffix == ".css"
    ]
    assert listed
    answer = service_client.client.get(f"/static/{listed[0]}")
    assert answer.status_code == 200 and answer.text.strip()
