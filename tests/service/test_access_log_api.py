"""``GET /api/v1/access-log``: the access report of a window, for auditors and admins, in
the same formats and with the same content as ``report access``."""

from __future__ import annotations

from datetime import UTC, datetime

from disclosure_ledger.service.auth.roles import Role
from ledger.access_log import AccessEntry
from reports.access import access_report, render_access
from tests.service.conftest import ServiceClient

PSEUDONYM = "5e" * 16


def _record(sc: ServiceClient) -> None:
    sc.service.record_access(
        AccessEntry(
            "user-compliance",
            "compliance",
            "report subject",
            "CASE-42",
            7,
            subject_pseudonym=PSEUDONYM,
        )
    )
    sc.service.record_access(
        AccessEntry("user-investigator", "investigator", "query", "INC-1", 2, query_text="SELECT 1")
    )


def test_auditors_and_admins_read_the_access_log_as_json(service_client: ServiceClient) -> None:
    _record(service_client)
    for role in (Role.auditor, Role.admin):
        answer = service_client.client.get(
            "/api/v1/access-log",
            params={"since": "2020-01-01"},
            headers=service_client.as_role(role),
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["report"] == "access-report/1" and body["entries_counted"] == 2
        first = body["entries"][0]
        assert (first["subject_pseudonym"], first["reason"]) == (PSEUDONYM, "CASE-42")
        assert body["access_log"]["length"] == 2


def test_other_roles_are_refused(service_client: ServiceClient) -> None:
    for role in (Role.compliance, Role.investigator):
        answer = service_client.client.get(
            "/api/v1/access-log",
            params={"since": "2020-01-01"},
            headers=service_client.as_role(role),
        )
        assert answer.status_code == 403
    assert service_client.client.get("/api/v1/access-log?since=2020-01-01").status_code == 401


def test_csv_and_md_are_what_the_cli_writes(service_client: ServiceClient) -> None:
    _record(service_client)
    headers = service_client.as_role(Role.auditor)
    for fmt, media in (("csv", "text/csv"), ("md", "text/markdown"), ("html", "text/html")):
        answer = service_client.client.get(
            "/api/v1/access-log",
            params={"since": "2020-01-01", "until": "2100-01-01", "format": fmt},
            headers=headers,
        )
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(media)
        assert f'filename="access-report.{fmt}"' in answer.headers["content-disposition"]
        with service_client.service.view() as view:
            expected = render_access(access_report(view, since=_utc(2020), until=_utc(2100)), fmt)
        # the same text but for the time it was generated at
        assert _without_generated(answer.text) == _without_generated(expected)


def _utc(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


def _without_generated(text: str) -> list[str]:
    return [line for line in text.splitlines() if "enerated" not in line]


def test_bad_windows_and_formats_are_4xx_naming_the_input(service_client: ServiceClient) -> None:
    headers = service_client.as_role(Role.auditor)
    backwards = service_client.client.get(
        "/api/v1/access-log",
        params={"since": "2026-02-01", "until": "2026-01-01"},
        headers=headers,
    )
    assert backwards.status_code == 400 and "--until" in backwards.json()["detail"]
    for params in ({}, {"since": "yesterday"}, {"since": "2026-01-01", "format": "xlsx"}):
        answer = service_client.client.get("/api/v1/access-log", params=params, headers=headers)
        assert answer.status_code == 422, params
