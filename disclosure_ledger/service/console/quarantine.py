"""``/quarantine``: the quarantined messages, as ``quarantine show`` lists them.

The listing holds no personal data (where each message was, why it was refused, when).
A message's bytes do (the Kafka key is the subject id): an investigator asks to read them
(a POST with a stated reason and the session's CSRF token), an admin approves on the
Approvals page, and the asker then reads them once, within the hour, from this page
(:mod:`.approvals`), the read recorded in the access log first.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import QuarantineMessage, quarantine_listing
from disclosure_ledger.service.answers.approvals import (
    approval_lines,
    approvals_for,
    request_unseal,
)
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.approvals import ApprovalAction
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.forms import FormError, checked_form, text_field
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from ledger.errors import LedgerError

router = APIRouter(route_class=ConsoleRoute)

PAGE_SIZE = 50
SHOWN_BYTES = 4096


def _number(text: str | None, label: str, default: int | None = None) -> int:
    if (text is None or not text.strip()) and default is not None:
        return default
    if text is None or not text.strip().isdigit():
        raise FormError(f"{label}: give a whole number from 0.")
    return int(text)


def _shown(data: bytes | None) -> dict[str, str] | None:
    """Bytes as hex and as text (undecodable bytes as U+FFFD), cut at SHOWN_BYTES."""
    if data is None:
        return None
    cut = data[:SHOWN_BYTES]
    return {
        "size": f"{len(data):,} bytes"
        + (" (the first 4,096 shown)" if len(data) > len(cut) else ""),
        "hex": cut.hex(" ", 2),
        "text": cut.decode("utf-8", errors="replace"),
    }


async def quarantine_view(
    request: Request,
    actor: Actor,
    service: LedgerService,
    *,
    offset: int = 0,
    message: QuarantineMessage | None = None,
    notice: list[str] | None = None,
) -> Response:
    """The page: the listing, the actor's own read requests, and what was just done."""
    listing = await run_in_threadpool(quarantine_listing, service, offset=offset, limit=PAGE_SIZE)
    requests = [
        a
        for a in await run_in_threadpool(approvals_for, service, actor, pending_only=False)
        if a.action is ApprovalAction.unseal and a.requested_by == actor.name
    ][:20]
    return render_page(
        request,
        "quarantine.html.j2",
        listing=listing,
        requests=requests,
        notice=notice,
        message=None
        if message is None
        else {
            "entry": message.entry,
            "key": _shown(message.key),
            "value": _shown(message.value),
            "unreadable": message.unreadable,
        },
    )


@router.get("/quarantine")
async def quarantine_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    offset = _number(request.query_params.get("offset"), "Offset", 0)
    return await quarantine_view(request, actor, service, offset=offset)


@router.post("/quarantine/message")
async def quarantine_bytes(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    """Ask to read a message's bytes: an admin approves it, then the asker reads it here."""
    form = await checked_form(request)
    topic = text_field(form, "topic", "Topic")
    partition = _number(_str(form.get("partition")), "Partition")
    offset = _number(_str(form.get("offset")), "Offset")
    reason = text_field(form, "reason", "Reason")
    try:
        approval = await run_in_threadpool(
            request_unseal,
            service,
            actor,
            topic=topic,
            partition=partition,
            offset=offset,
            reason=reason,
        )
    except LedgerError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"Not asked: the request could not be recorded in the access log ({exc}).",
        ) from exc
    except DisclosureLedgerError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    return await quarantine_view(
        request, actor, service, notice=["Submitted for approval. " + approval_lines(approval)[0]]
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
