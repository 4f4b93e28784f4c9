"""``status``: how far the ledger is complete, and which sources and partitions hold it
back."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command, ledger_location
from disclosure_ledger.commands.server_options import ledger_or_server_options, service_client

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "status",
        run_status,
        "Show up to when the ledger is complete (producer watermarks, partition positions) "
        "and name the sources and partitions that hold it back.",
    )
    ledger_or_server_options(sub)
    sub.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text tables for people (default) or one JSON object for tools",
    )


def run_status(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import coverage_status_of, status_document
    from ledger.coverage_status import coverage_status
    from ledger.store import Ledger

    client = service_client(args)
    if client is not None:
        with client:
            document = status_document(client)
        lines = coverage_status_of(document).lines()
    else:
        with Ledger(ledger_location(args), read_only=True) as ledger:
            status = coverage_status(ledger.con)
        document, lines = status.to_json(), status.lines()
    if args.format == "json":
        json.dump(document, sys.stdout, indent=2)
        print()
    else:
        print("\n".join(lines))
    return 0
