"""``POST /api/v1/requests/know`` and ``POST /api/v1/requests/recipients``: a person's
request answered as ``report subject`` / ``report recipients`` answer it, recorded in the
request log and, before the answer is sent, in the access log (with ``request``: the open
register entry it answers).

The request register (``requests ...``): ``POST /requests`` opens a request, ``GET
/requests`` lists the register (``overdue``, ``due_within``, ``status``, ``as_of``), ``GET
/requests/{id}`` shows one, and ``POST /requests/{id}/identity``, ``/extension``,
``/answer`` and ``/denial`` record the steps.

The subject id travels only in the JSON body: never in the URL, a log line or an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import SubjectRequest, SubjectRequestFields, subject_answer
from disclosure_ledger.service.answers import requests as register
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.api.reports import ReportFormat, report_response
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService
from reports.errors import ReportError
from reports.request_register import Status

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


# -- the request register ---------------------------------------------------------------------
_ENTRY = {"description": "the register entry (as `requests show --format json` prints it)"}


def _register_step(step: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        return JSONResponse(step())
    except DisclosureLedgerError as exc:
        return refusal(exc)


@router.post("/requests", responses={200: _ENTRY, **ERROR_RESPONSES}, response_class=JSONResponse)
def post_open_request(
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: register.OpenRequestBody,
) -> JSONResponse:
    """Record a request received (``requests open``): its id and statutory deadline."""
    return _register_step(lambda: register.open_request(service, actor, body))


@router.get("/requests", responses=ERROR_RESPONSES)
def get_request_register(
    _actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    overdue: Annotated[bool, Query(description="only requests past their deadline")] = False,
    due_within: Annotated[
        int | None, Query(ge=0, description="only open requests due within this many days")
    ] = None,
    status: Annotated[
        str | None, Query(description="comma-separated: open, extended, answered, denied")
    ] = None,
    as_of: Annotated[date | None, Query(description="judge deadlines on (default today)")] = None,
) -> JSONResponse:
    """The register (``requests list``): overdue first, then by deadline."""

    def listing() -> dict[str, Any]:
        try:
            statuses = tuple(Status(s.strip()) for s in (status or "").split(",") if s.strip())
        except ValueError:
            raise ReportError(
                "status: give open, extended, answered or denied (comma-separated)"
            ) from None
        return register.listing(
            service, as_of=as_of, overdue=overdue, due_within=due_within, statuses=statuses
        )

    return _register_step(listing)


@router.get("/requests/{request_id}", responses={200: _ENTRY, **ERROR_RESPONSES})
def get_register_entry(
    request_id: str,
    _actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    as_of: Annotated[date | None, Query(description="judge deadlines on (default today)")] = None,
) -> JSONResponse:
    """One request (``requests show``)."""
    return _register_step(lambda: register.show(service, request_id, as_of))


@router.post("/requests/{request_id}/identity", responses={200: _ENTRY, **ERROR_RESPONSES})
def post_identity_check(
    request_id: str,
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: register.IdentityBody,
) -> JSONResponse:
    """Record how the requester's identity was verified (``requests verify-identity``)."""
    return _register_step(lambda: register.verify_identity(service, actor, request_id, body))


@router.post("/requests/{request_id}/extension", responses={200: _ENTRY, **ERROR_RESPONSES})
def post_extension(
    request_id: str,
    _actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: register.ExtensionBody,
) -> JSONResponse:
    """The one extension: CCPA +45 days, GDPR +2 months (``requests extend``)."""
    return _register_step(lambda: register.extend(service, request_id, body))


@router.post("/requests/{request_id}/answer", responses={200: _ENTRY, **ERROR_RESPONSES})
def post_register_answer(
    request_id: str,
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: register.AnswerBody,
) -> JSONResponse:
    """The answer: its document's SHA-256 and where it is kept (``requests answer``)."""
    return _register_step(lambda: register.answer(service, actor, request_id, body))


@router.post("/requests/{request_id}/denial", responses={200: _ENTRY, **ERROR_RESPONSES})
def post_register_denial(
    request_id: str,
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: register.DenialBody,
) -> JSONResponse:
    """The request denied, with its 11 CCR 7102 ground and basis (``requests deny``)."""
    return _register_step(lambda: register.deny(service, actor, request_id, body))
