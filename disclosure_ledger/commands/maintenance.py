"""Looking after a ledger file: ``migrate`` and ``quarantine show``."""

from __future__ import annotations

import argparse
import getpass
import time
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_secret
from disclosure_ledger.commands.keys import second_person
from disclosure_ledger.commands.options import add_command, ledger_option
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "migrate",
        run_migrate,
        "Bring a ledger written by an earlier release up to date (derived data the reports "
        "read; the writer does this on opening), or choose its heavy subjects afresh.",
    )
    ledger_option(sub)

    sub = add_command(
        commands,
        "quarantine",
        run_quarantine,
        "Show quarantined messages with their raw bytes (sealed in the ledger; opened with "
        "the subject secret).",
    )
    sub.add_argument("action", choices=["show"], help="what to do with the quarantine")
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


def run_migrate(args: argparse.Namespace) -> int:
    from ledger.derived import has_derived, refresh_heavy
    from ledger.store import Ledger

    started = time.monotonic()
    with Ledger(args.ledger, read_only=True) as ledger:  # refuses a file that is no ledger
        current = has_derived(ledger.con)
    with Ledger(args.ledger) as ledger:  # the writer migrates on opening, in one transaction
        if current:
            refresh_heavy(ledger.con)
    what = "heavy subjects chosen afresh" if current else "derived data written"
    print(f"{args.ledger}: {what} in {time.monotonic() - started:.1f} s")
    return 0


def run_quarantine(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import quarantine_show
    from ledger.quarantine import quarantine_key, read_quarantine
    from ledger.store import Ledger

    client = service_client(args)
    if client is not None:
        with client:
            return quarantine_show(args, client)
    if args.approval:
        raise DisclosureLedgerError(
            "--approval reads an approved request through the service: give --server URL"
        )
    reader = getpass.getuser()
    with Ledger(args.ledger, read_only=True) as ledger:  # a served ledger is named first
        approved_by = second_person(
            args.approved_by, reader, "quarantine show", "read of the bytes", "printed with them"
        )
        key = quarantine_key(subject_secret(args.ledger))
        held = read_quarantine(ledger, key, topic=args.topic, partition=args.partition)
    for q in held:
        key_text = "-" if q.key is None else q.key.decode("utf-8", "replace")
        value_text = "-" if q.value is None else q.value.hex()
        print(f"{q.topic}/{q.partition} offset {q.offset} at {q.quarantined_at:%Y-%m-%dT%H:%M:%SZ}")
        print(f"  error: {q.error}")
        print(f"  key: {key_text}")
        print(f"  value ({0 if q.value is None else len(q.value)} bytes, hex): {value_text}")
    print(f"{len(held)} quarantined message(s) in {args.ledger}")
    print(f"read by {reader}, approved by {approved_by}")
    return 0
