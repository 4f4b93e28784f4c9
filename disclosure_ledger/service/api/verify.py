"""``/api/v1/verify``: verify the ledger as a background job (:mod:`..jobs`).

``POST /verify`` starts a job and answers 202 with its id (409 with the running job's id
while one runs: one at a time); ``GET /verify/{job_id}`` is its state and progress, and,
once done, the result; ``GET /verify`` is the latest job. For auditors. A signed-in user's
POST carries the session's CSRF token in the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import JSONResponse

from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.jobs import VerifyRunningError
from disclosure_ledger.service.runtime import LedgerService

router = APIRouter(tags=["verify"])


@router.post("/verify", status_code=status.HTTP_202_ACCEPTED)
def start_verify(
    request: Request,
    actor: Annotated[Actor, Depends(require(Action.verify))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> JSONResponse:
    """Start verifying the whole ledger (every chain, the access log, checkpoints, offsets)."""
    try:
        job = service.verify_jobs.start(actor.name)
    except VerifyRunningError as exc:
        return JSONResponse(
            {"detail": str(exc), "job_id": exc.job_id}, status_code=status.HTTP_409_CONFLICT
        )
    return JSONResponse(
        {"job_id": job.job_id, "state": job.state},
        status_code=status.HTTP_202_ACCEPTED,
        headers={"Location": f"{request.url.path}/{job.job_id}"},
    )


@router.get("/verify/{job_id}")
def get_verify_job(
    job_id: str,
    _actor: Annotated[Actor, Depends(require(Action.verify))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> dict[str, Any]:
    """A job's state (running, done, failed), its progress in rows and its result."""
    job = service.verify_jobs.get(job_id)
    if job is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"no verify job {job_id!r} (the service keeps the last jobs since it started); "
            "GET /api/v1/verify gives the latest",
        )
    return job.to_json()


@router.get("/verify")
def get_latest_verify(
    _actor: Annotated[Actor, Depends(require(Action.verify))],
    service: Annotated[LedgerService, Depends(ledger_service)],
) -> dict[str, Any]:
    """The latest job, running or finished."""
    job = service.verify_jobs.latest()
    if job is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "no verify has run since the service started; POST /api/v1/verify starts one",
        )
    return job.to_json()
