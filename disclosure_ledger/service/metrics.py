"""``/metrics``: the service in Prometheus text format, through ``prometheus-client``.

Each app has a registry of its own (:class:`ServiceMetrics`; tests make many apps), which
holds:

- the HTTP requests by method, route *template* (``/api/v1/verify/{job_id}``, never the
  URL asked for) and status, and their durations (:mod:`.request_observer` counts them);
- what the ledger and the ingest thread say at scrape time (:class:`LedgerCollector`):
  messages ingested by outcome, events after an erasure (since start, and in the whole
  ledger), GDPR Art. 19 notices due, batches, broker outages, whether ingest runs, each
  partition's position, lag and complete-through time, each producer source's
  complete-through time, the ledger's coverage, rows, quarantine, access log entries, the
  last checkpoint, and the last verify job;
- two process-wide histograms, fed from outside any request: the time each ingest batch
  takes to commit (:class:`TimedIngestor`) and the time investigator queries take
  (:func:`observe_query_seconds`, which the query routes call).

No metric carries personal data: labels are route templates, statuses, partitions and
producer service names. So ``/metrics`` needs no sign-in (Prometheus scrapes without
credentials); put it behind the network's own controls if even those must not be seen.
Every name starts ``disclosure_ledger_``; ``docs/prometheus-alerts.yml`` alerts on them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.pipeline import Ingestor, IngestStats, PreparedBatch, SourceMessage
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.after_erasure import after_erasure_rows
from ledger.access_log import access_log_head
from ledger.checkpoints import Checkpoint
from ledger.coverage_status import coverage_status
from ledger.notices import notices_due_count

if TYPE_CHECKING:
    from disclosure_ledger.service.runtime import LedgerService

log = logging.getLogger("disclosure_ledger.service.metrics")

PREFIX = "disclosure_ledger"

BATCH_COMMIT_SECONDS = Histogram(
    f"{PREFIX}_batch_commit_seconds",
    "Time to append one ingest batch to the ledger in one transaction (rows, offsets, "
    "quarantine, checkpoint when due).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)
QUERY_SECONDS = Histogram(
    f"{PREFIX}_query_duration_seconds",
    "Time investigator queries and presets take, from start to their last row.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)


def observe_query_seconds(seconds: float) -> None:
    """Count one query that took ``seconds`` (the query routes call this)."""
    QUERY_SECONDS.observe(seconds)


class TimedIngestor(Ingestor):
    """An :class:`~consumers.pipeline.Ingestor` that times each batch's commit.

    It writes to the ledger (batches, checkpoints) only while holding ``gate``, and
    prepares a batch (which may write new subject keys) only while holding
    ``prepare_gate``: a backup holds both to pause ingest between two batches
    (:meth:`LedgerService.writers_paused`). Two locks, so that preparing one batch while the
    one before commits goes on as before."""

    def __init__(
        self,
        *args: Any,
        gate: threading.Lock | None = None,
        prepare_gate: threading.Lock | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate or threading.Lock()
        self._prepare_gate = prepare_gate or threading.Lock()

    def prepare(
        self, messages: Sequence[SourceMessage], decoded: pa.RecordBatch | None = None
    ) -> PreparedBatch:
        with self._prepare_gate:
            return super().prepare(messages, decoded)

    def commit(self, prepared: PreparedBatch) -> IngestStats:
        with self._gate:
            started = time.perf_counter()
            stats = super().commit(prepared)
            if prepared.batch is not None:
                BATCH_COMMIT_SECONDS.observe(time.perf_counter() - started)
            return stats

    def checkpoint_if_due(self) -> Checkpoint | None:
        with self._gate:
            return super().checkpoint_if_due()

    def shutdown(self) -> Checkpoint | None:
        with self._gate:
            return super().shutdown()


class _ProcessWide(Collector):
    """The process-wide histograms, in an app's registry."""

    def collect(self) -> Iterable[Metric]:
        yield from BATCH_COMMIT_SECONDS.collect()
        yield from QUERY_SECONDS.collect()


