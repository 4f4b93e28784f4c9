"""``GET /api/v1/status``: ingest position and lag, rows, chains, the last checkpoint,
quarantine, the last verify, disclosures after an erasure and GDPR Art. 19 notices due,
and how far the ledger is complete. No personal data."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from disclosure_ledger.service.after_erasure import after_erasure_rows
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.runtime import LedgerService
from ledger.coverage import iso_ms
from ledger.coverage_status import coverage_status
from ledger.notices import notices_due_count
from reports.registry import has_table

router = APIRouter(tags=["status"])


def service_status(service: LedgerService) -> dict[str, Any]:
    """The status document (also the console's dashboard)."""
    with service.view() as view:
        cursor = view.con
        cursor.execute("BEGIN TRANSACTION")
        try:
            coverage = coverage_status(cursor).to_json()
            # the chain heads the append keeps in its own transaction (ledger.derived): a
            # chain's rows are numbered 1..head, so no scan of every row on each look
            rows, chains = cursor.execute(
                "SELECT coalesce(sum(head_seq), 0), count(*) FROM chain_heads"
            ).fetchone() or (0, 0)
            quarantined = (cursor.execute("SELECT count(*) FROM quarantine").fetchone() or (0,))[0]
            after_erasure = after_erasure_rows(service, cursor)  # the rows since the last look
            notices_due = notices_due_count(cursor)
            last = (
                cursor.execute("SELECT * FROM checkpoints ORDER BY 1 DESC LIMIT 1").fetchone()
                if has_table(cursor, "checkpoints")
                else None
            )
        finally:
            cursor.execute("ROLLBACK")
    state = service.ingest_state
    stats = state.stats
    return {
        "ledger": str(service.config.ledger_location),
        "ingest": {
            "running": state.running,
            "error": state.error,
            "started_at": iso_ms(state.started_at),
            "accepted": stats.accepted,
            "duplicates": stats.duplicates,
            "quarantined": stats.quarantined,
            "watermarks": stats.watermarks,
            "late": stats.late,
            "after_erasure": stats.after_erasure,
            "outages": stats.outages,
        },
        "rows": int(rows),
        "chains": int(chains),
        "quarantine": int(quarantined),
        "after_erasure": after_erasure,
        "notices_due": notices_due,
        "last_checkpoint": None if last is None else str(last[-1]),
        "last_verify": last_verify(service),
        "coverage": coverage,
    }


def last_verify(service: LedgerService) -> dict[str, Any] | None:
    """The last finished verify job (without its failures: GET /api/v1/verify/{job_id});
    None if none has finished since the service started."""
    job = service.verify_jobs.last_finished()
    return None if job is None else job.to_json(with_result=False)


@router.get("/status")
def get_status(
    _actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> dict[str, Any]:
    return service_status(service)
