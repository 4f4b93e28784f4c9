"""``approvals list|show|approve|reject|withdraw``: the service's requests for an
irreversible act (an erasure, a quarantine read) waiting for a second admin.

Approvals live in the service (``LEDGER.approvals.sqlite``, beside the ledger it holds),
so these commands always go through it (``--server`` and ``--token``).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from disclosure_ledger.commands.options import add_command
from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands

ACTIONS = ("list", "show", "approve", "reject", "withdraw")


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "approvals",
        run_approvals,
        "Requests for an erasure or a quarantine read, waiting for a second admin: list them, "
        "approve or reject someone else's, withdraw your own (through the service).",
    )
    sub.add_argument("action", choices=ACTIONS, help="what to do")
    sub.add_argument("approval_id", nargs="?", help="the request's id (all but list)")
    sub.add_argument("--all", action="store_true", help="list: decided requests too")
    sub.add_argument("--note", help="approve/reject: why (kept in the access log)")
    sub.add_argument(
        "--server",
        metavar="URL",
        help="the ledger service (default DISCLOSURE_LEDGER_SERVER)",
    )
    sub.add_argument("--token", help="API token (default DISCLOSURE_LEDGER_TOKEN)")


def run_approvals(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.server_options import service_client

    args.ledger = None
    if args.action != "list" and not args.approval_id:
        raise DisclosureLedgerError(
            f"approvals {args.action} needs the request's id: `approvals list` shows them"
        )
    client = service_client(args)
    assert client is not None  # no --ledger: a service is named, or service_client raised
    with client:
        if args.action == "list":
            listed = client.get_json("/approvals", {"all": args.all})
            for approval in listed["approvals"]:
                print(_line(approval))
            print(f"{len(listed['approvals'])} request(s): {listed['note']}")
            return 0
        path = f"/approvals/{args.approval_id}"
        if args.action == "show":
            approval = client.get_json(path)
            print(_line(approval))
            for line in approval["lines"]:
                print(line)
            return 0
        body: dict[str, Any] = {} if args.note is None else {"note": args.note}
        answer = client.post_json(f"{path}/{args.action}", body)
        for line in answer["lines"]:
            print(line)
    return 0


def _line(approval: dict[str, Any]) -> str:
    return (
        f"{approval['approval_id']}  {approval['status']:<9} {approval['action']:<6} "
        f"{approval['summary']}  asked by {approval['requested_by']} at "
        f"{approval['requested_at']} ({approval['reason']}); until {approval['expires_at']}"
    )
