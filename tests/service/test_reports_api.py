"""``GET /api/v1/reports/...``: every period report in every format, as the library
writes it; refused as incomplete (409, with the coverage) unless allow_incomplete; the
request metrics; who may ask."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from disclosure_ledger.service.answers import period_report
from disclosure_ledger.service.auth.roles import Role
from reference import ReferenceData
from tests.service.conftest import ServiceClient, build_ledger, serving

AS_OF = "2026-12-01"
KINDS = ["ccpa", "conformance", "transfers"]
MEDIA = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
_GENERATED = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")


def stable(text: str) -> str:
    """The text with every time of today blanked (when it was generated)."""
    today = datetime.now(UTC).date().isoformat()
    return _GENERATED.sub(lambda m: "<now>" if m.group(0).startswith(today) else m.group(0), text)


@pytest.mark.parametrize("fmt", list(MEDIA))
@pytest.mark.parametrize("kind", KINDS)
def test_every_report_in_every_format_is_the_library_text(
    service_client: ServiceClient, kind: str, fmt: str
) -> None:
    answer = service_client.client.get(
        f"/api/v1/reports/{kind}",
        params={"as_of": AS_OF, "format": fmt},
        headers=service_client.as_role(Role.compliance),
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == MEDIA[fmt]
    expected = period_report(
        service_client.service,
        kind,  # type: ignore[arg-type]
        as_of=datetime(2026, 12, 1, tzinfo=UTC),
        fmt=fmt,
    )
    assert stable(answer.text) == stable(expected)
    if fmt == "json":
        assert "content-disposition" not in answer.headers
        assert json.loads(answer.text)["as_of"] == "2026-12-01T00:00:00Z"
    else:
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="{kind}-{AS_OF}.{fmt}"'
        )


def test_json_is_the_default(service_client: ServiceClient) -> None:
    answer = service_client.client.get(
        "/api/v1/reports/ccpa",
        params={"as_of": AS_OF},
        headers=service_client.as_role(Role.compliance),
    )
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["report"] == "ccpa-report/1"


def test_since_narrows_a_conformance_window(service_client: ServiceClient) -> None:
    answer = service_client.client.get(
        "/api/v1/reports/conformance",
        params={"as_of": AS_OF, "since": "2026-06-01T00:00:00Z"},
        headers=service_client.as_role(Role.compliance),
    )
    assert answer.status_code == 200
    assert answer.json()["window"]["start"] == "2026-06-01T00:00:00Z"


@pytest.fixture
def incomplete_client(tmp_path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    """A ledger complete only through 2026-06-01."""
    path = build_ledger(
        tmp_path / "incomplete.duckdb", reference, complete_through=datetime(2026, 6, 1)
    )
    with serving(path, reference) as client:
        yield client


@pytest.mark.parametrize("kind", KINDS)
def test_a_window_after_the_coverage_is_refused_with_the_coverage(
    incomplete_client: ServiceClient, kind: str
) -> None:
    answer = incomplete_client.client.get(
        f"/api/v1/reports/{kind}",
        params={"as_of": AS_OF, "format": "md"},
        headers=incomplete_client.as_role(Role.compliance),
    )
    assert answer.status_code == 409
    body = answer.json()
    assert body["error"] == "incomplete"
    assert "--allow-incomplete" in body["detail"]
    assert body["coverage"]["complete_through"].startswith("2026-05-31")
    assert body["coverage"]["holding_back"]
    assert "complete through 2026-05-31" in body["coverage"]["description"]


def test_allow_incomplete_gives_the_provisional_report(incomplete_client: ServiceClient) -> None:
    answer = incomplete_client.client.get(
        "/api/v1/reports/ccpa",
        params={"as_of": AS_OF, "allow_incomplete": "true"},
        headers=incomplete_client.as_role(Role.compliance),
    )
    assert answer.status_code == 200
    coverage = answer.json()["coverage"]
    assert coverage["complete"] is False
    assert "PROVISIONAL" in coverage["statement"]


def test_an_as_of_in_the_future_is_a_400_saying_so(service_client: ServiceClient) -> None:
    answer = service_client.client.get(
        "/api/v1/reports/ccpa",
        params={"as_of": "2999-01-01"},
        headers=service_client.as_role(Role.compliance),
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "future_as_of"
    assert "later than now" in answer.json()["detail"]


def test_since_is_refused_for_ccpa(service_client: ServiceClient) -> None:
    answer = service_client.client.get(
        "/api/v1/reports/ccpa",
        params={"as_of": AS_OF, "since": "2026-01-01"},
        headers=service_client.as_role(Role.compliance),
    )
    assert answer.status_code == 422
    assert "12 months" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/v1/reports/sales", {"as_of": AS_OF}, "'ccpa', 'conformance' or 'transfers'"),
        ("/api/v1/reports/ccpa", {"as_of": AS_OF, "format": "pdf"}, "'json', 'md', 'html' or"),
        ("/api/v1/reports/ccpa", {}, "as_of"),
        ("/api/v1/reports/ccpa", {"as_of": "yesterday"}, "as_of"),
    ],
)
def test_bad_input_is_a_422_naming_it(
    service_client: ServiceClient, path: str, params: dict[str, str], named: str
) -> None:
    answer = service_client.client.get(
        path, params=params, headers=service_client.as_role(Role.compliance)
    )
    assert answer.status_code == 422
    assert named in answer.text


def test_request_metrics_before_and_after_a_request(service_client: ServiceClient) -> None:
    headers = service_client.as_role(Role.compliance)
    none_yet = service_client.client.get(
        "/api/v1/reports/requests", params={"year": 2026}, headers=headers
    )
    assert none_yet.status_code == 404
    assert "no request log" in none_yet.json()["detail"]
    asked = service_client.client.post(
        "/api/v1/requests/know",
        json={"subject_id": "member-3", "reason": "CASE-7", "received_on": "2026-11-20"},
        headers=headers,
    )
    assert asked.status_code == 200
    metrics = service_client.client.get(
        "/api/v1/reports/requests", params={"year": 2026}, headers=headers
    )
    assert metrics.status_code == 200
    know = metrics.json()["kinds"][0]
    assert (know["kind"], know["received"]) == ("know", 1)
    csv = service_client.client.get(
        "/api/v1/reports/requests", params={"year": 2026, "format": "csv"}, headers=headers
    )
    assert csv.headers["content-disposition"] == 'attachment; filename="requests-2026.csv"'


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        (f"/api/v1/reports/ccpa?as_of={AS_OF}", {Role.compliance}),
        ("/api/v1/reports/requests?year=2026", {Role.compliance}),
    ],
)
def test_only_compliance_may_read_reports(
    service_client: ServiceClient, path: str, allowed: set[Role]
) -> None:
    assert service_client.client.get(path).status_code == 401
    for role in Role:
        answer = service_client.client.get(path, headers=service_client.as_role(role))
        if role in allowed:
            assert answer.status_code != 403
        else:
            assert answer.status_code == 403, role
            assert f"the {role.value} role may not" in answer.json()["detail"]
