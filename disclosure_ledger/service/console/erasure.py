"""``/erasure``: ``erase-subject`` from the console, admins only, in two steps.

1. ``POST /erasure`` with the subject and a stated reason shows what will happen and asks
   for confirmation (nothing changes yet);
2. ``POST /erasure`` again with ``confirm=erase`` submits the erasure for approval
   (:func:`disclosure_ledger.service.answers.approvals.request_erasure`: the access log
   records who asked and why); a second admin approves it on ``/approvals``
   (:mod:`.approvals`), and the subject's key is destroyed then.

Both steps carry the session's CSRF token. The subject id travels only in the POST bodies
(the confirmation page carries it on in a hidden field) and is never shown or logged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.approvals import approval_lines, request_erasure
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.forms import checked_form, choice_field, text_field
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(route_class=ConsoleRoute)

SUBJECT_TYPES = ("member", "guest")


@router.get("/erasure")
def erasure_form(
    request: Request, _actor: Annotated[Actor, Depends(require(Action.erase))]
) -> Response:
    return render_page(request, "erasure.html.j2", step="ask", pending=None, outcome=None)


@router.post("/erasure")
async def erasure(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.erase))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    subject_type = choice_field(form, "subject_type", "Subject type", SUBJECT_TYPES)
    subject_id = text_field(form, "subject_id", "Subject id")
    reason = text_field(form, "reason", "Reason")
    pending = {"subject_type": subject_type, "subject_id": subject_id, "reason": reason}
    if form.get("confirm") != "erase":
        return render_page(
            request, "erasure.html.j2", step="confirm", pending=pending, outcome=None
        )
    try:
        approval = await run_in_threadpool(
            request_erasure,
            service,
            actor,
            subject_type="member" if subject_type == "member" else "guest",
            subject_id=subject_id,
            reason=reason,
        )
    except DisclosureLedgerError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "Not asked: " + str(exc).replace(subject_id, "[the subject id]"),
        ) from None
    return render_page(
        request, "erasure.html.j2", step="done", pending=None, outcome=approval_lines(approval)
    )
