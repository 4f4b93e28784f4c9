"""``schemas check``: for each record type of the topic (disclosure events, producer
watermarks), every schema version reads all earlier ones, and no two types share a
fingerprint."""

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
        "Check that every schema version can read all earlier ones (Avro resolution), for "
        "disclosure events and producer watermarks alike.",
    )
    sub.add_argument("action", choices=["check"], help="check the schema versions")
    sub.add_argument(
        "--dir",
        type=Path,
        help="directory of disclosure_event.vN.avsc and producer_watermark.vN.avsc files "
        "(default: the shipped schemas)",
    )


def run_schemas(args: argparse.Namespace) -> int:
    from schemas.compat import check_record_types

    where = args.dir or "the shipped schemas"
    ok = True
    for record_type, report in check_record_types(args.dir).items():
        for line in report.lines():
            print(line, file=sys.stdout if line.startswith(("ok", "note")) else sys.stderr)
        versions = ", ".join(f"v{v}" for v in report.versions) or "none"
        verdict = "compatible" if report.ok else "NOT compatible"
        print(
            f"{where}, {record_type} ({versions}): {verdict}: each version must read every "
            "earlier one"
        )
        ok = ok and report.ok
    return 0 if ok else 1
