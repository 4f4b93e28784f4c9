"""``disclosure-ledger``: every command parses its arguments and calls the library.

The commands live in :mod:`disclosure_ledger.commands`, one module per group; this module
builds the parser from them, sets up logging, and turns the project's errors into a
message on standard error and an exit status: 1 for an error, 2 for a usage error (an
invalid event, an ``--as-of`` in the future), 3 for a report refused because its window
ends after the ledger's coverage (:class:`reports.errors.IncompleteLedgerError`).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from disclosure_ledger.commands import (
    approvals,
    backups,
    broker,
    ingest,
    keys,
    maintenance,
    notices,
    proofs,
    query,
    reference,
    reports,
    requests,
    schemas,
    serve,
    service_control,
    status,
    users,
    verify,
)
from disclosure_ledger.commands.key_material import default_key_store
from disclosure_ledger.commands.options import Handler, split_ledger_location
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.client import ServiceClientError
from disclosure_ledger.service.state_file import read_service_state
from ledger.errors import LedgerError, LedgerLockedError
from reports.errors import FutureAsOfError, IncompleteLedgerError
from schemas.errors import EventValidationError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands

__all__ = ["COMMAND_GROUPS", "EXIT_INCOMPLETE", "build_parser", "default_key_store", "main"]

EXIT_INCOMPLETE = 3
"""A report refused: its window ends after the ledger's coverage."""


class CommandGroup(Protocol):
    def register(self, commands: Subcommands) -> None: ...


# In the order `disclosure-ledger --help` lists them.
COMMAND_GROUPS: tuple[CommandGroup, ...] = (
    broker,
    ingest,
    serve,
    service_control,
    verify,
    proofs,
    status,
    maintenance,
    keys,
    approvals,
    backups,
    notices,
    reports,
    requests,
    query,
    schemas,
    reference,
    users,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="disclosure-ledger",
        description="An auditable ledger of every disclosure of members' personal data.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        split_ledger_location(args)
    except LedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # kafka-python logs several lines per reconnection attempt; the commands log one
    # line per attempt themselves, so its own messages show only with --verbose.
    logging.getLogger("kafka").setLevel(logging.CRITICAL if not args.verbose else logging.DEBUG)
    # httpx2 logs every request at INFO; with --server the output must equal the file's.
    logging.getLogger("httpx2").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    handler: Handler = args.handler
    try:
        return handler(args)
    except DisclosureLedgerError as exc:
        served = _served_by(args, exc)
        print(f"error: {served or exc}", file=sys.stderr)
        if isinstance(exc, ServiceClientError):
            return exc.exit_status
        if isinstance(exc, IncompleteLedgerError):
            return EXIT_INCOMPLETE
        return 2 if isinstance(exc, EventValidationError | FutureAsOfError) else 1
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _served_by(args: argparse.Namespace, exc: DisclosureLedgerError) -> str | None:
    """For a ledger held by a running service: say so, and how to read through it."""
    ledger = getattr(args, "ledger", None)
    if not isinstance(exc, LedgerError) or ledger is None:
        return None
    if not isinstance(exc, LedgerLockedError) and "lock" not in str(exc).lower():
        return None
    state = read_service_state(Path(ledger))
    if state is None:
        return None
    return (
        f"ledger {ledger} is served by the ledger service at {state.url} (pid {state.pid}): "
        f"give --server {state.url} (and --token, or DISCLOSURE_LEDGER_TOKEN) to read "
        "through it"
    )


if __name__ == "__main__":
    sys.exit(main())
