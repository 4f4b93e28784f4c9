"""``GET /api/v1/reports/...``: the period reports and the request metrics, as the CLI's
``report KIND --format`` writes them. JSON by default; md, html and csv as downloads.

None of these reads personal data (no access-log entry): the compliance role's reports.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import period_report, request_metrics
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["reports"])


class PeriodReportKind(StrEnum):
    ccpa = "ccpa"
    conformance = "conformance"
    transfers = "transfers"


class ReportFormat(StrEnum):
    json = "json"
    md = "md"
    html = "html"
    csv = "csv"


MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}

_DOCUMENT = {
    "content": {media.split(";")[0]: {} for media in MEDIA_TYPES.values()},
    "description": "the report in the format asked for (json inline, others as downloads)",
}


def report_response(text: str, fmt: str, filename: str) -> Response:
    """``text`` with its media type; md, html and csv as a download named ``filename.fmt``."""
    headers = {}
    if fmt != "json":
        headers["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return Response(text, media_type=MEDIA_TYPES[fmt], headers=headers)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.get(
    "/reports/requests",
    responses={200: _DOCUMENT, **ERROR_RESPONSES, 404: {"description": "no request log yet"}},
    response_class=Response,
)
def get_request_metrics(
    _actor: Annotated[Actor, Depends(require(Action.request_metrics))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    year: Annotated[int, Query(ge=1970, le=9999, description="calendar year, e.g. 2026")],
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> Response:
    """11 CCR 7102 metrics of the request log for a calendar year (``report requests``)."""
    try:
        text = request_metrics(service, year, fmt.value)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return report_response(text, fmt.value, f"requests-{year}")


@router.get(
    "/reports/{kind}",
    responses={200: _DOCUMENT, **ERROR_RESPONSES},
    response_class=Response,
)
def get_period_report(
    _actor: Annotated[Actor, Depends(require(Action.report))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    kind: PeriodReportKind,
    as_of: Annotated[
        datetime,
        Query(description="end of the window, exclusive; a date or RFC 3339 time (UTC if no zone)"),
    ],
    since: Annotated[
        datetime | None,
        Query(description="conformance, transfers: window start (default 12 months)"),
    ] = None,
    allow_incomplete: Annotated[
        bool,
        Query(
            description="produce a report marked provisional when the window ends after "
            "the ledger's coverage (without it: 409)"
        ),
    ] = False,
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> Response:
    """A CCPA, conformance or transfers report (``report ccpa|conformance|transfers``)."""
    as_of = _utc(as_of)
    try:
        text = period_report(
            service,
            kind.value,
            as_of=as_of,
            since=None if since is None else _utc(since),
            allow_incomplete=allow_incomplete,
            fmt=fmt.value,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return report_response(text, fmt.value, f"{kind.value}-{as_of:%Y-%m-%d}")
