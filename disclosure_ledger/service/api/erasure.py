"""``POST /api/v1/erasures`` (admin): ask for ``erase-subject``; a second admin approves
it (:mod:`.approvals`) and the erasure runs then, while ingestion continues.

The subject id travels only in the body; the answer names neither it nor its pseudonym.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers.approvals import request_erasure
from disclosure_ledger.service.api.approvals import ApprovalJson
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.reason import Reason
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["erasure"])


class ErasureRequest(BaseModel):
    subject_type: Literal["member", "guest"]
    subject_id: str = Field(min_length=1, max_length=512, description="the subject's raw id")
    reason: Reason


@router.post(
    "/erasures",
    status_code=202,
    response_model=ApprovalJson,
    responses={
        **ERROR_RESPONSES,
        202: {"description": "the erasure request, pending a second admin's approval"},
    },
)
def post_erasure(
    actor: Annotated[Actor, Depends(require(Action.erase))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: ErasureRequest,
) -> ApprovalJson | JSONResponse:
    """Ask for one subject's erasure (crypto-shredding). Nothing is erased yet: another
    admin approves it (``POST /approvals/{id}/approve``), and the erasure runs then; the
    subject id is kept sealed until it does."""
    try:
        approval = request_erasure(
            service,
            actor,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            reason=body.reason,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return ApprovalJson.of(approval)