def _seconds(moment: datetime | None) -> float:
    """Seconds since 1970; 0 for none (complete through no known time, never)."""
    return 0.0 if moment is None else moment.timestamp()


class LedgerCollector(Collector):
    """What the service and its ledger say at scrape time (one read snapshot)."""

    def __init__(self, service: LedgerService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        yield from self._ingest()
        yield from self._verify()
        if self._service.stopping:
            return
        try:
            yield from self._ledger()
        except (duckdb.Error, DisclosureLedgerError) as exc:
            log.warning("metrics: cannot read the ledger: %s", exc)

    def _ingest(self) -> Iterator[Metric]:
        service = self._service
        stats = service.ingest_state.stats
        messages = CounterMetricFamily(
            f"{PREFIX}_ingest_messages",
            "Messages consumed since the service started, by outcome: accepted (a ledger "
            "row), duplicate (of an earlier event id), quarantined, watermark.",
            labels=["outcome"],
        )
        for outcome, count in (
            ("accepted", stats.accepted),
            ("duplicate", stats.duplicates),
            ("quarantined", stats.quarantined),
            ("watermark", stats.watermarks),
        ):
            messages.add_metric([outcome], count)
        yield messages
        yield CounterMetricFamily(
            f"{PREFIX}_ingest_late_events",
            "Accepted events that arrived after a watermark they fall under.",
            value=stats.late,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_ingest_after_erasure_events",
            "Accepted events about a subject erased before they arrived (flag after_erasure), "
            "since the service started.",
            value=stats.after_erasure,
        )
        yield CounterMetricFamily(
            f"{PREFIX}_ingest_batches", "Batches committed since start.", value=stats.batches
        )
        yield CounterMetricFamily(
            f"{PREFIX}_broker_outages",
            "Periods without a reachable broker since start.",
            value=stats.outages,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_enabled",
            "1 if this service ingests the topic (not --no-ingest).",
            value=float(service.ingest_settings is not None),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ingest_running",
            "1 while the ingest thread runs; 0 once it stopped (see /api/v1/status for why).",
            value=float(service.ingest_state.running),
        )

    def _verify(self) -> Iterator[Metric]:
        jobs = self._service.verify_jobs
        yield GaugeMetricFamily(
            f"{PREFIX}_verify_running",
            "1 while a verify job runs.",
            value=float(jobs.running() is not None),
        )
        last = jobs.last_finished()
        ok = GaugeMetricFamily(
            f"{PREFIX}_verify_last_ok",
            "1 if the last finished verify job verified the ledger, 0 if it found failures "
            "or could not run; absent until one has finished.",
        )
        failures = GaugeMetricFamily(
            f"{PREFIX}_verify_last_failures", "Failures the last finished verify job found."
        )
        finished = GaugeMetricFamily(
            f"{PREFIX}_verify_last_finished_timestamp_seconds",
            "When the last verify job finished.",
        )
        if last is not None:
            ok.add_metric([], float(last.ok is True))
            failures.add_metric([], float((last.result or {}).get("failure_count", 0)))
            finished.add_metric([], _seconds(last.finished_at))
        yield from (ok, failures, finished)

    def _checkpoint_copies(self) -> Iterator[Metric]:
        """The checkpoint copies (``checkpoint_copy_to``), when a target is set."""
        ingestor = self._service.ingestor
        checkpointer = None if ingestor is None else ingestor.checkpointer
        status = None if checkpointer is None else checkpointer.copy_status
        if status is None:
            return
        yield CounterMetricFamily(
            f"{PREFIX}_checkpoint_copy_failures",
            "Checkpoints whose notes could not (all) be copied to the copy target; the next "
            "checkpoint copies what is missing.",
            value=status.failures,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_checkpoint_copy_pending_files",
            "Checkpoint note files not yet copied to the copy target.",
            value=status.pending_files,
        )

    def _ledger(self) -> Iterator[Metric]:
        with self._service.view() as view:
            cursor = view.con
            cursor.execute("BEGIN TRANSACTION")
            try:
                status = coverage_status(cursor)
                rows = (cursor.execute("SELECT count(*) FROM disclosures").fetchone() or (0,))[0]
                quarantined = (
                    cursor.execute("SELECT count(*) FROM quarantine").fetchone() or (0,)
                )[0]
                access = access_log_head(cursor)
                after_erasure = after_erasure_rows(self._service, cursor)
                notices_due = notices_due_count(cursor)
                checkpoint = (
                    cursor.execute("SELECT max(checkpoint_at) FROM checkpoints").fetchone()
                    if cursor.execute(
                        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'checkpoints'"
                    ).fetchall()[0][0]
                    else None
                )
            finally:
                cursor.execute("ROLLBACK")
        yield GaugeMetricFamily(f"{PREFIX}_ledger_rows", "Disclosures in the ledger.", value=rows)
        yield GaugeMetricFamily(
            f"{PREFIX}_quarantine_rows", "Messages held in quarantine.", value=quarantined
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_ledger_after_erasure_rows",
            "Disclosures in the ledger about a subject erased before they arrived (flag "
            "after_erasure): the person is identifiable again until erased again.",
            value=after_erasure,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_erasure_notices_due",
            "GDPR Art. 19 notices due: recipients of an erased subject's data not yet notified.",
            value=notices_due,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_access_log_entries",
            "Entries of the access log (reads of personal data recorded).",
            value=0 if access is None else access[0],
        )
        last_checkpoint = GaugeMetricFamily(
            f"{PREFIX}_last_checkpoint_timestamp_seconds",
            "When the last signed checkpoint was written; absent if none was.",
        )
        if checkpoint is not None and checkpoint[0] is not None:
            from ledger.coverage import utc

            last_checkpoint.add_metric([], _seconds(utc(checkpoint[0])))
        yield last_checkpoint
        yield from self._checkpoint_copies()
        yield GaugeMetricFamily(
            f"{PREFIX}_coverage_complete_through_timestamp_seconds",
            "The ledger holds every disclosure up to this time (0: through no known time).",
            value=_seconds(status.coverage.complete_through),
        )
        sources = GaugeMetricFamily(
            f"{PREFIX}_source_complete_through_timestamp_seconds",
            "Per producer source, the earliest of its partitions' latest watermarks (0: a "
            "partition has none).",
            labels=["source", "expected"],
        )
        for source in status.sources:
            sources.add_metric(
                [source.source, "true" if source.expected else "false"], _seconds(source.through)
            )
        yield sources
        lag = GaugeMetricFamily(
            f"{PREFIX}_partition_lag_messages",
            "Per partition, messages between the committed position and the end offset at "
            "the last probe.",
            labels=["partition"],
        )
        position = GaugeMetricFamily(
            f"{PREFIX}_partition_position",
            "Per partition, the committed next offset.",
            labels=["partition"],
        )
        reached = GaugeMetricFamily(
            f"{PREFIX}_partition_complete_through_timestamp_seconds",
            "Per partition, the latest probe the position has reached (0: none).",
            labels=["partition"],
        )
        probed = GaugeMetricFamily(
            f"{PREFIX}_partition_probed_timestamp_seconds",
            "Per partition, when its end offset was last probed (0: never).",
            labels=["partition"],
        )
        for partition in status.partitions:
            name = [partition.partition]
            if partition.lag is not None:
                lag.add_metric(name, partition.lag)
            position.add_metric(name, partition.position)
            reached.add_metric(name, _seconds(partition.complete_through))
            probed.add_metric(name, _seconds(partition.probed_at))
        yield from (lag, position, reached, probed)


class ServiceMetrics:
    """One app's registry: its requests, the ledger at scrape time, the process-wide
    histograms."""

    def __init__(self, service: LedgerService | None) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(_ProcessWide())
        if service is not None:
            self.registry.register(LedgerCollector(service))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
