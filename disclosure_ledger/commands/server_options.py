"""``--server`` and ``--token``: a read command (and ``erase-subject``) asks the ledger
service instead of opening the ledger file.

A command goes through the service when given ``--server URL``, or when given no
``--ledger`` and ``DISCLOSURE_LEDGER_SERVER`` is set; the token is ``--token`` or
``DISCLOSURE_LEDGER_TOKEN`` (prefer the variable: a command line is visible to every user
of the machine). The output and the exit status are those of the same command run on
the ledger file.
"""

from __future__ import annotations

import argparse

from disclosure_ledger.commands.options import LEDGER_HELP, ledger_argument
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.client import LedgerClient
from disclosure_ledger.settings import load_settings

__all__ = [
    "ledger_or_server_options",
    "reason_option",
    "refuse_file_options",
    "require_reason",
    "service_client",
]


def ledger_or_server_options(sub: argparse.ArgumentParser) -> None:
    """``--ledger PATH``, or ``--server URL`` with ``--token``: one of the two is needed."""
    sub.add_argument(
        "--ledger",
        type=ledger_argument,
        help=f"{LEDGER_HELP} (or give --server to ask the service that holds it)",
    )
    sub.add_argument(
        "--server",
        metavar="URL",
        help="ask the ledger service at URL instead of opening the file (default, when no "
        "--ledger is given: DISCLOSURE_LEDGER_SERVER)",
    )
    sub.add_argument(
        "--token",
        help="API token for --server (default DISCLOSURE_LEDGER_TOKEN, which keeps it off "
        "the command line)",
    )


def reason_option(sub: argparse.ArgumentParser, what: str) -> None:
    sub.add_argument(
        "--reason",
        help=f"why {what}: a case number or ticket; required with --server, where it is kept "
        "in the service's access log",
    )


def service_client(args: argparse.Namespace) -> LedgerClient | None:
    """The client of the service to ask, or None to open ``args.ledger`` directly."""
    settings = load_settings()
    url = args.server or (None if args.ledger is not None else settings.server)
    if url is None:
        if args.ledger is None:
            raise DisclosureLedgerError(
                "give --ledger PATH to read the ledger file, or --server URL (or "
                "DISCLOSURE_LEDGER_SERVER) to ask the ledger service that holds it"
            )
        return None
    token = args.token or (
        settings.token.get_secret_value() if settings.token is not None else None
    )
    return LedgerClient(url, token)


def refuse_file_options(args: argparse.Namespace, *names: str) -> None:
    """Options that name files beside the ledger mean nothing through the service."""
    given = [name for name in names if getattr(args, name, None) not in (None, False, [])]
    if given:
        options = ", ".join("--" + name.replace("_", "-") for name in given)
        raise DisclosureLedgerError(
            f"{options} cannot be given with --server: the service uses its own files "
            "(key store, request log, checkpoints); leave them out, or give --ledger instead "
            "of --server when the ledger is not being served"
        )


def require_reason(args: argparse.Namespace, command: str) -> str:
    reason: str | None = getattr(args, "reason", None)
    if reason is None or not reason.strip():
        raise DisclosureLedgerError(
            f"{command} through --server reads personal data: give --reason (a case number "
            "or ticket), which the service keeps in its access log"
        )
    return reason
