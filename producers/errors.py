"""Errors of the producer library (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["PublishError", "UnregisteredRecipientError"]


class PublishError(DisclosureLedgerError):
    """The broker did not acknowledge an event."""


class UnregisteredRecipientError(PublishError):
    """Strict recipient check: the event names a recipient the registry lacks; not sent."""
