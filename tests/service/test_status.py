"""The status route over a real ledger, and the one permission check every route uses."""

from __future__ import annotations

from disclosure_ledger.service.auth.roles import Role
from tests.service.conftest import ServiceClient


def test_status_reports_rows_and_chains_of_the_ledger(service_client: ServiceClient) -> None:
    answer = service_client.client.get(
        "/api/v1/status", headers=service_client.as_role(Role.auditor)
    )
    assert answer.status_code == 200
    body = answer.json()
    assert (body["rows"], body["chains"]) == (60, 3)
    assert body["coverage"]["coverage"]["complete_through"] is not None


def test_status_needs_credentials(service_client: ServiceClient) -> None:
    assert service_client.client.get("/api/v1/status").status_code == 401
    wrong = {"Authorization": "Bearer dl_00000000_not-a-token"}
    assert service_client.client.get("/api/v1/status", headers=wrong).status_code == 401
