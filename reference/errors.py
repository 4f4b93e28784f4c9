"""Errors of the reference data (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["ReferenceDataError"]


class ReferenceDataError(DisclosureLedgerError):
    """The reference data files are invalid."""
