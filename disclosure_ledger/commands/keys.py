"""Keys: ``keys generate`` (the checkpoint signing pair), ``keys rotate`` (a new signing key
in force from a checkpoint on, in the key history: :mod:`ledger.key_history`) and
``erase-subject``."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_keys, subject_secret
from disclosure_ledger.commands.options import add_command, ledger_location
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from ledger.erasure import Erasure


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "keys",
        run_keys,
        "Generate the Ed25519 key pair that signs checkpoints, rotate to a new one, or print "
        "the verifier keys (C2SP note format) its checkpoint notes are checked with.",
    )
    sub.add_argument(
        "action",
        choices=["generate", "rotate", "verifier-key"],
        help="generate: write a new key pair (and PUBLIC.vkey, the log origin's verifier key, "
        "when the origin is known); rotate: put a new key in force after a checkpoint, "
        "recorded in the key history and signed by the key in force; verifier-key: print the "
        "verifier keys of the manifest (the log origin) and of chains",
    )
    sub.add_argument(
        "--private-key",
        type=Path,
        help="generate, rotate: private key file to write (rotate: the new key; written with "
        "PRIVATE.pub if it does not exist yet)",
    )
    sub.add_argument(
        "--public-key",
        type=Path,
        help="public key file (default PRIVATE.pub); verifier-key: the public key to print "
        "the verifier keys of",
    )
    sub.add_argument(
        "--origin",
        help="generate, verifier-key: the log origin the checkpoint notes are signed under "
        "(default DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN; verifier-key: else the one recorded "
        "in --ledger)",
    )
    sub.add_argument(
        "--chain",
        action="append",
        metavar="CHAIN",
        help="verifier-key: also print this chain's verifier key (repeatable; e.g. "
        "privacy.disclosures.v1/0). With --ledger and no --chain: every chain of the ledger",
    )
    sub.add_argument("--force", action="store_true", help="replace existing key files")
    sub.add_argument(
        "--ledger",
        type=Path,
        help="rotate: the ledger whose checkpoints the key signs; verifier-key: the ledger "
        "whose log origin and chains to print the verifier keys of",
    )
    sub.add_argument(
        "--checkpoints",
        type=Path,
        metavar="FILE",
        help="rotate: the checkpoint file (default LEDGER.checkpoints); the key history is "
        "FILE.keys",
    )
    sub.add_argument(
        "--old-private-key",
        type=Path,
        metavar="FILE",
        help="rotate: the private key in force, which signs the rotation (default "
        "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE)",
    )
    sub.add_argument(
        "--from-checkpoint",
        type=int,
        metavar="N",
        help="rotate: the last checkpoint the old key signs, numbered from 1 in the "
        "checkpoint file (default: its last)",
    )

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
    from disclosure_ledger.settings import load_settings
    from ledger.checkpoint_notes import check_origin
    from ledger.checkpoints import generate_key_pair, load_public_key
    from ledger.notes import verifier_key

    if args.action == "verifier-key":
        return run_verifier_key(args)
    if args.private_key is None:
        raise DisclosureLedgerError(f"keys {args.action} needs --private-key FILE")
    if args.chain:
        raise DisclosureLedgerError("--chain is for `keys verifier-key`")
    if args.action == "rotate":
        return run_rotate(args)
    rotate_only = [
        option
        for option in ("ledger", "checkpoints", "old_private_key", "from_checkpoint")
        if getattr(args, option) is not None
    ]
    if rotate_only:
        raise DisclosureLedgerError(
            f"--{rotate_only[0].replace('_', '-')} is for `keys rotate`, not `keys generate`"
        )
    public = args.public_key or args.private_key.with_name(args.private_key.name + ".pub")
    origin = args.origin or load_settings().checkpoint_origin
    if origin is not None:
        check_origin(origin, "--origin" if args.origin else "DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN")
    key = generate_key_pair(args.private_key, public, overwrite=args.force)
    print(f"checkpoint signing key {key}: private key {args.private_key} (mode 0600), public key")
    print(f"{public}. Point DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE at the private key;")
    print("publish the public key with the checkpoint file; never put either in the ledger.")
    if origin is None:
        print(
            "no log origin is set (DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN or --origin), so no "
            "verifier key was written: the ledger picks one at its first checkpoint; then "
            f"`disclosure-ledger keys verifier-key --public-key {public} --ledger LEDGER` "
            "prints the verifier keys of its manifest and chains"
        )
        return 0
    vkey_file = public.with_name(public.name + ".vkey")
    vkey = verifier_key(origin, load_public_key(public))
    vkey_file.write_text(vkey + "\n", encoding="utf-8")
    print(f"verifier key of the log origin {origin} (checks the signed manifests), in {vkey_file}:")
    print(vkey)
    print(
        "each chain's checkpoints are signed under <origin>/<chain>, with the same key: "
        "`keys verifier-key --public-key PUB --origin ORIGIN --chain CHAIN` prints its verifier "
        "key (chains appear with the topic's partitions)"
    )
    return 0


def run_verifier_key(args: argparse.Namespace) -> int:
    """``keys verifier-key``: the C2SP verifier keys (``<name>+<id>+<key>``) of the log
    origin (the manifest) and of chains, one a line, for ``note.NewVerifier`` and witnesses."""
    from disclosure_ledger.settings import load_settings
    from ledger.checkpoint_notes import chain_origin, check_origin, stored_origin
    from ledger.checkpoints import load_public_key
    from ledger.notes import verifier_key
    from ledger.store import Ledger

    if args.public_key is None:
        raise DisclosureLedgerError(
            "keys verifier-key needs --public-key FILE: the .pub file `keys generate` wrote"
        )
    public_key = load_public_key(args.public_key)
    chains: list[str] = list(args.chain or [])
    origin = args.origin
    if args.ledger is not None:
        with Ledger(args.ledger, read_only=True) as ledger:
            recorded = stored_origin(ledger.con)
            if not chains:
                chains = [
                    str(r[0])
                    for r in ledger.con.execute(
                        "SELECT DISTINCT chain_id FROM disclosures ORDER BY 1"
                    ).fetchall()
                ]
        if recorded is None:
            raise DisclosureLedgerError(
                f"{args.ledger} has no log origin yet: it is recorded with the first "
                "checkpoint (DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN, or a random one); give "
                "--origin, or run this after the first checkpoint"
            )
        if origin is not None and origin != recorded:
            raise DisclosureLedgerError(
                f"--origin {origin} is not the log origin of {args.ledger} ({recorded})"
            )
        origin = recorded
    origin = origin or load_settings().checkpoint_origin
    if origin is None:
        raise DisclosureLedgerError(
            "keys verifier-key needs the log origin: --origin ORIGIN, --ledger LEDGER or "
            "DISCLOSURE_LEDGER_CHECKPOINT_ORIGIN"
        )
    check_origin(origin, "the log origin")
    print(verifier_key(origin, public_key))
    for chain in chains:
        print(verifier_key(chain_origin(origin, chain), public_key))
    return 0


def run_rotate(args: argparse.Namespace) -> int:
    """``keys rotate``: refused while anything writes checkpoints to the ledger (a service
    or a consumer), since a checkpoint signed by the old key after the rotation point would
    fail verify; the service is restarted with the new key afterwards."""
    from disclosure_ledger.commands.key_material import signing_key
    from disclosure_ledger.service.state_file import read_service_state
    from ledger.checkpoints import (
        default_checkpoint_file,
        generate_key_pair,
        load_signing_key,
        read_checkpoint_file,
    )
    from ledger.errors import LedgerLockedError
    from ledger.key_history import key_history_file, rotate_key
    from ledger.store import Ledger

    if args.ledger is None:
        raise DisclosureLedgerError(
            "keys rotate needs --ledger PATH: the ledger whose checkpoints the key signs"
        )
    state = read_service_state(args.ledger)
    if state is not None:
        raise DisclosureLedgerError(
            f"a ledger service (process {state.pid}, {state.url}) signs checkpoints of "
            f"{args.ledger}: stop it, rotate, then start it with "
            "DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE pointing at the new key"
        )
    try:
        Ledger(args.ledger, read_only=True).close()  # no writer may sign meanwhile
    except LedgerLockedError as exc:
        raise DisclosureLedgerError(
            f"{exc}. Stop the process that writes to it (its checkpoints would be signed with "
            "the old key), then rotate"
        ) from exc
    if args.old_private_key is not None:
        old = load_signing_key(_read(args.old_private_key), str(args.old_private_key))
    else:
        old = signing_key()
    public = args.public_key or args.private_key.with_name(args.private_key.name + ".pub")
    generated = not args.private_key.exists()
    if generated:
        generate_key_pair(args.private_key, public)
    new = load_signing_key(_read(args.private_key), str(args.private_key))
    checkpoint_file = args.checkpoints or default_checkpoint_file(args.ledger)
    rotation = rotate_key(checkpoint_file, old, new, from_checkpoint=args.from_checkpoint)
    history = key_history_file(checkpoint_file)
    at = read_checkpoint_file(checkpoint_file)[rotation.checkpoint_number - 1].split(" ")[1]
    if generated:
        print(f"new checkpoint signing key {rotation.entry.key}: {args.private_key} (mode 0600)")
        print(f"and {public}")
    if rotation.started_history:
        print(f"started the key history {history} with the old key {rotation.entry.prev}")
    print(
        f"key {rotation.entry.key} is in force for every checkpoint after checkpoint "
        f"{rotation.checkpoint_number} ({at}); recorded in {history}, signed by the old key "
        f"{rotation.entry.prev} and by the new one"
    )
    print(
        "next: point DISCLOSURE_LEDGER_CHECKPOINT_SIGNING_KEY_FILE at the new private key and "
        "start the service; publish the key history with the checkpoint file (verify needs it "
        "for checkpoints signed before the rotation); keep the old private key offline or "
        "destroy it"
    )
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DisclosureLedgerError(f"cannot read the key file {path}: {exc}") from exc


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
    with Ledger(ledger_location(args)) as ledger:  # a served ledger is named first: use --server
        approved_by = second_person(
            args.approved_by, actor, "erase-subject", "erasure", "recorded in the journal"
        )
        with subject_keys(
            ledger_location(args), args.key_store, access=KeyStoreAccess.erase, ledger=ledger
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
    watches = _after_erasure_in_request_log(args, erasure, statement.to_json())
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


def _after_erasure_in_request_log(
    args: argparse.Namespace, erasure: Erasure, statement: dict[str, object]
) -> int:
    """The request log's part of an erasure (:meth:`RequestLog.after_erasure`); returns the
    earlier answers it no longer links to the subject. A log that does not exist is made
    only to keep the statement of a journalled erasure."""
    from reports.request_log import RequestLog, default_request_log

    log_path = default_request_log(ledger_location(args))
    if erasure.erasure_id is None and not log_path.exists():
        return 0
    with RequestLog(log_path, subject_secret(args.ledger)) as log:
        return log.after_erasure(
            args.subject_type,
            args.subject_id,
            pseudonym=erasure.pseudonym,
            erasure_id=erasure.erasure_id,
            statement=statement,
        )


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
