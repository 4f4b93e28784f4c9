"""The JSON API under ``/api/v1``: one module per concern, each a router.

Every route depends on :func:`~disclosure_ledger.service.auth.actor.require` for its
permission; routes that read personal data record the read first
(:meth:`~disclosure_ledger.service.runtime.LedgerService.record_access`).
"""

from __future__ import annotations

from fastapi import APIRouter

from disclosure_ledger.service.api import (
    access,
    approvals,
    backups,
    erasure,
    notices,
    proofs,
    quarantine,
    queries,
    reports,
    requests,
    session,
    status,
    verify,
)

api_router = APIRouter()
api_router.include_router(session.router)
api_router.include_router(status.router)
api_router.include_router(reports.router)
api_router.include_router(requests.router)
api_router.include_router(queries.router)
api_router.include_router(quarantine.router)
api_router.include_router(erasure.router)
api_router.include_router(approvals.router)
api_router.include_router(notices.router)
api_router.include_router(verify.router)
api_router.include_router(proofs.router)
api_router.include_router(access.router)
api_router.include_router(backups.router)
