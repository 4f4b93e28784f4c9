"""``/api/v1/proofs``: the proof bundles ``disclosure-ledger prove`` writes, from the ledger
the service holds (:mod:`ledger.proofs`; what they show: ``docs/proofs.md``).

* ``GET /proofs/events/{event_id}?reason=``: a row's inclusion bundle. It shows the row's
  fields, the subject as its pseudonym: a read of a disclosure row, for the roles that read
  them (compliance, investigators), recorded in the access log with the stated reason
  before the bundle is sent.
* ``GET /proofs/consistency?chain=&from=&to=``: the consistency proof between two signed
  checkpoints of a chain: hashes and checkpoints, no row; for every role, not logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.reason import Reason
from disclosure_ledger.service.runtime import LedgerService
from ledger.access_log import AccessEntry
from ledger.proofs import ProofError, consistency_bundle, inclusion_bundle, locate_event

router = APIRouter(tags=["proofs"])

_BUNDLE: dict[str, Any] = {"description": "a disclosure-ledger-proof/1 bundle (docs/proofs.md)"}
_REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such event in the ledger (error: not_found)"},
    422: {
        "description": "no signed checkpoint covers the row yet, or the sizes are not both "
        "checkpointed (error: refused; detail names the input and the fix)"
    },
}


def _refused(exc: ProofError, status: int) -> JSONResponse:
    return JSONResponse(
        {"detail": str(exc), "error": "not_found" if status == 404 else "refused"},
        status_code=status,
    )


@router.get("/proofs/events/{event_id}", responses={200: _BUNDLE, **_REFUSED}, response_model=None)
def get_event_proof(
    event_id: str,
    actor: Annotated[Actor, Depends(require(Action.event_proof))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    reason: Annotated[Reason, Query(description="why this row is read; kept in the access log")],
) -> dict[str, Any] | JSONResponse:
    """The inclusion bundle of the event's row, against the newest checkpoint covering it."""
    with service.view() as view:
        try:
            chain_id, seq = locate_event(view.con, event_id)
        except ProofError as exc:
            return _refused(exc, 404)
        try:
            bundle = inclusion_bundle(view.con, chain_id, seq)
        except ProofError as exc:
            return _refused(ProofError(f"event {event_id}: {exc}"), 422)
    service.record_access(
        AccessEntry(
            actor=actor.name,
            role=actor.role.value,
            action="prove",
            reason=reason,
            rows_returned=1,
            subject_pseudonym=bundle["leaf"].get("subject_pseudonym"),
            detail=f"inclusion proof of event {event_id} ({chain_id} row {seq})",
        )
    )
    return bundle


@router.get("/proofs/consistency", responses={200: _BUNDLE, **_REFUSED}, response_model=None)
def get_consistency_proof(
    _actor: Annotated[Actor, Depends(require(Action.consistency_proof))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    chain: Annotated[str, Query(description="the chain: topic/partition")],
    from_size: Annotated[int, Query(alias="from", description="the older checkpointed size")],
    to_size: Annotated[int, Query(alias="to", description="the newer checkpointed size")],
) -> dict[str, Any] | JSONResponse:
    """That the chain's log at ``to`` rows extends its log at ``from`` rows."""
    with service.view() as view:
        try:
            return consistency_bundle(view.con, chain, from_size, to_size)
        except ProofError as exc:
            return _refused(exc, 422)
