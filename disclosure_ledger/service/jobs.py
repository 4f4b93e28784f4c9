"""Verify as a background job: one at a time, on a thread of its own, with progress.

A job runs :func:`ledger.verify.verify_ledger` on a view of the service's ledger (one read
snapshot while ingestion appends), with the checkpoints of the ledger's table and of the
checkpoint file kept beside it, and the public key that ``verify`` reads
(``DISCLOSURE_LEDGER_CHECKPOINT_PUBLIC_KEY_FILE``), so it checks what the CLI checks. Its
state (``running``, ``done`` or ``failed``), progress in rows and result (the
:meth:`~ledger.verify.VerifyResult.to_json` summary) are what ``/api/v1/verify`` shows;
the last finished job is the status's ``last_verify`` and the ``verify`` metrics.
A job stops between ranges of rows when the service stops.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from disclosure_ledger.errors import DisclosureLedgerError
from ledger.coverage import iso_ms

if TYPE_CHECKING:
    from disclosure_ledger.service.runtime import LedgerService
    from ledger.verify import CheckpointSource

log = logging.getLogger("disclosure_ledger.service.verify")

JobState = Literal["running", "done", "failed"]
JOBS_KEPT = 20
"""Finished jobs kept for ``GET /api/v1/verify/{job_id}``; older ones are forgotten."""


class VerifyRunningError(DisclosureLedgerError):
    """A verify job is already running (one at a time): wait for it."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"verify job {job_id} is already running; follow it at /api/v1/verify/{job_id} "
            "and start another when it has finished"
        )
        self.job_id = job_id


class _Stopping(Exception):
    """The service stops: the job ends between two ranges of rows."""


@dataclass
class VerifyJob:
    job_id: str
    requested_by: str
    started_at: datetime
    state: JobState = "running"
    rows_done: int = 0
    rows_total: int = 0
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def progress(self, done: int, total: int) -> None:
        with self._lock:
            self.rows_done, self.rows_total = done, total

    def finish(
        self, state: JobState, *, result: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        with self._lock:
            self.state, self.result, self.error = state, result, error
            self.finished_at = datetime.now(UTC)

    @property
    def ok(self) -> bool | None:
        """True or False once done; None while running or if it failed to run."""
        return None if self.result is None else bool(self.result["ok"])

    def to_json(self, *, with_result: bool = True) -> dict[str, Any]:
        with self._lock:
            body: dict[str, Any] = {
                "job_id": self.job_id,
                "state": self.state,
                "requested_by": self.requested_by,
                "rows_done": self.rows_done,
                "rows_total": self.rows_total,
                "started_at": iso_ms(self.started_at),
                "finished_at": iso_ms(self.finished_at),
                "ok": None if self.result is None else self.result["ok"],
                "failure_count": None if self.result is None else self.result["failure_count"],
                "error": self.error,
            }
            if with_result:
                body["result"] = self.result
            return body


class VerifyJobs:
    """The service's verify jobs: at most one running, the last :data:`JOBS_KEPT` kept."""

    def __init__(self, service: LedgerService) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, VerifyJob] = OrderedDict()
        self._thread: threading.Thread | None = None

    def start(self, requested_by: str) -> VerifyJob:
        """Start a job; :class:`VerifyRunningError` if one is running."""
        with self._lock:
            running = self.running()
            if running is not None:
                raise VerifyRunningError(running.job_id)
            job = VerifyJob(uuid.uuid4().hex[:16], requested_by, datetime.now(UTC))
            self._jobs[job.job_id] = job
            while len(self._jobs) > JOBS_KEPT:
                self._jobs.popitem(last=False)
            self._thread = threading.Thread(
                target=self._run, args=(job,), name=f"verify-{job.job_id}", daemon=True
            )
            self._thread.start()
        log.info("verify job %s started by %s", job.job_id, requested_by)
        return job

    def get(self, job_id: str) -> VerifyJob | None:
        return self._jobs.get(job_id)

    def latest(self) -> VerifyJob | None:
        with self._lock:
            return next(reversed(self._jobs.values()), None)

    def running(self) -> VerifyJob | None:
        return next((j for j in self._jobs.values() if j.state == "running"), None)

    def last_finished(self) -> VerifyJob | None:
        with self._lock:
            return next((j for j in reversed(self._jobs.values()) if j.state != "running"), None)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running job's thread (the service stops: it ends at the next range)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, job: VerifyJob) -> None:
        from ledger.verify import verify_ledger

        service = self._service

        def progress(done: int, total: int) -> None:
            if service.stopping:
                raise _Stopping
            job.progress(done, total)

        try:
            public_key, sources = self._trust()
            history = self._key_history()
            with service.view() as view:
                counted = view.con.execute("SELECT count(*) FROM disclosures").fetchall()
                job.progress(0, int(counted[0][0]))  # the total at once, for a progress bar
                result = verify_ledger(
                    view,
                    checkpoints=sources,
                    public_key=public_key,
                    key_history=history,
                    notes_dirs=self._notes_dirs(),
                    progress=progress,
                )
            job.progress(result.rows, result.rows)
            job.finish("done", result=result.to_json())
            log.info(
                "verify job %s done: %s, %d failure(s)",
                job.job_id,
                "verified" if result.ok else "NOT verified",
                len(result.failures),
            )
        except _Stopping:
            job.finish("failed", error="the service stopped before verify finished")
        except Exception as exc:  # the job reports it; the service keeps running
            log.exception("verify job %s failed", job.job_id)
            job.finish("failed", error=f"{type(exc).__name__}: {exc}")

    def _checkpoint_file(self) -> Path:
        from ledger.checkpoints import default_checkpoint_file

        settings = self._service.ingest_settings
        configured = settings.checkpoint_file if settings is not None else None
        return configured or default_checkpoint_file(self._service.config.ledger)

    def _notes_dirs(self) -> list[Path]:
        """The service's checkpoint notes directory, if it was written (its notes are also in
        the ledger's table, which is always checked: the files may have been altered apart)."""
        from ledger.checkpoint_notes import default_notes_dir

        settings = self._service.ingest_settings
        configured = settings.checkpoint_notes_dir if settings is not None else None
        path = configured or default_notes_dir(self._service.config.ledger)
        return [path] if path.is_dir() else []

    def _key_history(self) -> Any:
        """The checkpoint key history beside the checkpoint file, if there is one."""
        from ledger.key_history import key_history_file, read_key_history

        path = key_history_file(self._checkpoint_file())
        return read_key_history(path) if path.exists() else None

    def _trust(self) -> tuple[Any, list[CheckpointSource]]:
        """The public key ``verify`` reads from the settings, and the checkpoint file beside
        the ledger (the ledger's own table is always read)."""
        from disclosure_ledger.settings import load_settings
        from ledger.checkpoints import (
            default_checkpoint_file,
            load_public_key,
            read_checkpoint_file,
        )
        from ledger.verify import CheckpointSource

        service = self._service
        key_file = load_settings().checkpoint_public_key_file
        public_key = load_public_key(key_file) if key_file else None
        settings = service.ingest_settings
        configured = settings.checkpoint_file if settings is not None else None
        path: Path = configured or default_checkpoint_file(service.config.ledger)
        sources = [CheckpointSource(str(path), read_checkpoint_file(path))] if path.exists() else []
        return public_key, sources
