"""The project's one root error, and the family tree every package's errors hang from.

Every error a user can meet derives from :class:`DisclosureLedgerError` and says what was
wrong, with which input, and what to do about it. Each package declares its own errors in
its own ``errors`` module; third-party errors are converted where they cross into ours
(``raise LedgerError(...) from exc``)::

    DisclosureLedgerError           disclosure_ledger.errors (this module)
    ├── SchemaError                 schemas.errors: the wire contract
    │   ├── EventValidationError    an event does not satisfy the contract (field named)
    │   └── DecodeError             bytes are not a single-object-encoded DisclosureEvent
    ├── ReferenceDataError          reference.errors: reference data files are invalid
    │   └── ReferenceViolation      an event the reference data cannot place (key named)
    ├── PublishError                producers.errors: the broker did not acknowledge an event
    │   └── UnregisteredRecipientError  strict check: recipient not in the registry, not sent
    ├── ConsumeError                consumers.errors: the consumer cannot make progress
    ├── LedgerError                 ledger.errors: the DuckDB ledger file
    │   ├── LedgerLockedError       a second writer tried to open the file
    │   ├── LedgerVersionError      the file was written by a DuckDB this one cannot read
    │   ├── ChainError              the hash chain or offset accounting does not verify
    │   └── WrongSecretError        the subject secret is not the key store's own
    ├── ReportError                 reports.errors: a report or query cannot be produced
    │   ├── QueryRefusedError       a query is not one read-only statement
    │   ├── QueryTimeLimitError     a query ran past its time limit and was stopped
    │   ├── IncompleteLedgerError   the window ends after the ledger's coverage (exit 3)
    │   └── FutureAsOfError         --as-of is later than now (exit 2)
    ├── BackupError                 disclosure_ledger.backups.errors: a backup or restore refused
    ├── BrokerError                 this module: the local Kafka broker
    └── KafkaSecurityError          this module: TLS/SASL connection settings are unusable

This module imports nothing of the project, so every layer, the lowest (``schemas``)
included, may import it without pulling in the CLI.
"""

from __future__ import annotations

__all__ = ["BrokerError", "DisclosureLedgerError", "KafkaSecurityError"]


class DisclosureLedgerError(Exception):
    """Root of every error this project raises on purpose."""


class BrokerError(DisclosureLedgerError):
    """The local Kafka broker cannot be started, reached or stopped."""


class KafkaSecurityError(DisclosureLedgerError):
    """The Kafka connection settings (TLS, SASL) are incomplete or contradict each other."""
