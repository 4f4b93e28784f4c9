"""``backup`` and ``restore``: snapshots that keep erasures (docs/backup.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disclosure_ledger.commands.options import add_command
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    refuse_file_options,
    require_reason,
    service_client,
)

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "backup",
        run_backup,
        "Snapshot the ledger, key store (with the suppression list), request log, users "
        "store, checkpoint file and key history into a new directory, with a manifest.",
    )
    ledger_or_server_options(sub)
    reason_option(sub, "the backup is taken (it copies the subject keys)")
    sub.add_argument(
        "--to",
        type=Path,
        required=True,
        metavar="DIR",
        help="a new or empty directory (with --server: an absolute path on the service's machine)",
    )
    _file_options(sub)

    sub = add_command(
        commands,
        "restore",
        run_restore,
        "Restore a backup in place, re-applying every erasure recorded since it was taken "
        "before anything reads the restored key store. The service must be stopped.",
    )
    sub.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="DIR", help="the backup"
    )
    sub.add_argument("--ledger", type=Path, required=True, help="the ledger file to restore")
    _file_options(sub)


def _file_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    sub.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="the checkpoint file (default LEDGER.checkpoints; its key history is FILE.keys)",
    )


def run_backup(args: argparse.Namespace) -> int:
    from disclosure_ledger.backups import BackupSources, Manifest, take_backup

    client = service_client(args)
    if client is not None:
        refuse_file_options(args, "key_store", "checkpoints")
        body = {"to": str(args.to), "reason": require_reason(args, "backup")}
        with client:
            answer = client.post_json("/backups", body)
        _print_manifest(answer["manifest"], str(answer["directory"]))
        return 0
    destination: Path = args.to.resolve()
    manifest: Manifest = take_backup(
        BackupSources.beside(args.ledger, key_store=args.key_store, checkpoints=args.checkpoints),
        destination,
    )
    _print_manifest(manifest.to_json(), str(destination))
    return 0


def _print_manifest(manifest: dict[str, Any], directory: str) -> None:
    journal = manifest["erasure_journal"]
    print(f"backup of {manifest['ledger']} taken at {manifest['taken_at']} in {directory}:")
    print(f"  {manifest['rows']} ledger rows in {len(manifest['chains'])} chain(s)")
    newest = f", newest {journal['newest_at']}" if journal["newest_at"] else ""
    print(f"  erasure journal: {journal['entries']} entries{newest}")
    for entry in manifest["files"]:
        print(f"  {entry['name']}: {entry['size']} bytes, sha256 {entry['sha256']}")
    if manifest["writers_paused_ms"] is not None:
        print(f"  the service's writers were paused for {manifest['writers_paused_ms']:.0f} ms")
    for what, where in manifest["not_included"].items():
        print(f"not included: the {what}: {where}")
    print("the directory holds the subject keys: keep it as safe as the key store itself")


def run_restore(args: argparse.Namespace) -> int:
    from disclosure_ledger.backups import BackupSources, restore_backup, restore_lines
    from disclosure_ledger.commands.key_material import subject_secret

    sources = BackupSources.beside(
        args.ledger, key_store=args.key_store, checkpoints=args.checkpoints
    )
    outcome = restore_backup(args.source, sources, subject_secret(args.ledger, args.key_store))
    for line in restore_lines(outcome, args.ledger):
        print(line)
    return 0
