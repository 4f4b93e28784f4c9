"""Errors of the consumer (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["ConsumeError"]


class ConsumeError(DisclosureLedgerError):
    """The consumer cannot make progress."""
