"""What the API's routes share: the service of the request."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from disclosure_ledger.service.runtime import LedgerService


def ledger_service(request: Request) -> LedgerService:
    service: LedgerService | None = request.app.state.service
    if service is None or service.stopping:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the service is stopping")
    return service
