"""``query``: one read-only SQL statement over a ledger, or a named preset."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_keys
from disclosure_ledger.commands.options import (
    add_command,
    iso_datetime,
    ledger_location,
    open_output,
)
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError
from ledger.lake import LakeLocation

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "query",
        run_query,
        "Run one read-only SQL statement over a ledger, or a named preset: "
        "timeline (--subject-id), recipient (--recipient-id), volume (--by).",
    )
    ledger_or_server_options(sub)
    reason_option(sub, "the ledger is queried")
    sub.add_argument(
        "--format",
        choices=["table", "csv", "json", "parquet"],
        default="table",
        help="output format (default table)",
    )
    sub.add_argument(
        "--output", type=Path, help="file to write (default: standard output; parquet needs one)"
    )
    sub.add_argument(
        "sql", help="one SELECT or WITH ... SELECT statement, or timeline | recipient | volume"
    )
    sub.add_argument("--subject-id", help="timeline: the person's id")
    sub.add_argument(
        "--subject-type",
        choices=["member", "guest"],
        default="member",
        help="timeline: the kind of subject (default member)",
    )
    sub.add_argument("--key-store", type=Path, help="timeline: key store (default beside ledger)")
    sub.add_argument("--recipient-id", help="recipient: the recipient's id")
    sub.add_argument(
        "--by", choices=["recipient", "category", "day"], default="recipient", help="volume"
    )
    sub.add_argument("--from", dest="from_", type=iso_datetime, help="presets: start, included")
    sub.add_argument("--to", type=iso_datetime, help="presets: end, excluded")


def run_query(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import run_query as run_through_service
    from reports.presets import Output, recipient_disclosures, timeline, volume
    from reports.query import coverage_note
    from reports.query import run_query as run_sql

    client = service_client(args)
    if client is not None:
        if args.sql == "timeline":
            _need(args, "subject_id", "timeline")
        elif args.sql == "recipient":
            _need(args, "recipient_id", "recipient")
        with client:
            run_through_service(args, client)
        return 0
    binary = args.format == "parquet"
    # The subject's pseudonym before any output is opened: a wrong secret writes nothing.
    pseudonym = _timeline_pseudonym(args) if args.sql == "timeline" else None
    with open_output(None if binary else args.output) as out:
        output = Output(args.format, out, args.output if binary else None)
        if args.sql == "timeline":
            if pseudonym is None:
                print("no key for that subject in the key store: no data held", file=sys.stderr)
            rows = timeline(
                ledger_location(args),
                pseudonym,
                args.subject_type,
                output,
                start=args.from_,
                end=args.to,
            )
        elif args.sql == "recipient":
            _need(args, "recipient_id", "recipient")
            rows = recipient_disclosures(
                ledger_location(args), args.recipient_id, output, start=args.from_, end=args.to
            )
        elif args.sql == "volume":
            rows = volume(ledger_location(args), args.by, output, start=args.from_, end=args.to)
        else:
            rows = run_sql(
                ledger_location(args), args.sql, args.format, out, output_path=output.output_path
            )
    if binary:
        print(f"{rows} rows written to {args.output}", file=sys.stderr)
    print(coverage_note(_coverage_of(ledger_location(args))), file=sys.stderr)
    return 0


def _coverage_of(ledger_path: Path | LakeLocation) -> str:
    """How far the ledger the rows came from is complete (nothing writes it meanwhile: a
    writer would hold it, and this command could not have opened it)."""
    from ledger.coverage import ledger_coverage
    from ledger.store import Ledger

    with Ledger(ledger_path, read_only=True) as ledger:
        return ledger_coverage(ledger.con).describe()


def _timeline_pseudonym(args: argparse.Namespace) -> str | None:
    """The subject's pseudonym, or None if the key store holds no key; the secret checked."""
    from ledger.key_check import KeyStoreAccess
    from ledger.store import Ledger

    _need(args, "subject_id", "timeline")
    with (
        Ledger(ledger_location(args), read_only=True) as ledger,
        subject_keys(
            ledger_location(args), args.key_store, access=KeyStoreAccess.read, ledger=ledger
        ) as keys,
    ):
        return keys.pseudonym(args.subject_type, args.subject_id)


def _need(args: argparse.Namespace, option: str, preset: str) -> None:
    if getattr(args, option) is None:
        raise DisclosureLedgerError(
            f"query {preset} needs --{option.replace('_', '-')}; see `query --help`"
        )
