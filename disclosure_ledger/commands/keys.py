"""Keys: ``keys generate`` (the checkpoint signing pair) and ``erase-subject``."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_keys, subject_secret
from disclosure_ledger.commands.options import add_command
from disclosure_ledger.commands.requests import forget_subject_in_request_log
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands, "keys", run_keys, "Generate the Ed25519 key pair that signs checkpoints."
    )
    sub.add_argument("action", choices=["generate"], help="write a new key pair")
    sub.add_argument("--private-key", type=Path, required=True, help="private key file to write")
    sub.add_argument("--public-key", type=Path, help="public key file (default PRIVATE.pub)")
    sub.add_argument("--force", action="store_true", help="replace existing key files")

    sub = add_command(
        commands,
        "erase-subject",
        run_erase_subject,
        "Destroy one subject's key (crypto-shredding) and record the erasure; a second person "
        "approves it (--approved-by on a ledger file; through --server, another admin).",
    )
    ledger_or_server_options(sub)
    reason_option(sub, "the subject is erased")
    sub.add_argument("--subject-id", required=True, help="the subject's raw id")
    sub.add_argument(
        "--subject-type", required=True, choices=["member", "guest"], help="the kind of subject"
    )
    sub.add_argument("--actor", help="who asked for the erasure (default: the OS user)")
    sub.add_argument(
        "--approved-by",
        metavar="NAME",
        help="on a ledger file (--ledger): the second person, not the actor, who approved "
        "this erasure; recorded in the erasure journal. Through --server another admin "
        "approves instead (`approvals approve ID`)",
    )
    sub.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    sub.add_argument(
        "--bootstrap-servers",
        help="the broker asked for the source topics' retention (default: "
        "KAFKA_BOOTSTRAP_SERVERS, else the local broker)",
    )
    sub.add_argument(
        "--dead-letter-topic",
        help="the dead-letter topic quarantined messages were copied to, if any (default "
        "DISCLOSURE_LEDGER_DEAD_LETTER_TOPIC)",
    )


def run_keys(args: argparse.Namespace) -> int:
    from ledger.checkpoints import generate_key_pair

    public = args.public_key or args.private_key.with_name(args.private_key.name + ".pub")
    key = generate_key_pair(args.private_key, public, overwrite=args.force)
    print(f"checkpoint signing key {key}: private key {args.private_key} (mode 0600), public key")
    print(f"{public}. Point DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE at the private key;")
    print("publish the public key with the checkpoint file; never put either in the ledger.")
    return 0


def run_erase_subject(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.options import bootstrap_servers
    from disclosure_ledger.commands.via_service import erase_subject as erase_through_service
    from disclosure_ledger.erasure_reach import outside_reach, subject_footprint
    from disclosure_ledger.service.answers.erasure import ErasureOutcome, erasure_lines
    from disclosure_ledger.settings import load_settings
    from ledger.erasure import erase_subject
    from ledger.key_check import KeyStoreAccess
    from ledger.store import Ledger

    client = service_client(args)
    if client is not None:
        with client:
            return erase_through_service(args, client)
    actor = args.actor or getpass.getuser()
    settings = load_settings()
    with Ledger(args.ledger) as ledger:  # a served ledger is named first: use --server
        approved_by = second_person(
            args.approved_by, actor, "erase-subject", "erasure", "recorded in the journal"
        )
        with subject_keys(
            args.ledger, args.key_store, access=KeyStoreAccess.erase, ledger=ledger
        ) as keys:
            held = keys.secrets_for(args.subject_type, args.subject_id)
            # read before the key is destroyed: the newest of its rows, its sealed quarantine
            footprint = subject_footprint(
                ledger,
                None if held is None else held.pseudonym,
                None if held is None else held.key_id,
            )
            erasure = erase_subject(
                ledger,
                keys,
                args.subject_type,
                args.subject_id,
                actor=actor,
                approved_by=approved_by,
            )
        statement = outside_reach(
            ledger,
            footprint,
            bootstrap_servers=bootstrap_servers(args),
            dead_letter_topic=args.dead_letter_topic or settings.dead_letter_topic,
            retention_days=settings.quarantine_retention_days,
        )
    watches = _forget_in_request_log(args.ledger, erasure.pseudonym)
    if erasure.erasure_id is not None:
        _keep_statement(args.ledger, erasure.erasure_id, statement.to_json())
    forget_subject_in_request_log(args.ledger, args.subject_type, args.subject_id)
    outcome = ErasureOutcome(
        erased=erasure.erased,
        subject_type=args.subject_type,
        erased_at=erasure.erased_at,
        ledger_rows=erasure.ledger_rows,
        request_log_links=watches,
        actor=actor,
        approved_by=approved_by,
        outside_reach=statement,
    )
    # Neither the id nor the pseudonym is printed: one beside the other would link them.
    for line in erasure_lines(outcome):
        print(line)
    return 0


def _keep_statement(ledger_path: Path, erasure_id: str, statement: dict[str, object]) -> None:
    """The request log keeps what the erasure could not reach, with the erasure."""
    from reports.request_log import RequestLog, default_request_log

    with RequestLog(default_request_log(ledger_path), subject_secret(ledger_path)) as log:
        log.record_erasure_statement(erasure_id, statement)


def _forget_in_request_log(ledger_path: Path, pseudonym: str | None) -> int:
    """Drop the request log's link (its sealed watch of earlier answers) to an erased subject.
    The log's own entries hold no subject; only the watch could lead back to the ledger."""
    from reports.request_log import RequestLog, default_request_log

    log_path = default_request_log(ledger_path)
    if pseudonym is None or not log_path.exists():
        return 0
    with RequestLog(log_path, subject_secret(ledger_path)) as log:
        return log.forget_pseudonym(pseudonym)


def second_person(approved_by: str | None, actor: str, command: str, act: str, kept: str) -> str:
    """``--approved-by``, checked: given, and not the actor (two people for an irreversible
    act, as the service requires a second admin)."""
    if approved_by is None or not approved_by.strip():
        raise DisclosureLedgerError(
            f"{command} on a ledger file needs --approved-by NAME: the second person, not "
            f"{actor}, who approved this {act} ({kept}); through the service "
            "(--server) another admin approves it instead"
        )
    if approved_by.strip() == actor.strip():
        raise DisclosureLedgerError(
            f"--approved-by {approved_by}: {actor} cannot approve their own {act}; name the "
            "second person who did"
        )
    return approved_by.strip()
