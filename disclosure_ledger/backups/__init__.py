"""Backups that keep erasures: ``backup`` (:mod:`.snapshot`) and ``restore``
(:mod:`.restore`), described by a manifest (:mod:`.manifest`). See docs/backup.md."""

from disclosure_ledger.backups.errors import BackupError
from disclosure_ledger.backups.manifest import Manifest, read_manifest
from disclosure_ledger.backups.restore import RestoreOutcome, restore_backup, restore_lines
from disclosure_ledger.backups.snapshot import BackupSources, take_backup

__all__ = [
    "BackupError",
    "BackupSources",
    "Manifest",
    "RestoreOutcome",
    "read_manifest",
    "restore_backup",
    "restore_lines",
    "take_backup",
]
