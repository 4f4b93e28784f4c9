"""``GET /``: the dashboard. Ingest health and lag per partition, how far the ledger is
complete and what holds it back, the last checkpoint and verify, the quarantine count (the
status document of ``GET /api/v1/status``), and disclosures after an erasure and the GDPR
Art. 19 notices due, and the conformance alerts of the last 12 months (the conformance
report's counts, provisional past the coverage). No personal data:
every role sees it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.status import service_status
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.runtime import LedgerService
from reports.conformance import conformance_report

router = APIRouter(route_class=ConsoleRoute)


def conformance_alerts(service: LedgerService) -> dict[str, Any]:
    """The conformance findings of the 12 months to now, counted."""
    with service.view() as view:
        report = conformance_report(view, datetime.now(UTC), allow_incomplete=True)
    return {
        "events": report.events,
        "after_erasure_events": report.after_erasure.events,
        "unregistered_events": report.unregistered_events,
        "unregistered_recipients": len(report.unregistered_recipients),
        "undeclared_events": report.undeclared_events,
        "undeclared_flows": len(report.undeclared_flows),
        "unsafe_transfer_events": report.unsafe_transfer_events,
        "unsafe_transfer_recipients": len(report.transfers_without_safeguard),
    }


@router.get("/")
def dashboard(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.status))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    return render_page(
        request,
        "dashboard.html.j2",
        status=service_status(service),
        alerts=conformance_alerts(service),
    )
