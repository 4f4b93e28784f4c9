"""Errors of the Kafka transport (see :mod:`disclosure_ledger.errors` for the whole tree)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = [
    "ClientConfigError",
    "ClientNotInstalledError",
    "TransportError",
    "TransportTimeoutError",
]


class TransportError(DisclosureLedgerError):
    """The Kafka client failed: the broker did not answer, refused, or timed out. The
    message starts with the client's own error name (``KafkaTimeoutError: ...``)."""


class TransportTimeoutError(TransportError):
    """The broker did not answer (or a message was not acknowledged) in time."""


class ClientNotInstalledError(TransportError):
    """The chosen Kafka client is not installed (the message names the extra)."""


class ClientConfigError(DisclosureLedgerError):
    """The client refused its configuration before asking any broker (an unknown property,
    an unreadable file). Not a :class:`TransportError`: retrying cannot help, so the
    consumer's outage loop does not retry it."""
