"""``/access-log``: the access log's entries of a window, for admins and auditors.

The page shows ``report access --since DATE`` as the library renders it (who read, with
which role, when, what, why, how many rows; subjects as the pseudonyms the entries hold),
with its downloads in md, html, csv and json. Nothing here can change an entry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.embedding import (
    DOWNLOAD_FORMATS,
    download,
    download_format,
    report_body,
)
from disclosure_ledger.service.console.forms import FormError, parse_date
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from reports.access import access_report, render_access
from reports.errors import ReportError

router = APIRouter(route_class=ConsoleRoute)

DEFAULT_DAYS = 7


def access_text(service: LedgerService, since: date, until: date | None, fmt: str) -> str:
    """``report access --since SINCE`` on a view, in ``fmt``."""
    with service.view() as view:
        return render_access(access_report(view, since=since, until=until), fmt)


@router.get("/access-log")
def access_log_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.access_log))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    params = request.query_params
    since = parse_date(params.get("since"), "Since") or (
        datetime.now(UTC).date() - timedelta(days=DEFAULT_DAYS)
    )
    until = parse_date(params.get("until"), "Until")
    fmt = params.get("format")
    try:
        if fmt is not None:
            text = access_text(service, since, until, download_format(fmt))
            return download(text, stem="access-log", fmt=fmt, on=since)
        body = report_body(access_text(service, since, until, "html"))
    except ReportError as exc:
        raise FormError(str(exc)) from exc
    query = {"since": since.isoformat()} | ({"until": until.isoformat()} if until else {})
    return render_page(
        request,
        "access_log.html.j2",
        since=since,
        until=until,
        query=query,
        report=body,
        formats=list(DOWNLOAD_FORMATS),
    )
