"""The backup's one error: a snapshot that cannot be taken, or a backup that cannot be
restored (a hash that does not match, a destination in use, a service on the ledger)."""

from __future__ import annotations

from disclosure_ledger.errors import DisclosureLedgerError

__all__ = ["BackupError"]


class BackupError(DisclosureLedgerError):
    """A backup or restore refused or failed; the message names the file and the fix."""
