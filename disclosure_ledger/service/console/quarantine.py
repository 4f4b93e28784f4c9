"""``/quarantine``: the quarantined messages, as ``quarantine show`` lists them.

The listing holds no personal data (where each message was, why it was refused, when).
A message's bytes do (the Kafka key is the subject id): they are shown only on a POST with
a stated reason and the session's CSRF token, recorded in the access log first
(:func:`disclosure_ledger.service.answers.quarantine_message`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from starlette.concurrency import run_in_threadpool

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import quarantine_listing, quarantine_message
from disclosure_ledger.service.api.deps import ledger_service
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


@router.get("/quarantine")
def quarantine_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    offset = _number(request.query_params.get("offset"), "Offset", 0)
    listing = quarantine_listing(service, offset=offset, limit=PAGE_SIZE)
    return render_page(request, "quarantine.html.j2", listing=listing, message=None)


@router.post("/quarantine/message")
async def quarantine_bytes(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    form = await checked_form(request)
    topic = text_field(form, "topic", "Topic")
    partition = _number(_str(form.get("partition")), "Partition")
    offset = _number(_str(form.get("offset")), "Offset")
    reason = text_field(form, "reason", "Reason")
    try:
        message = await run_in_threadpool(
            quarantine_message,
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
            f"Not shown: the read could not be recorded in the access log ({exc}).",
        ) from exc
    except DisclosureLedgerError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    listing = quarantine_listing(service, offset=0, limit=PAGE_SIZE)
    return render_page(
        request,
        "quarantine.html.j2",
        listing=listing,
        message={
            "entry": message.entry,
            "key": _shown(message.key),
            "value": _shown(message.value),
            "unreadable": message.unreadable,
        },
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
