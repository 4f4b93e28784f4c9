"""``POST /api/v1/backups`` (admin): a consistent backup taken by the running service.

The destination is a directory on the service's machine (absolute; new or empty). The
service pauses its writers for the copy (:meth:`LedgerService.writers_paused`); readers go
on. The backup is recorded in the access log first (it copies the subject keys), so the
snapshot holds its own entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from disclosure_ledger.backups import BackupError, BackupSources, take_backup
from disclosure_ledger.backups.snapshot import prepare_destination
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.api.deps import ledger_service
from disclosure_ledger.service.api.refusals import ERROR_RESPONSES, refusal
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.actor import require
from disclosure_ledger.service.auth.roles import Action
from disclosure_ledger.service.reason import Reason
from disclosure_ledger.service.runtime import LedgerService
from ledger.access_log import AccessEntry

router = APIRouter(tags=["backups"])


class BackupRequest(BaseModel):
    to: str = Field(
        min_length=1,
        max_length=4096,
        description="absolute path of a new or empty directory on the service's machine",
    )
    reason: Reason


class BackupJson(BaseModel):
    directory: str
    manifest: dict[str, Any] = Field(description="the backup's manifest.json")


def service_sources(service: LedgerService) -> BackupSources:
    """The files of the served ledger: the ones the service itself uses."""
    settings = service.ingest_settings
    key_store = service.key_store_path
    if not isinstance(key_store, Path):
        raise BackupError(
            f"a backup copies a one-file ledger and the files beside it; the key store here is "
            f"{key_store}: back a lake's PostgreSQL database up with PostgreSQL's own tools"
        )
    return BackupSources.beside(
        service.config.ledger,
        key_store=key_store,
        checkpoints=settings.checkpoint_file if settings is not None else None,
    )


@router.post("/backups", response_model=BackupJson, responses=ERROR_RESPONSES)
def post_backup(
    actor: Annotated[Actor, Depends(require(Action.backup))],
    service: Annotated[LedgerService, Depends(ledger_service)],
    body: BackupRequest,
) -> BackupJson | JSONResponse:
    """Snapshot the ledger, its key store (with the suppression list), request log, users
    store, checkpoint file and key history into a directory on the service's machine."""
    if service.config.location is not None:
        return JSONResponse(
            {
                "detail": f"the ledger {service.config.location} is a DuckLake: back up its "
                "PostgreSQL catalog (pg_dump) and its data path together, as docs/ducklake.md "
                "says; this service's backup copies a ledger file",
                "error": "refused",
            },
            status_code=422,
        )
    destination = Path(body.to)
    try:
        prepare_destination(destination)  # refused before anything is recorded
    except BackupError as exc:
        return JSONResponse({"detail": str(exc), "error": "refused"}, status_code=422)
    try:
        service.record_access(
            AccessEntry(
                actor=actor.name,
                role=actor.role.value,
                action="backup",
                reason=body.reason,
                rows_returned=0,
                detail=f"to {destination}",
            )
        )
        view = service.ledger.view(writable=True)  # this thread's own cursor
        try:
            manifest = take_backup(
                service_sources(service), destination, owner=view, pause=service.writers_paused
            )
        finally:
            view.close()
    except DisclosureLedgerError as exc:
        return refusal(exc)
    return BackupJson(directory=str(destination), manifest=manifest.to_json())
