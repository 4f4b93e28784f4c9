"""Looking after a ledger file: ``migrate``, ``quarantine show`` and ``quarantine purge``."""

from __future__ import annotations

import argparse
import getpass
import time
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_keys
from disclosure_ledger.commands.keys import second_person
from disclosure_ledger.commands.options import add_command, ledger_location, ledger_option
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError
from ledger.lake import LakeLocation

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from ledger.store import Ledger


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "migrate",
        run_migrate,
        "Bring a ledger written by an earlier release up to date (derived data the reports "
        "read, the Merkle trees: the writer does this on opening; signed notes beside old "
        "checkpoints, with the signing key from the settings), or choose its heavy subjects "
        "afresh.",
    )
    ledger_option(sub)
    sub.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="the checkpoint file, beside which the key history is looked for (default "
        "LEDGER.checkpoints)",
    )

    sub = add_command(
        commands,
        "quarantine",
        run_quarantine,
        "Show quarantined messages with their raw bytes (sealed in the ledger under their "
        "subject's key or the deployment key), or purge those whose subject cannot be known "
        "once past the quarantine retention.",
    )
    sub.add_argument(
        "action",
        choices=["show", "purge"],
        help="show: each message with its bytes; purge: delete the bytes of messages sealed "
        "under the deployment key and older than the retention (direct on a ledger with no "
        "service; a running service purges on its own)",
    )
    ledger_or_server_options(sub)
    reason_option(sub, "the quarantined bytes are read")
    sub.add_argument("--topic", help="only this source topic")
    sub.add_argument("--partition", type=int, help="only this source partition")
    sub.add_argument(
        "--approved-by",
        metavar="NAME",
        help="on a ledger file (--ledger): the second person, not you, who approved reading "
        "the bytes (printed with them). Through --server an admin approves each read instead",
    )
    sub.add_argument(
        "--approval",
        metavar="ID",
        action="append",
        help="through --server: read the message of this approved request (once); without "
        "it, a read request is made for each message listed, for an admin to approve",
    )
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    sub.add_argument(
        "--retention-days",
        type=int,
        help="purge: days a message of unknown subject is kept (default "
        "DISCLOSURE_LEDGER_QUARANTINE_RETENTION_DAYS, or 30)",
    )


def run_migrate(args: argparse.Namespace) -> int:
    from ledger.derived import has_derived, refresh_heavy
    from ledger.store import Ledger

    started = time.monotonic()
    location = ledger_location(args)
    if isinstance(location, LakeLocation):
        # a new lake's tables are created, an older lake's brought up to date, on opening
        with Ledger(location) as ledger:
            refresh_heavy(ledger.con)
            notes = _migrate_checkpoint_notes(args, ledger)
        took = time.monotonic() - started
        print(f"{location}: tables and derived data up to date in {took:.1f} s")
        for line in notes:
            print(line)
        return 0
    with Ledger(args.ledger, read_only=True) as ledger:  # refuses a file that is no ledger
        current = has_derived(ledger.con)
    with Ledger(args.ledger) as ledger:  # the writer migrates on opening, in one transaction
        if current:
            refresh_heavy(ledger.con)
        notes = _migrate_checkpoint_notes(args, ledger)
    what = "heavy subjects chosen afresh" if current else "derived data written"
    print(f"{args.ledger}: {what} in {time.monotonic() - started:.1f} s")
    for line in notes:
        print(line)
    return 0


