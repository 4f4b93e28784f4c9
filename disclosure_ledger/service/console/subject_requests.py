"""A person's request: the request to know (``/requests/know``, ``report subject``) and
the recipients list (``/requests/recipients``, ``report recipients``).

``GET`` shows the form; ``POST`` (with the session's CSRF token) answers it through
:func:`disclosure_ledger.service.answers.subject_answer`, which records the read in the
access log and the request in the request log, as the CLI records it. The answer is shown
in the page (the library's HTML) or, when a download format is chosen, sent as an
attachment by the same POST: one request, one answer, recorded once.

The subject id travels only in the POST body: it is never put in a URL, a redirect, a log
line, or an error page (a message that would name it has it replaced first).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from markupsafe import Markup
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import SubjectRequest, subject_answer
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.embedding import DOWNLOAD_FORMATS, download, report_body
from disclosure_ledger.service.console.forms import FormError, checked_form, choice_field
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from ledger.errors import LedgerError
from reports.request_log import ReceivedVia

router = APIRouter(route_class=ConsoleRoute)

Kind = Literal["know", "recipients"]
TITLES: dict[Kind, str] = {"know": "Request to know", "recipients": "Recipients"}
BASES: dict[Kind, str] = {
    "know": "Cal. Civ. Code 1798.110/115, GDPR Art. 15(1)(c): what was disclosed, to whom.",
    "recipients": "GDPR Art. 19: every recipient of the person's data.",
}
DELIVERIES = ("page", *DOWNLOAD_FORMATS)
FIELDS = (
    "subject_type",
    "subject_id",
    "received_on",
    "received_via",
    "reason",
    "since",
    "deny",
    "request",
)


def _form_page(request: Request, kind: Kind, *, answer: Markup | None = None) -> Response:
    """The form (and, after a POST, the answer above it)."""
    return render_page(
        request,
        "subject_request.html.j2",
        kind=kind,
        title=TITLES[kind],
        basis=BASES[kind],
        received_via=[via.value for via in ReceivedVia],
        deliveries=DELIVERIES,
        answer=answer,
        today=datetime.now(UTC).date().isoformat(),
    )


def _scrubbed(message: str, subject_id: str) -> str:
    """A message with the subject id replaced: an error page never names the person."""
    return message.replace(subject_id, "[the subject id]") if subject_id else message


def _validation_message(exc: ValidationError) -> str:
    """Which fields were wrong and why, without their values (the model hides inputs)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "form"
        parts.append(f"{field.replace('_', ' ')}: {error['msg']}")
    return "Not answered: " + "; ".join(parts) + "."


def _subject_request(kind: Kind, form: dict[str, str]) -> SubjectRequest:
    values: dict[str, object] = {"kind": kind}
    for name in FIELDS:
        text = form.get(name, "").strip()
        if text:
            values[name] = text if name != "subject_id" else form[name]
    try:
        return SubjectRequest.model_validate(values)
    except ValidationError as exc:
        raise FormError(_validation_message(exc)) from None


async def _answer(request: Request, kind: Kind, actor: Actor, service: LedgerService) -> Response:
    submitted = await checked_form(request)
    form = {k: v for k, v in submitted.items() if isinstance(v, str)}
    subject_id = form.get("subject_id", "")
    delivery = choice_field(submitted, "deliver", "Answer as", DELIVERIES)
    try:
        ask = _subject_request(kind, form)
        fmt = "html" if delivery == "page" else delivery
        text = await run_in_threadpool(subject_answer, service, actor, ask, fmt)
    except HTTPException as exc:
        raise HTTPException(exc.status_code, _scrubbed(str(exc.detail), subject_id)) from None
    except LedgerError as exc:  # the access log could not be written: not answered
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Not answered: the read could not be recorded in the access log "
            f"({_scrubbed(str(exc), subject_id)}).",
        ) from None
    except DisclosureLedgerError as exc:
        raise FormError("Not answered: " + _scrubbed(str(exc), subject_id)) from None
    if delivery != "page":
        stem = "request-to-know" if kind == "know" else "recipients"
        return download(text, stem=f"{stem}-{ask.received_on.isoformat()}", fmt=delivery)
    return _form_page(request, kind, answer=report_body(text))


@router.get("/requests/know")
def know_form(
    request: Request, _actor: Annotated[Actor, Depends(require(Action.request_to_know))]
) -> Response:
    return _form_page(request, "know")


@router.post("/requests/know")
async def know_answer(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.request_to_know))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    return await _answer(request, "know", actor, service)


@router.get("/requests/recipients")
def recipients_form(
    request: Request, _actor: Annotated[Actor, Depends(require(Action.request_to_know))]
) -> Response:
    return _form_page(request, "recipients")


@router.post("/requests/recipients")
async def recipients_answer(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.request_to_know))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    return await _answer(request, "recipients", actor, service)
