"""``notices record``: a GDPR Art. 19 notice sent to a recipient of an erased subject's
data, appended to the ledger's ``erasure_notices`` (directly, or through the service with
``--server``). ``report recipients --notices-due`` lists the notices still due."""

from __future__ import annotations

import argparse
import getpass
from typing import TYPE_CHECKING
from urllib.parse import quote

from disclosure_ledger.commands.options import add_command, iso_date, ledger_location
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    refuse_file_options,
    service_client,
)

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    help_text = (
        "Record a GDPR Art. 19 notice: a recipient of an erased subject's data was told of "
        "the erasure (`report recipients --notices-due` lists those still due)."
    )
    group = add_command(commands, "notices", run_notices, help_text)
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub = actions.add_parser("record", help=help_text, description=help_text)
    ledger_or_server_options(sub)
    sub.add_argument(
        "--erasure",
        required=True,
        metavar="ID",
        help="the erasure id (from the erasure journal; `report recipients --notices-due` "
        "lists them)",
    )
    sub.add_argument(
        "--recipient",
        required=True,
        metavar="R",
        help="the recipient notified: one that received the erased subject's data",
    )
    sub.add_argument(
        "--sent-on",
        type=iso_date,
        required=True,
        metavar="DATE",
        help="the day the notice was sent, like 2026-11-01 (not before the erasure, not "
        "in the future)",
    )
    sub.add_argument("--note", help="how the notice was sent, a reference (kept with it)")
    sub.add_argument(
        "--actor",
        help="who records the notice (default: the OS user; through --server, the account "
        "of the token)",
    )


def run_notices(args: argparse.Namespace) -> int:
    from disclosure_ledger.service.answers.notices import notice_line
    from ledger.notices import record_notice
    from ledger.store import Ledger

    client = service_client(args)
    if client is not None:
        refuse_file_options(args, "actor")
        with client:
            answer = client.post_json(
                f"/erasures/{quote(args.erasure.strip(), safe='')}/notices",
                {
                    "recipient_id": args.recipient,
                    "sent_on": args.sent_on.isoformat(),
                    "note": args.note,
                },
            )
        print(answer["line"])
        return 0
    with Ledger(ledger_location(args)) as ledger:
        notice = record_notice(
            ledger,
            erasure_id=args.erasure,
            recipient_id=args.recipient,
            sent_on=args.sent_on,
            recorded_by=args.actor or getpass.getuser(),
            note=args.note,
        )
    print(notice_line(notice))
    return 0
