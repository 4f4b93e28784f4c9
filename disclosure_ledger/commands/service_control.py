"""``service``: the status of the service running over a ledger, or stop it (SIGTERM)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command, ledger_option

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "service",
        run_service,
        "Show whether a service (`serve`) runs over a ledger, or stop it: SIGTERM, which "
        "commits the batch in hand and writes the final checkpoint (as `make clean` does).",
    )
    sub.add_argument(
        "action",
        choices=["status", "stop"],
        help="show its pid and address (exit 3 when none runs), or stop it and wait",
    )
    ledger_option(sub)


def run_service(args: argparse.Namespace) -> int:
    from disclosure_ledger.service.background import readyz, stop_service
    from disclosure_ledger.service.state_file import read_service_state, state_file

    if args.action == "stop":
        stopped = stop_service(args.ledger)
        if stopped is None:
            print(f"no service runs over {args.ledger}")
        else:
            print(f"service stopped (pid {stopped.pid}, was at {stopped.url})")
        return 0
    state = read_service_state(args.ledger)
    if state is None:
        print(f"no service runs over {args.ledger} (no live process in {state_file(args.ledger)})")
        return 3
    answer = readyz(state.url)
    shown = "not answering" if answer is None else f"/readyz {answer[0]}: {answer[1]}"
    print(f"service running (pid {state.pid}) at {state.url}; {shown}")
    return 0
