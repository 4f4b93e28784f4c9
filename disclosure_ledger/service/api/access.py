"""``GET /api/v1/access-log``: the access report (:mod:`reports.access`) of a window, in
json (its ``access-report/1`` contract), md, csv or html, produced by the same code as
``disclosure-ledger report access``. For auditors and admins; subjects appear as the
pseudonyms the entries hold. Reading it is not itself a read of personal data, so it is
not logged in the access log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService
from reports.access import access_report, render_access
from reports.errors import ReportError

router = APIRouter(tags=["access log"])

MEDIA_TYPES = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@router.get("/access-log", response_class=Response)
def get_access_log(
    _actor: Annotated[Actor, Depends(require(Action.access_log))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    since: Annotated[
        datetime,
        Query(description="window start, included: a date or RFC 3339 time (UTC if no zone)"),
    ],
    until: Annotated[
        datetime | None, Query(description="window end, excluded (default: now)")
    ] = None,
    format: Annotated[
        Literal["json", "md", "csv", "html"], Query(description="output format")
    ] = "json",
) -> Response:
    """Every read of personal data recorded with ``since <= accessed_at < until``."""
    try:
        with service.view() as view:
            report = access_report(view, since=since, until=until)
    except ReportError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
    headers = (
        {}
        if format == "json"
        else {"Content-Disposition": f'attachment; filename="access-report.{format}"'}
    )
    return Response(render_access(report, format), media_type=MEDIA_TYPES[format], headers=headers)
