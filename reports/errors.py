"""Errors of reports and queries (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["QueryRefusedError", "ReportError"]


class ReportError(DisclosureLedgerError):
    """A report or query cannot be produced."""


class QueryRefusedError(ReportError):
    """A query is not exactly one read-only statement."""
