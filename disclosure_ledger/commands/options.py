"""What the command groups share: how a command is declared, and the common options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeAlias

from disclosure_ledger.settings import load_settings
from ledger.errors import LedgerError
from ledger.lake import LakeLocation, is_lake, parse_location
from schemas import DEFAULT_TOPIC

if TYPE_CHECKING:
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

__all__ = [
    "Handler",
    "add_command",
    "bootstrap_servers",
    "iso_date",
    "iso_datetime",
    "kafka_options",
    "ledger_argument",
    "ledger_location",
    "ledger_option",
    "open_output",
    "split_ledger_location",
]

# A command's handler: parsed arguments in, exit status out.
Handler = Callable[[argparse.Namespace], int]


def add_command(
    commands: Subcommands, name: str, handler: Handler, help_text: str
) -> argparse.ArgumentParser:
    """Declare one command; its help text is also its description in ``COMMAND --help``."""
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


def kafka_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--bootstrap-servers",
        help="Kafka bootstrap servers (default: KAFKA_BOOTSTRAP_SERVERS, else local broker)",
    )
    sub.add_argument("--topic", default=DEFAULT_TOPIC, help=f"topic (default {DEFAULT_TOPIC})")


LEDGER_HELP = (
    "the DuckDB ledger file, or a DuckLake: 'ducklake:postgres:<libpq connection string>' "
    "(docs/ducklake.md)"
)


def ledger_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--ledger", type=ledger_argument, required=True, help=LEDGER_HELP)


def ledger_argument(text: str) -> Path | LakeLocation:
    """An argument type: a ledger file's path, or a DuckLake location with the lake settings
    (DISCLOSURE_LEDGER_LAKE_DATA_PATH, _LAKE_LOCAL_PATH)."""
    if not is_lake(text):
        return Path(text)
    settings = load_settings()
    try:
        return parse_location(
            text,
            data_path=settings.lake_data_path,
            local_path=settings.lake_local_path or settings.state_dir / "ducklake" / "ledger",
        )
    except LedgerError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def ledger_location(args: argparse.Namespace) -> Path | LakeLocation:
    """What ``--ledger`` named: the file, or the lake (see :func:`split_ledger_location`)."""
    location: Path | LakeLocation = getattr(args, "ledger_location", None) or args.ledger
    return location


LAKE_COMMANDS = frozenset(
    {
        "consume",
        "serve",
        "service",
        "migrate",
        "status",
        "report",
        "verify",
        "query",
        "prove",
        "erase-subject",
        "quarantine",
        "notices",
        "users",
        "requests",
    }
)
"""The commands that open a DuckLake ledger so far (docs/ducklake.md, "Not yet"); ``users``
opens only the lake's shared account store (in its PostgreSQL database)."""


def split_ledger_location(args: argparse.Namespace) -> None:
    """After parsing: ``args.ledger_location`` is what ``--ledger`` named (a file or a lake),
    and ``args.ledger`` the path the files kept beside a ledger are named after (the file
    itself, or the lake's local path), as every command has always used it."""
    location = getattr(args, "ledger", None)
    args.ledger_location = location
    if isinstance(location, LakeLocation):
        command = getattr(args, "command", None)
        if command not in LAKE_COMMANDS:
            raise LedgerError(
                f"`{command}` does not take a DuckLake ledger yet ({location}): so far "
                f"{', '.join(sorted(LAKE_COMMANDS))} do (docs/ducklake.md); give a ledger file"
            )
        args.ledger = location.local_path


def bootstrap_servers(args: argparse.Namespace) -> str:
    """--bootstrap-servers, else KAFKA_BOOTSTRAP_SERVERS, else the local broker's address."""
    if getattr(args, "bootstrap_servers", None):
        return str(args.bootstrap_servers)
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        return str(settings.kafka_bootstrap_servers)
    return f"127.0.0.1:{settings.broker_port}"


def kafka_client() -> str:
    """The DISCLOSURE_LEDGER_KAFKA_CLIENT setting (auto, kafka-python or confluent-kafka),
    checked: an unknown name, or confluent-kafka when it is not installed, is refused here,
    before anything is opened."""
    from kafka_transport import resolve_client

    return resolve_client(load_settings().kafka_client)


def iso_date(text: str) -> date:
    """An argument type: a calendar date like 2026-11-01."""
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-01") from exc


def iso_datetime(text: str) -> datetime:
    """An argument type: a date or RFC 3339 time, taken as UTC when it names no zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or RFC 3339 time like 2026-11-01 or 2026-11-01T00:00:00Z"
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def open_output(path: Path | None) -> Iterator[TextIO]:
    """The named file, or standard output (which is left open)."""
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        yield out
