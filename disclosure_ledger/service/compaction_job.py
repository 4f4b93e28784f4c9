"""The service's background compaction of a DuckLake ledger (:mod:`ledger.compaction`).

Every ``DISCLOSURE_LEDGER_LAKE_COMPACT_EVERY`` seconds (default 600; 0 turns it off) a
thread of its own compacts the lake through a writable view (a cursor of the service's
database instance: the ingest thread keeps the owner connection). Compaction touches only
the tables appends insert into, so it never makes an append of this or another instance
fail. A step refused by a concurrent commit is skipped and done by the next run; any other
failure is logged and counted, and the job tries again at the next interval: compaction is
housekeeping, never a reason to stop ingesting or serving. A ledger file has no such job.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from ledger.compaction import CompactionStats, compact
from ledger.errors import LedgerError
from ledger.store import Ledger

log = logging.getLogger("disclosure_ledger.service")


@dataclass
class CompactionJob:
    """Compacts ``ledger`` (a lake) every ``every_seconds`` until :meth:`stop`."""

    ledger: Ledger
    every_seconds: float
    runs: int = 0
    failures: int = 0
    last: CompactionStats | None = None
    last_error: str | None = None
    last_run_at: datetime | None = None
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    @classmethod
    def for_ledger(cls, ledger: Ledger, every_seconds: float) -> CompactionJob | None:
        """The job for a service's ledger: None for a ledger file, a read-only one, or
        when the setting is 0."""
        if ledger.lake is None or ledger.read_only or every_seconds <= 0:
            return None
        return cls(ledger, every_seconds)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="compaction", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_seconds):
            self.run_once()

    def run_once(self) -> CompactionStats | None:
        """One compaction; its stats, or None when it failed (logged, counted, retried at
        the next interval)."""
        self.last_run_at = datetime.now(UTC)
        try:
            view = self.ledger.view(writable=True)
            try:
                stats = compact(view)
            finally:
                view.close()
        except (duckdb.Error, LedgerError) as exc:
            self.failures += 1
            self.last_error = str(exc)
            log.warning(
                "compaction of %s failed, tried again in %.0f s: %s",
                self.ledger.location,
                self.every_seconds,
                exc,
            )
            return None
        self.runs += 1
        self.last = stats
        self.last_error = None
        log.info("compaction of %s: %s", self.ledger.location, stats)
        return stats

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the thread; a compaction under way finishes first (each of its steps is a
        transaction of its own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
