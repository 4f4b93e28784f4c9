"""Errors of the reference data (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["ReferenceDataError", "ReferenceViolation"]


class ReferenceDataError(DisclosureLedgerError):
    """The reference data files are invalid."""


class ReferenceViolation(ReferenceDataError):
    """An event the reference data cannot place; names the key and the file to extend."""

    def __init__(self, message: str, *, key: str, reference_file: str) -> None:
        super().__init__(message)
        self.key = key
        self.reference_file = reference_file