def _migrate_checkpoint_notes(args: argparse.Namespace, ledger: Ledger) -> list[str]:
    """Signed notes beside old one-line checkpoints; what was done and what was not."""
    from disclosure_ledger.commands.key_material import signing_key
    from disclosure_ledger.settings import load_settings
    from ledger.checkpoint_migration import migrate_checkpoint_notes
    from ledger.checkpoint_notes import default_notes_dir
    from ledger.checkpoints import default_checkpoint_file

    settings = load_settings()
    has_key = (
        settings.checkpoint_signing_key is not None
        or settings.checkpoint_signing_key_file is not None
    )
    notes_dir = settings.checkpoint_notes_dir or default_notes_dir(args.ledger)
    outcome = migrate_checkpoint_notes(
        ledger,
        signing_key() if has_key else None,
        args.checkpoints or default_checkpoint_file(args.ledger),
        notes_dir=notes_dir,
        origin=settings.checkpoint_origin,
        copy_to=settings.checkpoint_copy_to,
    )
    said = []
    if outcome.signed:
        said.append(
            f"signed notes written beside {len(outcome.signed)} old checkpoint(s) (from "
            f"{outcome.signed[0]} to {outcome.signed[-1]}): in the ledger and in {notes_dir}"
        )
    if outcome.copy_failed:
        said.append(
            f"the notes could not all be copied to {settings.checkpoint_copy_to}: the next "
            "checkpoint copies what is missing"
        )
    if outcome.without_key:
        said.append(
            f"NOT done: {len(outcome.without_key)} old checkpoint(s) have no signed notes, "
            "since no signing key is set. Set DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE "
            "and run migrate again; the one-line checkpoints stay verifiable meanwhile"
        )
    for at, why in outcome.refused:
        said.append(f"NOT done: no notes for the checkpoint of {at}: {why}")
    return said


def run_quarantine(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import quarantine_show
    from ledger.key_check import KeyStoreAccess
    from ledger.quarantine import read_quarantine
    from ledger.store import Ledger

    if args.action == "purge":
        return _run_quarantine_purge(args)
    client = service_client(args)
    if client is not None:
        with client:
            return quarantine_show(args, client)
    if args.approval:
        raise DisclosureLedgerError(
            "--approval reads an approved request through the service: give --server URL"
        )
    reader = getpass.getuser()
    with Ledger(ledger_location(args), read_only=True) as ledger:  # served: named first
        approved_by = second_person(
            args.approved_by, reader, "quarantine show", "read of the bytes", "printed with them"
        )
        with subject_keys(
            ledger_location(args), args.key_store, access=KeyStoreAccess.read, ledger=ledger
        ) as keys:
            held = read_quarantine(ledger, keys, topic=args.topic, partition=args.partition)
    for q in held:
        print(f"{q.topic}/{q.partition} offset {q.offset} at {q.quarantined_at:%Y-%m-%dT%H:%M:%SZ}")
        print(f"  error: {q.error}")
        print(f"  sealed with: {sealed_with_text(q.sealed_with)}")
        if q.unreadable is not None:
            print(f"  bytes: {q.unreadable}")
            continue
        key_text = "-" if q.key is None else q.key.decode("utf-8", "replace")
        value_text = "-" if q.value is None else q.value.hex()
        print(f"  key: {key_text}")
        print(f"  value ({0 if q.value is None else len(q.value)} bytes, hex): {value_text}")
    print(f"{len(held)} quarantined message(s) in {args.ledger}")
    print(f"read by {reader}, approved by {approved_by}")
    return 0


def sealed_with_text(sealed_with: str | None) -> str:
    return "the deployment key" if sealed_with is None else f"subject key {sealed_with}"


def _run_quarantine_purge(args: argparse.Namespace) -> int:
    from disclosure_ledger.errors import DisclosureLedgerError
    from disclosure_ledger.settings import load_settings
    from ledger.quarantine import purge_quarantine
    from ledger.store import Ledger

    if args.server is not None or args.ledger is None:
        raise DisclosureLedgerError(
            "quarantine purge runs directly on a ledger file with no service holding it: give "
            "--ledger PATH (a running service purges on its own, every hour)"
        )
    days = args.retention_days or load_settings().quarantine_retention_days
    with Ledger(ledger_location(args)) as ledger:
        done = purge_quarantine(ledger, retention_days=days)
    print(
        f"purged the bytes of {done.purged} quarantined message(s) of unknown subject "
        f"quarantined before {done.cutoff:%Y-%m-%dT%H:%M:%SZ} ({days}-day retention); their "
        f"rows stay, marked purged at {done.purged_at:%Y-%m-%dT%H:%M:%SZ}, so verify still "
        "accounts for their offsets"
    )
    return 0
