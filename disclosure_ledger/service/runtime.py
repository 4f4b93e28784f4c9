"""``LedgerService``: the one process that owns a ledger file, ingests into it and serves it.

The ledger is opened once, read-write, with external access off for the instance's whole
life (no statement run here can read or write any file but the ledger). The consumer loop
(:func:`consumers.consumer.consume`) runs on a thread of its own and writes through the
owner connection; every reader (a report, a query, verify, the status) takes a
:meth:`view`, a cursor of the same instance, and reads one MVCC snapshot while the writer
appends. Nothing else ever opens the file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from consumers.consumer import ConsumeStats, consume
from consumers.pipeline import Ingestor
from disclosure_ledger.service.approvals import ApprovalStore, default_approval_store
from disclosure_ledger.service.compaction_job import CompactionJob
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.jobs import VerifyJobs
from disclosure_ledger.service.metrics import TimedIngestor
from ledger.access_log import AccessEntry, AccessLog, AccessRecord
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import DEFAULT_RETENTION_DAYS
from ledger.state_db import StateLocation
from ledger.store import Ledger
from reports.request_log import RequestLog, default_request_log

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.checkpoints import Checkpointer
    from reference import ReferenceData

log = logging.getLogger("disclosure_ledger.service")

# How much lower than the ingest thread a thread that serves reads is scheduled (nice).
READER_NICENESS = 10
_reader_thread = threading.local()


def yield_to_ingest() -> None:
    """Schedule the calling thread (one that serves requests) below the ingest thread.

    Linux schedules threads, and each has its own nice value: a request thread raised by
    :data:`READER_NICENESS` gets about a tenth of the CPU the ingest thread gets when both
    want it, so clients looping over reports and queries slow ingestion down little, while
    an idle service still gives a request every core. Once per thread; elsewhere than
    Linux (where the value is the whole process's) it does nothing.
    """
    if sys.platform != "linux" or getattr(_reader_thread, "niced", False):
        return
    _reader_thread.niced = True
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + READER_NICENESS))
    except OSError as exc:  # a sandbox may refuse it: then requests compete as equals
        log.debug("could not lower a request thread's priority: %s", exc)


def _yield_engine_threads() -> None:
    """Lower the priority of every thread of this process but the calling one (DuckDB's
    worker pool, started with the instance), as :func:`yield_to_ingest` does a request's."""
    import psutil

    if sys.platform != "linux":
        return
    me = threading.get_native_id()
    for thread in psutil.Process().threads():
        if thread.id == me:
            continue
        try:
            current = os.getpriority(os.PRIO_PROCESS, thread.id)
            os.setpriority(os.PRIO_PROCESS, thread.id, min(19, current + READER_NICENESS))
        except OSError as exc:
            log.debug("could not lower thread %d's priority: %s", thread.id, exc)


@dataclass(frozen=True)
class IngestSettings:
    """What the ingest thread needs; ``consume``'s options, as ``serve`` takes them."""

    bootstrap_servers: str
    topic: str
    max_batch: int
    max_outage: float | None = None
    dead_letter_topic: str | None = None
    probe_every: float = 10.0
    kafka_client: str = "auto"  # DISCLOSURE_LEDGER_KAFKA_CLIENT
    consumer_group: str | None = None  # DISCLOSURE_LEDGER_CONSUMER_GROUP (several services)
    checkpoint_file: Path | None = None
    checkpoint_every_rows: int = 100_000
    checkpoint_every_seconds: float = 300.0
    checkpoint_origin: str | None = None  # the C2SP notes' log origin (settings)
    checkpoint_notes_dir: Path | None = None  # default LEDGER.checkpoint-notes
    checkpoint_copy_to: str | None = None  # a second place the notes are copied to
    quarantine_retention_days: int = DEFAULT_RETENTION_DAYS  # the ingest thread purges hourly


@dataclass
class IngestState:
    """The ingest thread as the status, /readyz and /metrics see it."""

    stats: ConsumeStats = field(default_factory=ConsumeStats)
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    error: str | None = None  # why ingestion stopped, if it stopped on an error

    @property
    def running(self) -> bool:
        return self.started_at is not None and self.stopped_at is None


class LedgerService:
    """The ledger, its ingest thread, and the views and stores every request reads through."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        reference: ReferenceData,
        subject_secret: bytes,
        key_store: StateLocation,
        ingest: IngestSettings | None,
        signer: Ed25519PrivateKey | None,
    ) -> None:
        self.config = config
        self.reference = reference
        self.ingest_settings = ingest
        self.key_store_path = key_store
        self.request_log_path = default_request_log(config.ledger_location)
        self._secret = subject_secret
        self._signer = signer
        self.ingestor: Ingestor | None = None
        self.ledger = Ledger(config.ledger_location, external_access=False)
        try:
            # a wrong secret stops the service here, before anything is consumed or served
            self.subject_keys(KeyStoreAccess.derive, self.ledger).close()
            self._refuse_superseded_signer()
            self._set_memory_limit()
        except BaseException:
            self.ledger.close()
            raise
        if ingest is not None:
            _yield_engine_threads()
        self.access_log = AccessLog(shared=self.ledger.lake is not None)
        self.query_slots = threading.BoundedSemaphore(config.max_concurrent_queries)
        self.ingest_state = IngestState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer_lock = threading.Lock()  # access-log appends and erasures, one at a time
        self._ingest_gate = threading.Lock()  # held by the ingest thread while it writes
        self._prepare_gate = threading.Lock()  # ... and while it prepares (new subject keys)
        self._access_con = self.ledger.view(writable=True)
        self.verify_jobs = VerifyJobs(self)
        self.compaction = CompactionJob.for_ledger(self.ledger, config.lake_compact_every)

    def _set_memory_limit(self) -> None:
        """The instance's one memory limit, shared by ingest, reports and queries (the
        consumer alone would bound it to 64 MB: reports over millions of rows need more)."""
        self.ledger.con.execute(f"SET memory_limit = '{self.config.memory_limit}'")

    def _refuse_superseded_signer(self) -> None:
        """A signing key the key history has superseded (``keys rotate``) stops the service
        at start: its checkpoints would fail verify."""
        from ledger.checkpoints import default_checkpoint_file
        from ledger.key_history import check_signer_in_force

        settings = self.ingest_settings
        if self._signer is not None and settings is not None:
            checkpoint_file = settings.checkpoint_file or default_checkpoint_file(
                self.config.ledger
            )
            check_signer_in_force(self._signer, checkpoint_file)

    def _checkpointer(self, signer: Ed25519PrivateKey | None) -> Checkpointer | None:
        from ledger.checkpoints import Checkpointer, default_checkpoint_file

        settings = self.ingest_settings
        if signer is None or settings is None:
            log.warning("no checkpoint signing key: this service writes no signed checkpoints")
            return None
        return Checkpointer(
            self.ledger,
            signer,
            settings.checkpoint_file or default_checkpoint_file(self.config.ledger),
            reference_version=self.reference.version,
            every_rows=settings.checkpoint_every_rows,
            every_seconds=settings.checkpoint_every_seconds,
            notes_dir=settings.checkpoint_notes_dir,
            origin=settings.checkpoint_origin,
            copy_to=settings.checkpoint_copy_to,
        )

    # -- ingest --------------------------------------------------------------------------
    def start_ingest(self) -> None:
        """Start the ingest thread (if the service ingests), and the lake's compaction."""
        if self.compaction is not None:
            self.compaction.start()
        if self.ingest_settings is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._ingest, name="ingest", daemon=True)
        self.ingest_state.started_at = datetime.now(UTC)
        self._thread.start()

    def _ingest(self) -> None:
        """The ingest thread. The key store it derives pseudonyms with is opened here: a
        SQLite connection serves the thread that opened it."""
        settings = self.ingest_settings
        assert settings is not None
        keys: SubjectKeyStore | None = None
        try:
            keys = self.subject_keys(KeyStoreAccess.derive, self.ledger)
            self.ingestor = TimedIngestor(  # an Ingestor that times each batch's commit
                self.ledger,
                keys,
                self.reference,
                checkpointer=self._checkpointer(self._signer),
                # purges quarantined messages of unknown subject past the retention, hourly
                quarantine_retention_days=settings.quarantine_retention_days,
                gate=self._ingest_gate,
                prepare_gate=self._prepare_gate,
            )
            self._set_memory_limit()
            consume(
                settings.bootstrap_servers,
                settings.topic,
                self.ingestor,
                max_batch=settings.max_batch,
                stop=self._stop,
                max_outage=settings.max_outage,
                dead_letter_topic=settings.dead_letter_topic,
                probe_every=settings.probe_every,
                stats=self.ingest_state.stats,
                client=settings.kafka_client,
                group=settings.consumer_group,
            )
            self.ingestor.shutdown()  # a clean stop: the final checkpoint
        except Exception as exc:  # the service keeps answering; status and /readyz say why
            log.exception("ingestion stopped")
            self.ingest_state.error = f"{type(exc).__name__}: {exc}"
        finally:
            if keys is not None:
                keys.close()
            self.ingest_state.stopped_at = datetime.now(UTC)

    def request_stop(self) -> None:
        """Ask the ingest thread to stop after the batch in hand (a signal handler calls
        this; it only sets an event)."""
        self._stop.set()

    def stop(self, timeout: float = 60.0) -> bool:
        """Finish the batch in hand, write the final checkpoint, close the ledger.

        Returns whether it stopped cleanly. An ingest thread still busy after ``timeout``
        seconds is left alone with the ledger open (closing DuckDB under a running writer
        is unsafe; the batch's transaction commits whole or not at all, so a process that
        exits now loses nothing that a restart would not read again)."""
        self._stop.set()
        if self.compaction is not None:
            self.compaction.stop(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("the ingest thread did not stop within %.0f s", timeout)
                return False
        self.verify_jobs.join(timeout)  # a running verify ends at its next range of rows
        try:
            self._access_con.close()
        finally:
            self.ledger.close()
        return True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- reads ---------------------------------------------------------------------------
    @contextmanager
    def view(self) -> Iterator[Ledger]:
        """A read-only view of the ledger for one request (a cursor of the instance); the
        request's thread yields the CPU to ingestion (:func:`yield_to_ingest`)."""
        if self.ingest_settings is not None:
            yield_to_ingest()
        view = self.ledger.view()
        try:
            yield view
        finally:
            view.close()

    @contextmanager
    def writable_view(self) -> Iterator[Ledger]:
        """A writable view, one at a time (erasure): never a second writer process."""
        with self._writer_lock:
            view = self.ledger.view(writable=True)
            try:
                yield view
            finally:
                view.close()

    @contextmanager
    def writers_paused(self) -> Iterator[None]:
        """Every writer of the ledger and the key store held still (a backup's copy): the
        ingest thread between two batches (its commits, checkpoints and the new subject keys
        a batch's preparation writes), erasures and other writable views, access-log
        appends. Readers go on. The ingest thread holds one of its two locks at a time, and
        an erasure takes the writer lock before the access log's, as this does, so no two
        wait on each other."""
        with (
            self._ingest_gate,
            self._prepare_gate,
            self._writer_lock,
            self.access_log.appending(),
        ):
            yield

    def subject_keys(self, access: KeyStoreAccess, ledger: Ledger) -> SubjectKeyStore:
        """The key store, opened for one request (SQLite; the ingest thread has its own)."""
        return SubjectKeyStore(self.key_store_path, self._secret, access=access, ledger=ledger)

    def approvals(self) -> ApprovalStore:
        """The pending approvals (``LEDGER.approvals.sqlite``), opened for one request."""
        return ApprovalStore(default_approval_store(self.config.ledger_location), self._secret)

    @property
    def quarantine_retention_days(self) -> int:
        """The quarantine retention in force: the ingest thread's, else the setting."""
        if self.ingest_settings is not None:
            return self.ingest_settings.quarantine_retention_days
        from disclosure_ledger.settings import load_settings

        return load_settings().quarantine_retention_days

    def request_log(self) -> RequestLog:
        return RequestLog(self.request_log_path, self._secret)

    def record_access(self, entry: AccessEntry) -> AccessRecord:
        """Append ``entry`` to the access log and commit it; raises if it cannot."""
        return self.access_log.append(self._access_con.con, entry)
