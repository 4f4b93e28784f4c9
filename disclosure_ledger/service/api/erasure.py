"""``POST /api/v1/erasures`` (admin): ``erase-subject`` while ingestion continues.

The subject id travels only in the body; the answer names neither it nor its pseudonym.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.answers import erase, erasure_lines
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


class ErasureJson(BaseModel):
    erased: bool = Field(description="false: no key was held (never seen, or already erased)")
    subject_type: str
    erased_at: str
    ledger_rows: int = Field(description="ledger rows that can no longer be linked")
    request_log_links: int = Field(description="earlier answers the request log forgot")
    actor: str
    outside_reach: dict[str, Any] | None = Field(
        default=None,
        description="what the erasure cannot reach and until when: the source topics' "
        "retention as the broker states it, dead-letter copies, quarantined messages of "
        "unknown subject (disclosure_ledger/erasure_reach.py); kept in the request log",
    )
    lines: list[str] = Field(description="what `erase-subject` prints")


@router.post("/erasures", response_model=ErasureJson, responses=ERROR_RESPONSES)
def post_erasure(
    actor: Annotated[Actor, Depends(require(Action.erase))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: ErasureRequest,
) -> ErasureJson | JSONResponse:
    """Destroy one subject's key (crypto-shredding) and record the erasure."""
    try:
        outcome = erase(
            service,
            actor,
            subject_type=body.subject_type,
            subject_id=body.subject_id,
            reason=body.reason,
        )
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return ErasureJson(
        erased=outcome.erased,
        subject_type=outcome.subject_type,
        erased_at=f"{outcome.erased_at:%Y-%m-%dT%H:%M:%SZ}",
        ledger_rows=outcome.ledger_rows,
        request_log_links=outcome.request_log_links,
        actor=outcome.actor,
        outside_reach=None if outcome.outside_reach is None else outcome.outside_reach.to_json(),
        lines=erasure_lines(outcome),
    )
