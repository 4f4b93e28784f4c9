"""``/register``: the request register for compliance, open, due soon and overdue first.

``GET /register`` lists the register (``?as_of=`` judges deadlines on another day) with a
form to open a request; ``GET /register/{id}`` shows one request with a form for each step
still possible: record the identity verification, take the one extension, answer (the
answer document is uploaded to be hashed and is not kept by the service: say where it is
stored), deny. Every POST carries the session's CSRF token and calls the same functions as
the API (:mod:`disclosure_ledger.service.answers.requests`). The subject id travels only in
the opening POST's body and is never shown: the register holds a keyed token, not the id.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import requests as register
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.forms import FormError, checked_form, parse_date
from disclosure_ledger.service.console.page import ConsoleRoute, error_page, render_page
from disclosure_ledger.service.runtime import LedgerService
from reports.register_listing import LIMITS, state_text
from reports.request_log import ReceivedVia, RequestKind
from reports.request_register import DenialGround, Law

router = APIRouter(route_class=ConsoleRoute)

STEPS: dict[str, type[BaseModel]] = {
    "identity": register.IdentityBody,
    "extension": register.ExtensionBody,
    "answer": register.AnswerBody,
    "denial": register.DenialBody,
}


def _fields(form: Any, names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            values[name] = value if name == "subject_id" else value.strip()
    return values


def _refused(exc: ValidationError | DisclosureLedgerError, subject_id: str = "") -> FormError:
    if isinstance(exc, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in e['loc']).replace('_', ' ')}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        message = "; ".join(parts)
    else:
        message = str(exc)
    if subject_id:
        message = message.replace(subject_id, "[the subject id]")
    return FormError("Not recorded: " + message)


def _page(request: Request, listing: dict[str, Any], **values: Any) -> Response:
    return render_page(
        request,
        "request_register.html.j2",
        listing=listing,
        states={e["request_id"]: state_text(e) for e in listing["entries"]},
        kinds=[k.value for k in RequestKind],
        laws=[law.value for law in Law],
        channels=[v.value for v in ReceivedVia],
        today=datetime.now(UTC).date().isoformat(),
        limits=LIMITS,
        **values,
    )


@router.get("/register")
async def register_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    as_of: str | None = None,
) -> Response:
    day = parse_date(as_of, "As of")
    listing = await run_in_threadpool(register.listing, service, as_of=day)
    return _page(request, listing, opened=None)


@router.post("/register")
async def open_request(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    names = ("kind", "law", "subject_type", "subject_id", "received_on", "received_via")
    values = _fields(form, names)
    try:
        body = register.OpenRequestBody.model_validate(values)
        opened = await run_in_threadpool(register.open_request, service, actor, body)
    except (ValidationError, DisclosureLedgerError) as exc:
        raise _refused(exc, values.get("subject_id", "")) from None
    listing = await run_in_threadpool(register.listing, service)
    return _page(request, listing, opened=opened)


@router.get("/register/{request_id}")
async def entry_page(
    request: Request,
    request_id: str,
    _actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    try:
        entry = await run_in_threadpool(register.show, service, request_id)
    except DisclosureLedgerError as exc:
        return error_page(request, status.HTTP_404_NOT_FOUND, str(exc))
    return render_page(
        request,
        "request_register_entry.html.j2",
        entry=entry,
        state=state_text(entry),
        grounds=[g.value for g in DenialGround],
        today=datetime.now(UTC).date().isoformat(),
    )


async def _document_hash(form: Any) -> str | None:
    upload = form.get("document")
    if isinstance(upload, UploadFile) and upload.filename:
        digest = hashlib.sha256()
        while block := await upload.read(1 << 20):
            digest.update(block)
        return digest.hexdigest()
    return None


@router.post("/register/{request_id}/{step}")
async def record_step(
    request: Request,
    request_id: str,
    step: str,
    actor: Annotated[Actor, Depends(require(Action.request_register))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    model = STEPS.get(step)
    if model is None:
        raise FormError(f"no step {step!r}: record identity, extension, answer or denial.")
    form = await checked_form(request)
    names = tuple(model.model_fields)
    values: dict[str, Any] = _fields(form, names)
    if "in_part" in names:
        values["in_part"] = form.get("in_part") == "yes"
    try:  # an uploaded document is hashed, never kept
        if "document_sha256" in names:
            uploaded = await _document_hash(form)
            values["document_sha256"] = uploaded or values.get("document_sha256")
    finally:
        await form.close()
    try:
        body: Any = model.model_validate(values)
        if step == "identity":
            await run_in_threadpool(register.verify_identity, service, actor, request_id, body)
        elif step == "extension":
            await run_in_threadpool(register.extend, service, request_id, body)
        elif step == "answer":
            await run_in_threadpool(register.answer, service, actor, request_id, body)
        else:
            await run_in_threadpool(register.deny, service, actor, request_id, body)
    except (ValidationError, DisclosureLedgerError) as exc:
        raise _refused(exc) from None
    return RedirectResponse(f"/register/{request_id}", status_code=status.HTTP_303_SEE_OTHER)
