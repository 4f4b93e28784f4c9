"""``reference show|check``: the reference data, shown or checked."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands

# The sections of `reference show`, as reference.REFERENCE_SECTIONS names them; listed here
# so that building the parser imports no reference data (a test holds the two together).
SECTIONS = ("recipients", "categories", "purposes", "flows", "sources")


def register(commands: Subcommands) -> None:
    sub = add_command(commands, "reference", run_reference, "Show or check the reference data.")
    sub.add_argument(
        "action", choices=["show", "check"], help="show one section, or check every file"
    )
    sub.add_argument(
        "section",
        nargs="?",
        default="recipients",
        choices=list(SECTIONS),
        help="the section to show (default recipients)",
    )
    sub.add_argument("--reference", type=Path, help="reference data directory (default: shipped)")


def run_reference(args: argparse.Namespace) -> int:
    from reference import check_reference, format_reference, load_reference

    if args.action == "check":
        problems = check_reference(args.reference)
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) in the reference data")
        return 1 if problems else 0
    reference = load_reference(args.reference)
    print(f"reference data version {reference.version}")
    print(format_reference(reference, args.section))
    return 0
