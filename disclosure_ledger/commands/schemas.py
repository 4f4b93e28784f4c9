"""``schemas check``: every schema version reads all earlier ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "schemas",
        run_schemas,
        "Check that every schema version can read all earlier ones (Avro resolution).",
    )
    sub.add_argument("action", choices=["check"], help="check the schema versions")
    sub.add_argument(
        "--dir",
        type=Path,
        help="directory of disclosure_event.vN.avsc files (default: the shipped schemas)",
    )


def run_schemas(args: argparse.Namespace) -> int:
    from schemas.compat import check_schema_directory

    report = check_schema_directory(args.dir)
    for line in report.lines():
        print(line, file=sys.stdout if line.startswith(("ok", "note")) else sys.stderr)
    where = args.dir or "the shipped schemas"
    versions = ", ".join(f"v{v}" for v in report.versions) or "none"
    verdict = "compatible" if report.ok else "NOT compatible"
    print(f"{where} ({versions}): {verdict}: each version must read every earlier one")
    return 0 if report.ok else 1
