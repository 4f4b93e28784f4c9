"""Investigator queries and presets inside the service, where ``query``'s second lock is gone.

The CLI's ``query`` opens the ledger file read-only in a sandbox of its own. The service
cannot: every cursor it has belongs to the one read-write instance (a cursor can write),
and DuckDB has no per-query memory limit. So a query here is held by these locks, each
enough alone to keep the ledger unchanged:

1. **The same parser check** as the CLI (:func:`reports.query.check_query` and the
   ledger-relations check), with the same refusal message; the access log is also withheld
   (auditors read it through ``report access``, not investigators through SQL).
2. **A transaction that is always rolled back**: the statement runs on a cursor of
   :meth:`~disclosure_ledger.service.runtime.LedgerService.view` inside
   ``BEGIN TRANSACTION``, and ``ROLLBACK`` ends it whatever happened.
3. **External access off for the instance's life** (``Ledger(..., external_access=False)``):
   no statement can read or write a file other than the ledger, attach, or load anything.

And no query can stall the service: it is interrupted at ``query_time_limit``
(:func:`reports.query.time_limited`), it waits for one of ``max_concurrent_queries``
slots (at most ``query_slot_wait`` seconds, then :class:`QueriesBusyError`, a 429), and it
shares the instance's one memory limit with ingest and reports.

A result is spooled (a temporary file, in memory while small) by the writers of
:mod:`reports.render`, its rows counted, and the read recorded in the access log, committed,
before a byte of it is sent: a read that cannot be recorded is refused. The routes are in
:mod:`disclosure_ledger.service.api.queries`; the console calls :func:`query_page`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, cast

import duckdb
import pyarrow as pa

from disclosure_ledger.service.metrics import observe_query_seconds
from ledger.access_log import AccessEntry
from ledger.coverage import Coverage, ledger_coverage
from ledger.key_check import KeyStoreAccess
from reports.errors import QueryRefusedError, ReportError
from reports.presets import (
    VOLUME_BY,
    PresetStatement,
    recipient_statement,
    timeline_statement,
    volume_statement,
)
from reports.query import BATCH_ROWS, check_query, check_relations, time_limited
from reports.render import TableFormat, write_batches, write_parquet

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService

log = logging.getLogger("disclosure_ledger.service.queries")

DownloadFormat = Literal["csv", "json", "parquet"]
DOWNLOAD_FORMATS: tuple[DownloadFormat, ...] = ("csv", "json", "parquet")
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
PresetName = Literal["timeline", "recipient", "volume"]
PRESETS: tuple[PresetName, ...] = ("timeline", "recipient", "volume")
SUBJECT_TYPES = ("member", "guest")

WITHHELD = {
    "access_log": "the access log is read by auditors and admins (`report access`, the "
    "console's access log page), not through queries",
}
"""Relations of the ledger no query in the service may read, with the reason."""

SPOOL_IN_MEMORY = 4 * 1024 * 1024
"""A result up to this many bytes is spooled in memory; a larger one in a temporary file."""
CHUNK_BYTES = 64 * 1024
DEFAULT_PAGE_ROWS = 100
"""Rows on a page when the caller does not say (and the service's max_page_rows allows)."""


class QueriesBusyError(ReportError):
    """Every query slot stayed taken while the query waited for one (a 429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class SpooledResult:
    """A query's result, written whole and counted, ready to be sent (then closed)."""

    file: IO[bytes]
    rows: int
    size: int
    media_type: str
    filename: str
    coverage: Coverage | None = None  # of the snapshot the rows were read from

    def chunks(self) -> Iterator[bytes]:
        """The bytes from the start, in chunks; closes (and so deletes) the spool after."""
        try:
            self.file.seek(0)
            while chunk := self.file.read(CHUNK_BYTES):
                yield chunk
        finally:
            self.close()

    def read(self) -> bytes:
        """The whole result (small results, tests); closes the spool."""
        return b"".join(self.chunks())

    def close(self) -> None:
        self.file.close()


@dataclass(frozen=True)
class QueryPage:
    """One page of a query's rows, for the console's table and ``POST /queries/page``.

    ``rows`` hold the values as Arrow gives them to Python; show them with
    :func:`reports.render.cell_text` or :func:`reports.render.json_value`. ``page`` counts
    from 1. ``total_rows`` is known only on the last page (None while ``has_more``).
    """

    columns: list[str]
    rows: list[tuple[Any, ...]]
    page: int
    page_size: int
    has_more: bool
    total_rows: int | None
    coverage: Coverage | None = None  # of the snapshot the rows were read from


@dataclass(frozen=True)
class PresetParams:
    """A preset's inputs, as the POST body gives them. The subject id is never shown in a
    ``repr`` (a log line or a traceback): it travels only in the body."""

    subject_id: str | None = field(default=None, repr=False)
    subject_type: str = "member"
    recipient_id: str | None = None
    by: str = "recipient"
    start: datetime | None = None
    end: datetime | None = None


# -- the three ways in ---------------------------------------------------------------------
def run_query_download(
    service: LedgerService, actor: Actor, sql: str, *, reason: str, fmt: str
) -> SpooledResult:
    """Check and run ``sql``, spool its rows as ``fmt`` (csv, json, parquet), record the read.

    Raises :class:`QueryRefusedError` (nothing ran), :class:`QueryTimeLimitError`,
    :class:`QueriesBusyError`, :class:`ReportError` (the statement failed, or bad input),
    or :class:`~ledger.errors.LedgerError` (the read could not be recorded: refused).
    """
    _check_reason(reason)
    _check_format(fmt)
    tables = check_query(sql, withheld=WITHHELD)
    started = time.monotonic()
    with _query_slot(service), rolled_back(service) as cursor:
        check_relations(cursor, tables, withheld=WITHHELD)
        with time_limited(cursor, service.config.query_time_limit):
            relation = cursor.sql(sql)
            if relation is None:  # pragma: no cover - check_query lets only a SELECT by
                raise QueryRefusedError("the statement returned no result set")
            result = _spool(relation.to_arrow_reader(BATCH_ROWS), fmt, "query")
        result.coverage = ledger_coverage(cursor)
    entry = AccessEntry(
        actor=actor.name,
        role=actor.role.value,
        action="query",
        reason=reason,
        rows_returned=result.rows,
        query_text=sql,
        detail=f"format={fmt}",
    )
    return _recorded(service, entry, result, started)


def run_preset(
    service: LedgerService,
    actor: Actor,
    name: str,
    params: PresetParams,
    *,
    reason: str,
    fmt: str,
) -> SpooledResult:
    """Run the preset ``name`` (timeline, recipient, volume): the CLI's statement, on a
    cursor of the service, spooled and recorded as :func:`run_query_download` is.

    A timeline finds the person by the pseudonym of ``params.subject_id`` (the key store,
    read-only); the access log records that pseudonym, never the id.
    """
    _check_reason(reason)
    _check_format(fmt)
    started = time.monotonic()
    pseudonym: str | None = None
    detail = [f"format={fmt}"]
    if name == "timeline":
        subject_type = _subject_type(params.subject_type)
        pseudonym = _pseudonym(service, subject_type, _need(params.subject_id, "subject_id", name))
        detail.append(f"subject_type={subject_type}")
        if pseudonym is None:
            detail.append("no key for that subject: no data held")
        statement = timeline_statement(pseudonym, subject_type, start=params.start, end=params.end)
    else:
        statement = _statement(name, params, detail)
    detail.extend(_range(params))
    with (
        _query_slot(service),
        rolled_back(service) as cursor,
        time_limited(cursor, service.config.query_time_limit),
    ):
        relation = cursor.sql(statement.sql, params=dict(statement.params))
        if relation is None:  # pragma: no cover - our statements are all SELECTs
            raise ReportError("the preset statement returned no result set")
        result = _spool(relation.to_arrow_reader(BATCH_ROWS), fmt, name)
        result.coverage = ledger_coverage(cursor)
    entry = AccessEntry(
        actor=actor.name,
        role=actor.role.value,
        action=f"preset {name}",
        reason=reason,
        rows_returned=result.rows,
        subject_pseudonym=pseudonym,
        detail=" ".join(detail),
    )
    return _recorded(service, entry, result, started)


def query_page(
    service: LedgerService, actor: Actor, sql: str, *, reason: str, page: int, page_size: int
) -> QueryPage:
    """Page ``page`` (from 1) of ``page_size`` rows of ``sql``, checked and recorded as
    :func:`run_query_download` is. The page is cut by DuckDB (the statement is wrapped in a
    LIMIT/OFFSET relation, not by editing its text); ``page_size`` is at most the service's
    ``max_page_rows``."""
    _check_reason(reason)
    limit = service.config.max_page_rows
    if page < 1:
        raise ReportError(f"page {page}: pages count from 1")
    if not 1 <= page_size <= limit:
        raise ReportError(f"page_size {page_size}: give 1 to {limit} rows (max_page_rows)")
    tables = check_query(sql, withheld=WITHHELD)
    started = time.monotonic()
    with _query_slot(service), rolled_back(service) as cursor:
        check_relations(cursor, tables, withheld=WITHHELD)
        offset = (page - 1) * page_size
        with time_limited(cursor, service.config.query_time_limit):
            relation = cursor.sql(sql)
            if relation is None:  # pragma: no cover - check_query lets only a SELECT by
                raise QueryRefusedError("the statement returned no result set")
            columns = list(relation.columns)
            table = relation.limit(page_size + 1, offset=offset).to_arrow_table()
        coverage = ledger_coverage(cursor)
    observe_query_seconds(time.monotonic() - started)
    values = [column.to_pylist() for column in table.columns]
    rows = list(zip(*values, strict=True))
    has_more = len(rows) > page_size
    rows = rows[:page_size]
    service.record_access(
        AccessEntry(
            actor=actor.name,
            role=actor.role.value,
            action="query page",
            reason=reason,
            rows_returned=len(rows),
            query_text=sql,
            detail=f"page={page} page_size={page_size}",
        )
    )
    return QueryPage(
        columns=columns,
        rows=rows,
        page=page,
        page_size=page_size,
        has_more=has_more,
        total_rows=None if has_more else offset + len(rows),
        coverage=coverage,
    )


# -- the locks -------------------------------------------------------------------------------
@contextlib.contextmanager
def _query_slot(service: LedgerService) -> Iterator[None]:
    """One of the service's query slots, waited for at most ``query_slot_wait`` seconds."""
    wait = service.config.query_slot_wait
    if not service.query_slots.acquire(timeout=wait):
        retry = max(1, round(service.config.query_time_limit))
        raise QueriesBusyError(
            f"all {service.config.max_concurrent_queries} query slots stayed busy for "
            f"{wait:g} s (max_concurrent_queries): try again in {retry} s",
            retry,
        )
    try:
        yield
    finally:
        service.query_slots.release()


@contextlib.contextmanager
def rolled_back(service: LedgerService) -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor of the instance inside a transaction that is rolled back, always."""
    with service.view() as view:
        cursor = view.con
        cursor.execute("BEGIN TRANSACTION")
        try:
            yield cursor
        finally:
            # an interrupted statement may have ended the transaction already
            with contextlib.suppress(duckdb.Error):
                cursor.execute("ROLLBACK")


def _pseudonym(service: LedgerService, subject_type: str, subject_id: str) -> str | None:
    """The subject's pseudonym from the key store (read-only), or None: no key held."""
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        return keys.pseudonym(subject_type, subject_id)


def _recorded(
    service: LedgerService, entry: AccessEntry, result: SpooledResult, started: float
) -> SpooledResult:
    """Record the read before anything is sent; a read not recorded is not answered."""
    observe_query_seconds(time.monotonic() - started)
    try:
        service.record_access(entry)
    except BaseException:
        result.close()
        raise
    log.info(
        "%s by %s: %d rows, %d bytes in %.3f s",
        entry.action,
        entry.actor,
        result.rows,
        result.size,
        time.monotonic() - started,
    )
    return result


# -- inputs ----------------------------------------------------------------------------------
def _check_reason(reason: str) -> None:
    if not reason.strip():
        raise ReportError(
            "reason: a query reads personal data; state why (a case or ticket number), "
            "it is kept in the access log"
        )


def _check_format(fmt: str) -> None:
    if fmt not in DOWNLOAD_FORMATS:
        raise ReportError(f"format {fmt!r}: choose one of {', '.join(DOWNLOAD_FORMATS)}")


def _need(value: str | None, name: str, preset: str) -> str:
    if value is None or not value.strip():
        raise ReportError(f"{name}: the {preset} preset needs it")
    return value


def _subject_type(value: str) -> str:
    if value not in SUBJECT_TYPES:
        raise ReportError(f"subject_type {value!r}: choose one of {', '.join(SUBJECT_TYPES)}")
    return value


def _statement(name: str, params: PresetParams, detail: list[str]) -> PresetStatement:
    if name == "recipient":
        recipient_id = _need(params.recipient_id, "recipient_id", name)
        detail.append(f"recipient_id={recipient_id}")
        return recipient_statement(recipient_id, start=params.start, end=params.end)
    if name == "volume":
        if params.by not in VOLUME_BY:
            raise ReportError(f"by {params.by!r}: choose one of {', '.join(VOLUME_BY)}")
        detail.append(f"by={params.by}")
        return volume_statement(params.by, start=params.start, end=params.end)
    raise ReportError(f"preset {name!r}: choose one of {', '.join(PRESETS)}")


def _range(params: PresetParams) -> list[str]:
    return [
        f"{label}={moment.isoformat()}"
        for label, moment in (("from", params.start), ("to", params.end))
        if moment is not None
    ]


# -- spooling --------------------------------------------------------------------------------
def _spool(reader: pa.RecordBatchReader, fmt: str, stem: str) -> SpooledResult:
    """Write the whole result in ``fmt`` with :mod:`reports.render`'s writers; count it."""
    if fmt == "parquet":
        with tempfile.TemporaryDirectory(prefix="disclosure-ledger-query-") as folder:
            path = Path(folder) / "result.parquet"
            rows = write_parquet(reader, path)
            file: IO[bytes] = path.open("rb")  # still readable once the folder is gone
    else:
        # closed by SpooledResult.chunks() once sent, or below on an error
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, mode="w+b")  # noqa: SIM115
        try:
            text = io.TextIOWrapper(cast(IO[bytes], spool), encoding="utf-8", newline="")
            rows = write_batches(cast(TableFormat, fmt), reader.schema.names, reader, text)
            text.flush()
            text.detach()
        except BaseException:
            spool.close()
            raise
        file = cast(IO[bytes], spool)
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    return SpooledResult(file, rows, size, MEDIA_TYPES[fmt], f"{stem}.{fmt}")
