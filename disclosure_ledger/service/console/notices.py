"""``/notices``: GDPR Art. 19 notices after erasures (compliance, admin).

``GET /notices`` shows what ``report recipients --notices-due`` writes: for every erasure in
the journal, each recipient not yet notified (with the erasure day and days due), and the
notices sent, with downloads (``?format=md|html|csv|json``). Each due notice has a form:
``POST /notices`` (with the session's CSRF token) records it, as ``notices record`` does,
and the access log keeps who recorded it. No subject is named anywhere.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.service.answers.notices import (
    notice_line,
    notices_report_text,
    record_erasure_notice,
)
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
from disclosure_ledger.service.console.forms import FormError, checked_form, parse_date, text_field
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from ledger.notices import NoticeError, erasure_notices

router = APIRouter(route_class=ConsoleRoute)


def _page(request: Request, service: LedgerService, recorded: str | None) -> Response:
    with service.view() as view:
        due = erasure_notices(view).due
    body = report_body(notices_report_text(service, "html"))
    return render_page(
        request,
        "notices.html.j2",
        report=body,
        due=due,
        recorded=recorded,
        formats=list(DOWNLOAD_FORMATS),
    )


@router.get("/notices")
def notices_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.erasure_notices))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    fmt = request.query_params.get("format")
    if fmt is not None:
        text = notices_report_text(service, download_format(fmt))
        return download(text, stem="erasure-notices", fmt=fmt)
    return _page(request, service, None)


@router.post("/notices")
async def record_notice_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.erasure_notices))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    erasure_id = text_field(form, "erasure_id", "Erasure")
    recipient_id = text_field(form, "recipient_id", "Recipient")
    sent_on = parse_date(str(form.get("sent_on") or ""), "Sent on")
    if sent_on is None:
        raise FormError("Sent on: give the day the notice was sent.")
    note = str(form.get("note") or "").strip() or None
    try:
        notice = await run_in_threadpool(
            record_erasure_notice,
            service,
            actor,
            erasure_id=erasure_id,
            recipient_id=recipient_id,
            sent_on=sent_on,
            note=note,
        )
    except NoticeError as exc:
        raise FormError(f"Not recorded: {exc}") from None
    return _page(request, service, notice_line(notice))
