"""A query's rows say how far the ledger they were read from is complete: rows carry no
coverage of their own, so an investigator could otherwise take a partial answer as whole."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.service.auth.roles import Role
from ledger.store import Ledger
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.service.conftest import ServiceClient, build_ledger, serving
from tests.service.test_console import sign_in

SQL = "SELECT count(*) AS n FROM disclosures"


@pytest.fixture
def unproven(tmp_path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    """The service over a ledger that can prove itself complete through no time."""
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    with Ledger(path) as ledger:
        ledger.con.execute("DELETE FROM watermarks")
    with serving(path, reference) as served:
        yield served


def _query(api: ServiceClient, path: str = "") -> dict[str, str]:
    answer = api.client.post(
        f"/api/v1/queries{path}",
        json={"sql": SQL, "reason": "case 1", "format": "csv"},
        headers=api.as_role(Role.investigator),
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.headers)


def test_a_download_and_a_page_carry_the_coverage(service_client: ServiceClient) -> None:
    status = service_client.client.get(
        "/api/v1/status", headers=service_client.as_role(Role.investigator)
    ).json()
    through = status["coverage"]["coverage"]["complete_through"]
    assert through is not None
    headers = _query(service_client)
    assert headers["x-ledger-complete-through"] == through
    assert headers["x-ledger-coverage"].startswith(f"the ledger is complete through {through}")
    page = service_client.client.post(
        "/api/v1/queries/page",
        json={"sql": SQL, "reason": "case 1"},
        headers=service_client.as_role(Role.investigator),
    ).json()
    assert page["complete_through"] == through
    assert page["coverage"].startswith("the ledger is complete through")


def test_rows_from_an_unproven_ledger_say_so(unproven: ServiceClient) -> None:
    headers = _query(unproven)
    assert headers["x-ledger-complete-through"] == "none"
    assert "complete through no known time" in headers["x-ledger-coverage"]
    csrf = sign_in(unproven.client, Role.investigator)
    page = unproven.client.post(
        "/investigate",
        data={"csrf_token": csrf, "reason": "case 2", "deliver": "page", "sql": SQL},
    )
    assert page.status_code == 200
    assert "Coverage: the ledger is complete through no known time" in page.text


def test_the_command_writes_the_coverage_beside_the_rows(
    tmp_path: Path,
    reference: ReferenceData,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", TEST_SECRET.decode())
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    assert main(["query", "--ledger", str(path), "--format", "csv", SQL]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "n"
    assert "note: the ledger is complete through" in err
    assert "may still arrive" in err
