"""Errors of reports and queries (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from ledger.coverage import Coverage

__all__ = [
    "FutureAsOfError",
    "IncompleteLedgerError",
    "QueryRefusedError",
    "QueryTimeLimitError",
    "ReportError",
]


class ReportError(DisclosureLedgerError):
    """A report or query cannot be produced."""


class QueryRefusedError(ReportError):
    """A query is not exactly one read-only statement."""


class QueryTimeLimitError(ReportError):
    """A query ran past its time limit and was stopped."""

    def __init__(self, message: str, time_limit: float) -> None:
        super().__init__(message)
        self.time_limit = time_limit


class IncompleteLedgerError(ReportError):
    """A report's window ends after the ledger's coverage (the CLI exits 3)."""

    def __init__(self, message: str, coverage: Coverage) -> None:
        super().__init__(message)
        self.coverage = coverage


class FutureAsOfError(ReportError):
    """A report was asked for as of a time that has not come yet (the CLI exits 2)."""
