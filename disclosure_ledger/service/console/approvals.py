"""``/approvals``: requests for an irreversible act waiting for a second admin.

Admins see every request: someone else's they approve or reject (a note is optional),
their own they may withdraw. An approved erasure runs at once; an approved quarantine read
is read once by its asker, from the quarantine page (``POST /approvals/{id}/result``).
Every form carries the session's CSRF token; no page shows an erasure's subject.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.approvals import (
    approval_lines,
    approvals_for,
    approve,
    read_approved,
    reject,
    withdraw,
)
from disclosure_ledger.service.answers.erasure import erasure_lines
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import refusal
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action, permission_allowed
from disclosure_ledger.service.console.forms import checked_form, text_field
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.console.quarantine import quarantine_view
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(route_class=ConsoleRoute)


def _refused(exc: DisclosureLedgerError) -> HTTPException:
    """The API's status for the error (403 own request, 404, 409 no longer pending)."""
    return HTTPException(refusal(exc).status_code, str(exc))


async def _page(
    request: Request, actor: Actor, service: LedgerService, done: list[str] | None
) -> Response:
    if not permission_allowed(actor.role, Action.approve):  # an investigator's withdrawal
        return await quarantine_view(request, actor, service, notice=done)
    pending = await run_in_threadpool(approvals_for, service, actor, pending_only=True)
    recent = await run_in_threadpool(approvals_for, service, actor, pending_only=False)
    return render_page(
        request,
        "approvals.html.j2",
        pending=pending,
        decided=[a for a in recent if a.status.value != "pending"][:20],
        done=done,
    )


@router.get("/approvals")
async def approvals_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.approve))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    return await _page(request, actor, service, None)


@router.post("/approvals/{approval_id}/approve")
async def approve_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.approve))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> Response:
    form = await checked_form(request)
    note = text_field(form, "note", "Note", required=False) or None
    try:
        approval, outcome = await run_in_threadpool(approve, service, actor, approval_id, note=note)
    except DisclosureLedgerError as exc:
        raise _refused(exc) from None
    lines = approval_lines(approval) if outcome is None else erasure_lines(outcome)
    return await _page(request, actor, service, lines)


@router.post("/approvals/{approval_id}/reject")
async def reject_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.approve))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> Response:
    form = await checked_form(request)
    note = text_field(form, "note", "Note", required=False) or None
    try:
        approval = await run_in_threadpool(reject, service, actor, approval_id, note=note)
    except DisclosureLedgerError as exc:
        raise _refused(exc) from None
    return await _page(request, actor, service, approval_lines(approval))


@router.post("/approvals/{approval_id}/withdraw")
async def withdraw_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> Response:
    await checked_form(request)
    try:
        approval = await run_in_threadpool(withdraw, service, actor, approval_id)
    except DisclosureLedgerError as exc:
        raise _refused(exc) from None
    return await _page(request, actor, service, approval_lines(approval))


@router.post("/approvals/{approval_id}/result")
async def result_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> Response:
    await checked_form(request)
    try:
        message = await run_in_threadpool(read_approved, service, actor, approval_id)
    except DisclosureLedgerError as exc:
        raise _refused(exc) from None
    return await quarantine_view(request, actor, service, message=message)
