"""``verify``: recompute the hash chains, check signed checkpoints, account for offsets."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.options import add_command, ledger_location
from disclosure_ledger.commands.server_options import ledger_or_server_options, service_client
from disclosure_ledger.settings import load_settings

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from ledger.key_history import KeyHistory
    from ledger.verify.result import VerifyResult

# Seconds between two progress lines.
PROGRESS_EVERY_S = 2.0


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "verify",
        run_verify,
        "Recompute the hash chains and Merkle trees, check signed checkpoints and checkpoint "
        "notes, account for every offset.",
    )
    ledger_or_server_options(sub)
    sub.add_argument(
        "--checkpoints",
        type=Path,
        action="append",
        metavar="FILE",
        help="a checkpoint file kept outside the ledger (repeatable); the ledger's own "
        "checkpoints table is always checked",
    )
    sub.add_argument(
        "--public-key",
        type=Path,
        help="the checkpoint public key (default DISCLOSURE_LEDGER_CHECKPOINT_PUBLIC_KEY_FILE); "
        "with a key history, any key in it that you trust",
    )
    sub.add_argument(
        "--notes",
        type=Path,
        action="append",
        metavar="DIR",
        help="a directory of checkpoint notes to check too (repeatable): LEDGER.checkpoint-notes "
        "or a copy of it (DISCLOSURE_LEDGER_CHECKPOINT_COPY_TO); the ledger's own "
        "checkpoint_notes table is always checked",
    )
    sub.add_argument(
        "--key-history",
        type=Path,
        metavar="FILE",
        help="the checkpoint key history, to check each checkpoint with the key in force at "
        "its time (default: CHECKPOINTS.keys beside the checkpoint file, if there is one)",
    )


class ProgressLines:
    """A plain line on standard error every couple of seconds: rows done, share, rate.

    Kept by hand rather than rich.progress: rich redraws one bar on a terminal but, writing
    to a file or a CI log, shows only the final state, while these lines read the same in
    both, and the command stays silent when it finishes within the first interval.
    """

    def __init__(self, every: float = PROGRESS_EVERY_S) -> None:
        self.every = every
        self.started = time.monotonic()
        self.last_report = self.started

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last_report >= self.every or (
            done == total and now - self.started >= self.every
        ):
            self.last_report = now
            rate = done / max(now - self.started, 1e-9)
            print(
                f"verify: {done:,} of {total:,} rows ({100 * done / max(total, 1):.0f}%), "
                f"{rate:,.0f} rows/s",
                file=sys.stderr,
            )


def run_verify(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import verify_result
    from ledger.checkpoints import load_public_key, read_checkpoint_file
    from ledger.store import Ledger
    from ledger.verify import CheckpointSource, verify_ledger

    client = service_client(args)
    if client is not None:
        with client:
            found, ledger_name = verify_result(args, client, ProgressLines())
        if isinstance(found, str):  # a service that gives its verdict as text
            print(found, end="" if found.endswith("\n") else "\n")
            return 0 if "NOT verified" not in found else 1
        return print_verify_result(found, ledger_name)
    public_key_file = args.public_key or load_settings().checkpoint_public_key_file
    public_key = load_public_key(public_key_file) if public_key_file else None
    sources = [
        CheckpointSource(str(path), read_checkpoint_file(path)) for path in args.checkpoints or []
    ]
    history = _key_history(args)
    with Ledger(ledger_location(args), read_only=True) as ledger:
        result = verify_ledger(
            ledger,
            checkpoints=sources,
            public_key=public_key,
            key_history=history,
            notes_dirs=args.notes or [],
            progress=ProgressLines(),
        )
    return print_verify_result(result, str(ledger_location(args)))


def _key_history(args: argparse.Namespace) -> KeyHistory | None:
    """``--key-history``, else the history beside the first checkpoint file that has one."""
    from ledger.checkpoints import default_checkpoint_file
    from ledger.key_history import key_history_file, read_key_history

    if args.key_history is not None:
        return read_key_history(args.key_history)
    for checkpoint_file in [*(args.checkpoints or []), default_checkpoint_file(args.ledger)]:
        beside = key_history_file(checkpoint_file)
        if beside.exists():
            return read_key_history(beside)
    return None


def print_verify_result(result: VerifyResult, ledger_name: str) -> int:
    """What ``verify`` prints of a result; its exit status (1 if anything failed)."""
    for failure in result.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    for chain, (length, head) in sorted(result.chains.items()):
        print(f"chain {chain}: {length} rows, head {head}")
    if result.checkpoints:
        signed = "signatures checked" if result.signatures_checked else "signatures NOT checked"
        print(f"{result.checkpoints} checkpoint(s) checked against the chains ({signed})")
    else:
        print("no checkpoints to check the chains against")
    if result.notes_checked:
        print(f"{result.notes_checked} checkpoint note(s) checked against the Merkle trees")
    verdict = "verified" if result.ok else f"NOT verified: {len(result.failures)} failure(s)"
    print(f"{ledger_name}: {result.rows} rows; {verdict}")
    return 0 if result.ok else 1
