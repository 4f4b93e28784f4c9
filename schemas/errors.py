"""Errors of the wire contract (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["DecodeError", "EventValidationError", "SchemaError"]


class SchemaError(DisclosureLedgerError):
    """The wire contract was not met."""


class EventValidationError(SchemaError):
    """An event does not satisfy the contract; the message names the field at fault."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DecodeError(SchemaError):
    """Bytes from the topic are not a single-object-encoded DisclosureEvent."""
