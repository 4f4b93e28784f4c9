"""Errors of the ledger file (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = [
    "ChainError",
    "LedgerError",
    "LedgerLockedError",
    "LedgerVersionError",
    "WrongSecretError",
]


class LedgerError(DisclosureLedgerError):
    """The DuckDB ledger file cannot be used as asked."""


class LedgerLockedError(LedgerError):
    """Another process is writing to the ledger file."""


class LedgerVersionError(LedgerError):
    """The ledger file was written by a DuckDB version this installation cannot read."""


class ChainError(LedgerError):
    """The hash chain or the offset accounting does not verify."""


class WrongSecretError(LedgerError):
    """The subject secret is not the one the subject key store was created with."""
