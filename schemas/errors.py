"""The project's one root error and its family tree.

Every error a user can meet derives from :class:`DisclosureLedgerError` and says what
was wrong, with which input, and what to do about it::

    DisclosureLedgerError
    ├── SchemaError                 schemas/: the wire contract
    │   ├── EventValidationError    an event does not satisfy the contract (field named)
    │   └── DecodeError             bytes are not a single-object-encoded DisclosureEvent
    ├── PublishError                producers/: an event was not acknowledged by the broker
    ├── ConsumeError                consumers/: the consumer cannot make progress
    ├── LedgerError                 ledger/: the DuckDB ledger file
    │   ├── LedgerLockedError       a second writer tried to open the file
    │   ├── ReferenceDataError      reference data files are invalid
    │   └── ChainError              the hash chain or offset accounting does not verify
    ├── ReportError                 reports/: a report or query cannot be produced
    │   └── QueryRefusedError       a query is not one read-only statement
    └── BrokerError                 disclosure_ledger/: the local Kafka broker

The root lives in ``schemas`` because it is the bottom layer every package may import.
"""

from __future__ import annotations


class DisclosureLedgerError(Exception):
    """Root of every error this project raises on purpose."""


class SchemaError(DisclosureLedgerError):
    """The wire contract was not met."""


class EventValidationError(SchemaError):
    """An event does not satisfy the contract; the message names the field at fault."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DecodeError(SchemaError):
    """Bytes from the topic are not a single-object-encoded DisclosureEvent."""


class PublishError(DisclosureLedgerError):
    """The broker did not acknowledge an event."""


class ConsumeError(DisclosureLedgerError):
    """The consumer cannot make progress."""


class LedgerError(DisclosureLedgerError):
    """The DuckDB ledger file cannot be used as asked."""


class LedgerLockedError(LedgerError):
    """Another process is writing to the ledger file."""


class ReferenceDataError(LedgerError):
    """The reference data files are invalid."""


class ChainError(LedgerError):
    """The hash chain or the offset accounting does not verify."""


class ReportError(DisclosureLedgerError):
    """A report or query cannot be produced."""


class QueryRefusedError(ReportError):
    """A query is not exactly one read-only statement."""


class BrokerError(DisclosureLedgerError):
    """The local Kafka broker cannot be started, reached or stopped."""
