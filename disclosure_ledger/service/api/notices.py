"""GDPR Art. 19 notices (compliance, admin): ``POST /api/v1/erasures/{erasure_id}/notices``
records a notice sent to a recipient of an erased subject's data (``notices record``);
``GET /api/v1/notices`` lists every erasure's notices due and sent (``report recipients
--notices-due``). Neither names a subject: erasure ids and recipients only.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.notices import (
    notice_line,
    notices_report_text,
    record_erasure_notice,
)
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.api.reports import _DOCUMENT, ReportFormat, report_response
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService
from ledger.notices import NOTE_MAX

router = APIRouter(tags=["erasure"])


class NoticeRequest(BaseModel):
    recipient_id: str = Field(min_length=1, max_length=512, description="who was notified")
    sent_on: date = Field(description="the day the notice was sent (not before the erasure)")
    note: str | None = Field(
        default=None, max_length=NOTE_MAX, description="how it was sent, a reference"
    )


class NoticeJson(BaseModel):
    erasure_id: str
    erased_at: str
    recipient_id: str
    sent_on: str
    recorded_at: str
    recorded_by: str
    note: str | None
    line: str = Field(description="what `notices record` prints")


@router.post(
    "/erasures/{erasure_id}/notices",
    response_model=NoticeJson,
    status_code=201,
    responses={**ERROR_RESPONSES, 422: {"description": "the notice cannot be recorded"}},
)
def post_notice(
    actor: Annotated[Actor, Depends(require(Action.erasure_notices))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    erasure_id: Annotated[str, Path(max_length=64, description="from the erasure journal")],
    body: NoticeRequest,
) -> NoticeJson | JSONResponse:
    """Record that a recipient was told of an erasure (GDPR Art. 19); kept in the access log."""
    try:
        notice = record_erasure_notice(
            service,
            actor,
            erasure_id=erasure_id,
            recipient_id=body.recipient_id,
            sent_on=body.sent_on,
            note=body.note,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return NoticeJson(
        erasure_id=notice.erasure_id,
        erased_at=f"{notice.erased_at:%Y-%m-%dT%H:%M:%SZ}",
        recipient_id=notice.recipient_id,
        sent_on=notice.sent_on.isoformat(),
        recorded_at=f"{notice.recorded_at:%Y-%m-%dT%H:%M:%SZ}",
        recorded_by=notice.recorded_by,
        note=notice.note,
        line=notice_line(notice),
    )


@router.get(
    "/notices",
    responses={200: _DOCUMENT, **ERROR_RESPONSES},
    response_class=Response,
)
def get_notices(
    _actor: Annotated[Actor, Depends(require(Action.erasure_notices))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    fmt: Annotated[ReportFormat, Query(alias="format")] = ReportFormat.json,
) -> Response:
    """Every erasure's GDPR Art. 19 notices, due and sent (``report recipients
    --notices-due``; JSON ``erasure-notices/1``)."""
    try:
        text = notices_report_text(service, fmt.value)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return report_response(text, fmt.value, "erasure-notices")
