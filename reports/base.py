"""The shape every report shares: one snapshot of the ledger, and one way to write it.

A report over the ledger computes its values in :func:`read_snapshot`: one cursor in its
own read transaction, so every query and the provenance (:mod:`reports.provenance`) see
the same snapshot, and a DuckDB error becomes a :class:`ReportError` naming the report and
the ledger. It is written by its :class:`ReportFormats`: ``json`` from its contract
(:mod:`reports.contracts`), ``md`` and ``html`` from its :class:`~reports.document.Document`,
``csv`` from its rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar

import duckdb

from ledger.coverage import ledger_coverage
from ledger.lake import cursor_of
from ledger.store import Ledger
from reports.contracts import Contract
from reports.coverage import (
    CoveragePolicy,
    WindowCoverage,
    refuse_future_as_of,
    window_coverage,
)
from reports.document import REPORT_FORMATS, Document, render_html, render_markdown
from reports.errors import ReportError
from reports.provenance import Provenance, provenance_from_counts, read_provenance, rfc3339
from reports.window import as_utc, clamp_since, report_window


def requested_window(
    as_of: date | datetime,
    since: date | datetime | None = None,
    *,
    floor: datetime | None = None,
) -> tuple[datetime, datetime, bool]:
    """``(start, end, clamped)``: ``[since, as_of)``, else the 12 calendar months before
    ``as_of`` (:func:`~reports.window.report_window`); ``since`` no earlier than ``floor``
    (``clamped`` says it was moved). An empty window is refused."""
    start, end = report_window(as_of)
    clamped = False
    if since is not None:
        start, clamped = (
            (as_utc(since), False) if floor is None else clamp_since(since, start, floor)
        )
    if start >= end:
        raise ReportError(f"--since {rfc3339(start)} must be before --as-of {rfc3339(end)}")
    return start, end, clamped


@dataclass(frozen=True)
class Snapshot:
    """A report's read transaction: its cursor, the ledger's coverage of its window, and the
    provenance of what it counted. ``window_end`` is the end the report answers for: the
    one asked for, unless a person's answer was cut at the coverage."""

    cursor: duckdb.DuckDBPyConnection
    window_start: datetime | None
    window_end: datetime
    generated_at: datetime
    coverage: WindowCoverage

    def provenance(self, counted: Sequence[Sequence[Any]]) -> Provenance:
        """From per-chain counts already computed (:data:`~reports.provenance.CountedChain`)."""
        return provenance_from_counts(self.cursor, counted, **self._window())

    def provenance_of(self, counted_sql: str, params: Mapping[str, Any]) -> Provenance:
        """Of the rows ``counted_sql`` returns (see :func:`~reports.provenance.read_provenance`)."""
        return read_provenance(self.cursor, counted_sql, params, **self._window())

    def _window(self) -> dict[str, Any]:
        return {
            "as_of": self.coverage.requested_end,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "generated_at": self.generated_at,
            "coverage": self.coverage,
        }


def period_policy(allow_incomplete: bool) -> CoveragePolicy:
    """A period report (ccpa, transfers, conformance) is refused past the coverage, or, with
    ``--allow-incomplete``, marked provisional."""
    return "provisional" if allow_incomplete else "refuse"


@contextmanager
def read_snapshot(
    ledger: Ledger,
    report: str,
    *,
    window_start: datetime | None,
    window_end: datetime,
    generated_at: datetime | None,
    on_incomplete: CoveragePolicy = "refuse",
) -> Iterator[Snapshot]:
    """One read transaction over ``ledger`` for the report named ``report`` (in messages).

    A ``window_end`` later than the current time is refused
    (:class:`~reports.errors.FutureAsOfError`); ``generated_at`` (default now) is only
    stated. The ledger's coverage is computed in the
    transaction, once, and checked against the window under ``on_incomplete``
    (:mod:`reports.coverage`): ``refuse`` raises
    :class:`~reports.errors.IncompleteLedgerError`, ``provisional`` marks the report,
    ``cut`` ends the window at the coverage."""
    now = datetime.now(UTC)
    refuse_future_as_of(window_end, now)
    if generated_at is not None:
        now = as_utc(generated_at)
    cursor = cursor_of(ledger.con)  # its own transaction: every query sees one snapshot
    try:
        cursor.execute("SET enable_progress_bar = false")
        cursor.execute("BEGIN TRANSACTION")
        covered = window_coverage(
            ledger_coverage(cursor, now=now),
            report=report,
            window_start=window_start,
            window_end=window_end,
            policy=on_incomplete,
        )
        yield Snapshot(cursor, window_start, covered.answered_end, now, covered)
        cursor.execute("COMMIT")
    except duckdb.Error as exc:
        raise ReportError(f"cannot compute the {report} from ledger {ledger.path}: {exc}") from exc
    finally:
        cursor.close()


def json_text(contract: Contract) -> str:
    """A contract as the report's JSON text: two-space indent, UTF-8 as it is, a last newline."""
    return json.dumps(contract.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


R = TypeVar("R")


@dataclass(frozen=True)
class ReportFormats(Generic[R]):
    """How one report is written in each of :data:`~reports.document.REPORT_FORMATS`."""

    name: str  # in messages: "the CCPA report"
    contract: Callable[[R], Contract]
    document: Callable[[R], Document]
    csv: Callable[[R], str]

    def render(self, report: R, fmt: str) -> str:
        """The report as ``json``, ``md``, ``html`` or ``csv`` text."""
        if fmt == "json":
            return json_text(self.contract(report))
        if fmt == "md":
            return render_markdown(self.document(report))
        if fmt == "html":
            return render_html(self.document(report))
        if fmt == "csv":
            return self.csv(report)
        raise ReportError(
            f"unknown format {fmt!r} for the {self.name} report; choose one of "
            f"{', '.join(REPORT_FORMATS)}"
        )
