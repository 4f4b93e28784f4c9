"""``/api/v1/approvals``: requests for an irreversible act waiting for a second admin.

``POST /erasures`` and ``POST /quarantine/message`` make a request (202, pending); here an
admin other than the asker approves or rejects it, the asker withdraws it, and the asker of
an approved quarantine read reads the bytes once (``POST /approvals/{id}/result``).
A listing never shows an erasure's subject: only its type.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.approvals import (
    approval_for,
    approval_lines,
    approvals_for,
    approve,
    read_approved,
    reject,
    withdraw,
)
from disclosure_ledger.service.answers.erasure import erasure_lines
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.approvals import Approval
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import PERMISSIONS, Action
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["approvals"])

APPROVAL_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    403: {
        "description": "the role may not do this, the CSRF token is missing or wrong, "
        "or the request is your own (error: self_approval) or not yours (error: not_yours)"
    },
    404: {"description": "no such approval request (error: not_found)"},
    409: {"description": "the request is no longer pending, or past its time (error: not_pending)"},
}


class ApprovalJson(BaseModel):
    approval_id: str
    action: str = Field(description="erase (an erasure) or unseal (a quarantined message's bytes)")
    status: str = Field(
        description="pending, executed (erasure done), approved (unseal: the asker may read "
        "once), used, rejected, withdrawn or expired"
    )
    requested_by: str
    requested_role: str
    requested_at: str
    reason: str
    summary: str = Field(description="no personal data: the subject type, or the position")
    expires_at: str = Field(
        description="pending: decided by then or it expires; approved: read by then"
    )
    decided_by: str | None
    decided_at: str | None
    decision_reason: str | None
    outcome: dict[str, Any] | None = Field(description="what the act did (no personal data)")
    lines: list[str] = Field(description="where it stands and what happens next")

    @classmethod
    def of(cls, approval: Approval) -> ApprovalJson:
        return cls(**approval.to_json(), lines=approval_lines(approval))


class ApprovalListJson(BaseModel):
    approvals: list[ApprovalJson]
    note: str = Field(description="what the listing covers")


class DecisionRequest(BaseModel):
    note: str | None = Field(
        default=None, max_length=500, description="why (kept in the access log and the request)"
    )


class DecisionJson(BaseModel):
    approval: ApprovalJson
    lines: list[str] = Field(description="what the CLI prints")


class UnsealedJson(BaseModel):
    topic: str
    partition: int
    offset: int
    error: str
    quarantined_at: str
    key_hex: str | None = Field(description="the Kafka key's bytes as hex (null: no key)")
    value_hex: str | None = Field(description="the value's bytes as hex (null: no value)")
    sealed_with: str | None = Field(
        default=None,
        description="the id of the subject key the bytes are sealed under; null: the "
        "deployment key",
    )
    unreadable: str | None = Field(
        default=None,
        description="why there are no bytes: \"sealed under an erased subject's key: "
        'unreadable", or purged after the retention (null: the bytes are given)',
    )
    approval_id: str
    approved_by: str | None


@router.get("/approvals", response_model=ApprovalListJson, responses=APPROVAL_RESPONSES)
def get_approvals(
    actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    all_statuses: Annotated[
        bool, Query(alias="all", description="decided ones too (default: pending only)")
    ] = False,
) -> ApprovalListJson | JSONResponse:
    """Requests waiting for a second admin (admins see all; anyone else their own)."""
    try:
        listed = approvals_for(service, actor, pending_only=not all_statuses)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return ApprovalListJson(
        approvals=[ApprovalJson.of(a) for a in listed],
        note=("every request" if all_statuses else "pending requests")
        + (" of every asker" if Action.approve in PERMISSIONS[actor.role] else f" of {actor.name}"),
    )


@router.get("/approvals/{approval_id}", response_model=ApprovalJson, responses=APPROVAL_RESPONSES)
def get_approval(
    actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> ApprovalJson | JSONResponse:
    """One request (its asker, or an admin)."""
    try:
        return ApprovalJson.of(approval_for(service, actor, approval_id))
    except DisclosureLedgerError as exc:
        return refusal(exc)


@router.post(
    "/approvals/{approval_id}/approve", response_model=DecisionJson, responses=APPROVAL_RESPONSES
)
def post_approve(
    actor: Annotated[Actor, Depends(require(Action.approve))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
    body: DecisionRequest | None = None,
) -> DecisionJson | JSONResponse:
    """Approve someone else's request: an erasure runs now; a quarantine read opens for
    its asker (once, within an hour). Your own request: 403 ``self_approval``."""
    try:
        approval, outcome = approve(
            service,
            actor,
            approval_id,
            note=None if body is None else body.note,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    lines = approval_lines(approval) if outcome is None else erasure_lines(outcome)
    return DecisionJson(approval=ApprovalJson.of(approval), lines=lines)


@router.post(
    "/approvals/{approval_id}/reject", response_model=DecisionJson, responses=APPROVAL_RESPONSES
)
def post_reject(
    actor: Annotated[Actor, Depends(require(Action.approve))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
    body: DecisionRequest | None = None,
) -> DecisionJson | JSONResponse:
    """Reject someone else's request: nothing happens; its sealed parameters are deleted."""
    try:
        approval = reject(
            service,
            actor,
            approval_id,
            note=None if body is None else body.note,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return DecisionJson(approval=ApprovalJson.of(approval), lines=approval_lines(approval))


@router.post(
    "/approvals/{approval_id}/withdraw", response_model=DecisionJson, responses=APPROVAL_RESPONSES
)
def post_withdraw(
    actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> DecisionJson | JSONResponse:
    """The asker withdraws their own pending request."""
    try:
        approval = withdraw(service, actor, approval_id)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return DecisionJson(approval=ApprovalJson.of(approval), lines=approval_lines(approval))


@router.post(
    "/approvals/{approval_id}/result", response_model=UnsealedJson, responses=APPROVAL_RESPONSES
)
def post_result(
    actor: Annotated[Actor, Depends(require(Action.quarantine))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    approval_id: str,
) -> UnsealedJson | JSONResponse:
    """The asker reads what an approved quarantine read opens: once, within the hour after
    the approval; the read is in the access log first."""
    try:
        message = read_approved(service, actor, approval_id)
        approval = approval_for(service, actor, approval_id)
    except DisclosureLedgerError as exc:
        return refusal(exc)
    entry = message.entry
    return UnsealedJson(
        topic=entry.topic,
        partition=entry.partition,
        offset=entry.offset,
        error=entry.error,
        quarantined_at=f"{entry.quarantined_at:%Y-%m-%dT%H:%M:%SZ}",
        key_hex=None if message.key is None else message.key.hex(),
        value_hex=None if message.value is None else message.value.hex(),
        sealed_with=entry.sealed_with,
        unreadable=message.unreadable,
        approval_id=approval_id,
        approved_by=approval.decided_by,
    )
