"""The JSON API under ``/api/v1``: one module per concern, each a router.

Every route depends on :func:`~disclosure_ledger.service.auth.actor.require` for its
permission; routes that read personal data record the read first
(:meth:`~disclosure_ledger.service.runtime.LedgerService.record_access`).
"""

from __future__ import annotations

from fastapi import APIRouter

from disclosure_ledger.service.api import session, status

api_router = APIRouter()
api_router.include_router(status.router)
api_router.include_router(session.router)
