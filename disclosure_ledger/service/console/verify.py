"""``/verify``: verify the ledger as a background job, with a progress bar.

``POST /verify`` (the session's CSRF token) starts a job (:mod:`disclosure_ledger.service.jobs`,
one at a time) and redirects to ``GET /verify``, which shows the latest job: while it runs,
a ``<progress>`` bar of rows checked, and the page reloads itself every second (``<meta
http-equiv="refresh">``: no script); once done, whether the ledger verified, its chains and
the failures found.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import RedirectResponse

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.console.forms import checked_form
from disclosure_ledger.service.console.page import ConsoleRoute, render_page
from disclosure_ledger.service.jobs import VerifyRunningError
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(route_class=ConsoleRoute)

REFRESH_SECONDS = 1


@router.get("/verify")
def verify_page(
    request: Request,
    _actor: Annotated[Actor, Depends(require(Action.verify))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    job = service.verify_jobs.latest()
    shown = None if job is None else job.to_json()
    return render_page(
        request,
        "verify.html.j2",
        job=shown,
        refresh=REFRESH_SECONDS if shown is not None and shown["state"] == "running" else None,
    )


@router.post("/verify")
async def start_verify(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.verify))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> Response:
    await checked_form(request)
    with contextlib.suppress(VerifyRunningError):  # the page shows the job that runs
        service.verify_jobs.start(actor.name)
    return RedirectResponse("/verify", status_code=status.HTTP_303_SEE_OTHER)
