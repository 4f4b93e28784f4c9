"""``POST /api/v1/requests/know`` and ``POST /api/v1/requests/recipients``: a person's
request answered as ``report subject`` / ``report recipients`` answer it, recorded in the
request log and, before the answer is sent, in the access log.

The subject id travels only in the JSON body: never in the URL, a log line or an error.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import SubjectRequest, SubjectRequestFields, subject_answer
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.api.reports import ReportFormat, report_response
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["requests"])


class SubjectRequestBody(SubjectRequestFields):
    """A request to know or for the recipients, and the format of the answer."""

    format: ReportFormat = Field(
        ReportFormat.json, description="json (default), or md, html or csv as a download"
    )


_ANSWER = {
    "content": {"application/json": {}, "text/markdown": {}, "text/html": {}, "text/csv": {}},
    "description": "the answer (subject-report/1, recipients-report/1 or request-denial/1 "
    "in json), recorded in the request log and the access log",
}


def _answer(
    kind: Literal["know", "recipients"],
    actor: Actor,
    service: LedgerService,
    body: SubjectRequestBody,
) -> Response:
    request = SubjectRequest(kind=kind, **body.model_dump(exclude={"format"}))
    fmt = body.format.value
    try:
        text = subject_answer(service, actor, request, fmt)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    name = "request-to-know" if kind == "know" else "recipients"
    return report_response(text, fmt, f"{name}-{request.received_on:%Y-%m-%d}")


@router.post("/requests/know", responses={200: _ANSWER, **ERROR_RESPONSES}, response_class=Response)
def post_request_to_know(
    actor: Annotated[Actor, Depends(require(Action.request_to_know))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: SubjectRequestBody,
) -> Response:
    """A consumer's request to know (CCPA 1798.110/115, GDPR Art. 15(1)(c))."""
    return _answer("know", actor, service, body)


@router.post(
    "/requests/recipients", responses={200: _ANSWER, **ERROR_RESPONSES}, response_class=Response
)
def post_recipients_request(
    actor: Annotated[Actor, Depends(require(Action.request_to_know))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: SubjectRequestBody,
) -> Response:
    """Every recipient of a person's data (GDPR Art. 19)."""
    return _answer("recipients", actor, service, body)
