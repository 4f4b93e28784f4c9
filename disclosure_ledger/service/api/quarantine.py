"""``GET /api/v1/quarantine`` (metadata, no personal data) and
``POST /api/v1/quarantine/message`` (a request to read one message's bytes: personal data,
so an admin approves it first, and the read is in the access log, with the stated reason,
before they are sent: :mod:`.approvals`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import QuarantineEntry, quarantine_listing
from disclosure_ledger.service.answers.approvals import request_unseal
from disclosure_ledger.service.api.approvals import ApprovalJson
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.reason import Reason
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["quarantine"])


class QuarantinedJson(BaseModel):
    topic: str
    partition: int
    offset: int
    error: str
    quarantined_at: datetime
    sealed_with: str | None = Field(
        default=None,
        description="the id of the subject key the bytes are sealed under (an erasure of "
        "that subject makes them unreadable); null: the deployment key (subject unknown, "
        "purged after the quarantine retention)",
    )
    purged_at: datetime | None = Field(
        default=None, description="when the bytes were purged (null: not purged)"
    )

    @classmethod
    def of(cls, entry: QuarantineEntry) -> QuarantinedJson:
        return cls(
            topic=entry.topic,
            partition=entry.partition,
            offset=entry.offset,
            error=entry.error,
            quarantined_at=entry.quarantined_at,
            sealed_with=entry.sealed_with,
            purged_at=entry.purged_at,
        )


class QuarantinePageJson(BaseModel):
    total: int = Field(description="quarantined messages in all (matching the filter)")
    offset: int
    limit: int
    messages: list[QuarantinedJson]


class QuarantineMessageRequest(BaseModel):
    topic: str = Field(min_length=1, max_length=249)
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    reason: Reason


@router.get("/quarantine", response_model=QuarantinePageJson, responses=ERROR_RESPONSES)
def get_quarantine(
    _actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    topic: Annotated[str | None, Query(description="only this source topic")] = None,
    partition: Annotated[int | None, Query(ge=0, description="only this partition")] = None,
) -> QuarantinePageJson | JSONResponse:
    """Quarantined messages in source order, without their bytes."""
    try:
        page = quarantine_listing(
            service, offset=offset, limit=limit, topic=topic, partition=partition
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return QuarantinePageJson(
        total=page.total,
        offset=page.offset,
        limit=page.limit,
        messages=[QuarantinedJson.of(e) for e in page.entries],
    )


@router.post(
    "/quarantine/message",
    status_code=202,
    response_model=ApprovalJson,
    responses={
        **ERROR_RESPONSES,
        202: {"description": "the read request, pending an admin's approval"},
        404: {"description": "no message at that position"},
    },
)
def post_quarantine_message(
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: QuarantineMessageRequest,
) -> ApprovalJson | JSONResponse:
    """Ask to read one quarantined message's original bytes. An admin approves it
    (``POST /approvals/{id}/approve``); then the asker reads them once, within the hour
    (``POST /approvals/{id}/result``), the read in the access log first."""
    try:
        approval = request_unseal(
            service,
            actor,
            topic=body.topic,
            partition=body.partition,
            offset=body.offset,
            reason=body.reason,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return ApprovalJson.of(approval)
