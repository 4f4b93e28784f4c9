"""``prove`` (a proof bundle of one row, or of two checkpoints' consistency) and
``verify-proof`` (check a bundle, or every bundle of a subject report, with no ledger)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disclosure_ledger.commands.options import add_command, ledger_location, open_output
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    require_reason,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from ledger.proof_check import BundleKey
    from ledger.proofs import Checked


def register(commands: Subcommands) -> None:
    sub = add_command(
        commands,
        "prove",
        run_prove,
        "Write a proof bundle anyone can check without the ledger: a row's inclusion "
        "(--event-id) or the consistency of two checkpoints of a chain (--chain --from --to).",
    )
    ledger_or_server_options(sub)
    sub.add_argument("--event-id", metavar="ID", help="the event whose row to prove")
    sub.add_argument("--chain", metavar="C", help="the chain (topic/partition) to prove")
    sub.add_argument(
        "--from", dest="from_size", type=int, metavar="N", help="the older checkpointed size"
    )
    sub.add_argument(
        "--to", dest="to_size", type=int, metavar="M", help="the newer checkpointed size"
    )
    sub.add_argument(
        "--out", type=Path, metavar="FILE", help="file to write (default: standard output)"
    )
    reason_option(sub, "this row is read (an inclusion bundle shows the row's fields)")

    sub = add_command(
        commands,
        "verify-proof",
        run_verify_proof,
        "Check a proof bundle (or every bundle of a subject report with proofs) with the "
        "ledger's public key alone; says which step fails.",
    )
    sub.add_argument(
        "bundle",
        type=Path,
        metavar="BUNDLE",
        help="a bundle `prove` wrote, or a subject report written with --with-proofs",
    )
    sub.add_argument(
        "--public-key",
        type=Path,
        required=True,
        metavar="FILE",
        help="the ledger's checkpoint public key: the .pub file `keys generate` wrote (PEM "
        "or hex), or its note verifier key file (<name>+<hex>+<base64>)",
    )
    sub.add_argument(
        "--subject-type",
        default="member",
        help="with --subject-id: the person's kind (default member)",
    )
    sub.add_argument(
        "--subject-id", help="also check that the row is about this person (with --subject-key)"
    )
    sub.add_argument(
        "--subject-key",
        metavar="HEX",
        help="the subject_key a subject report's proofs gave this person",
    )


# -- prove ----------------------------------------------------------------------------------
def _wanted(args: argparse.Namespace) -> str:
    """``event`` or ``consistency``, from which options were given."""
    consistency = [args.chain, args.from_size, args.to_size]
    if args.event_id is not None and not any(v is not None for v in consistency):
        return "event"
    if args.event_id is None and all(v is not None for v in consistency):
        return "consistency"
    raise DisclosureLedgerError(
        "prove needs --event-id ID (a row's inclusion) or --chain C --from N --to M (the "
        "consistency of two checkpoints of chain C), not both nor a part of the second"
    )


def run_prove(args: argparse.Namespace) -> int:
    wanted = _wanted(args)
    client = service_client(args)
    if client is not None:
        with client:
            if wanted == "event":
                reason = require_reason(args, "prove --event-id")
                bundle = client.get_json(f"/proofs/events/{args.event_id}", {"reason": reason})
            else:
                bundle = client.get_json(
                    "/proofs/consistency",
                    {"chain": args.chain, "from": args.from_size, "to": args.to_size},
                )
    else:
        from ledger.proofs import consistency_bundle, event_bundle
        from ledger.store import Ledger

        with Ledger(ledger_location(args), read_only=True) as ledger:
            if wanted == "event":
                bundle = event_bundle(ledger.con, args.event_id)
            else:
                bundle = consistency_bundle(ledger.con, args.chain, args.from_size, args.to_size)
    with open_output(args.out) as out:
        json.dump(bundle, out, indent=2, ensure_ascii=False)
        out.write("\n")
    if args.out is not None:
        print(f"{bundle['kind']} proof written to {args.out}", file=sys.stderr)
    return 0


# -- verify-proof ---------------------------------------------------------------------------
def run_verify_proof(args: argparse.Namespace) -> int:
    from ledger.proof_check import ProofFileError, read_bundle_key

    subject = [args.subject_id, args.subject_key]
    if any(v is not None for v in subject) and not all(v is not None for v in subject):
        raise DisclosureLedgerError(
            "--subject-id and --subject-key go together: give both (the id the person gave, "
            "and the subject_key of the report's proofs), or neither"
        )
    try:
        document = json.loads(args.bundle.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProofFileError(
            f"cannot read {args.bundle} as a proof bundle ({exc}); give the file "
            "`disclosure-ledger prove` wrote, or a subject report written with --with-proofs"
        ) from exc
    key = read_bundle_key(args.public_key)
    if isinstance(document, dict) and isinstance(document.get("proofs"), dict):
        return _verify_report(args, document, key)
    from ledger.proof_check import read_bundle

    bundle = read_bundle(args.bundle)  # the same file: its errors name what is wrong
    return _verify_one(args, bundle, key)


def _verify_one(args: argparse.Namespace, bundle: dict[str, Any], key: BundleKey) -> int:
    from ledger.proof_check import check_bundle, check_subject
    from ledger.proofs import CONSISTENCY_LIMITS, INCLUSION_LIMITS

    checked = check_bundle(bundle, key)
    if not checked.ok:
        return _failed(args.bundle, checked)
    print(f"verified: {checked.detail}")
    if args.subject_id is not None:
        about = check_subject(bundle, args.subject_type, args.subject_id, args.subject_key)
        if not about.ok:
            return _failed(args.bundle, about)
        print(f"verified: {about.detail}")
    limits = INCLUSION_LIMITS if bundle.get("kind") == "inclusion" else CONSISTENCY_LIMITS
    print(f"limits: {limits}")
    return 0


def _failed(source: Path | str, checked: Checked) -> int:
    print(f"FAIL {checked.step}: {source}: {checked.detail}", file=sys.stderr)
    return 1


def _verify_report(args: argparse.Namespace, report: dict[str, Any], key: BundleKey) -> int:
    """Every row of a subject report's proofs: its bundle, and that it is about the person
    the report names (with the subject key the report gives, or --subject-key)."""
    from ledger.proof_check import check_bundle, check_subject
    from ledger.proofs import Checked
    from reports.subject.proofs import SUBJECT_PROOFS_LIMITS

    proofs = report["proofs"]
    person = proofs.get("pseudonym") or {}
    subject_type = args.subject_type if args.subject_id else person.get("subject_type")
    subject_id = args.subject_id or person.get("subject_id")
    subject_key = args.subject_key or person.get("subject_key")
    failed = uncovered = 0
    rows = proofs.get("rows") or []
    for row in rows:
        where = f"{args.bundle} event {row.get('event_id')}"
        bundle = row.get("bundle")
        if bundle is None:
            uncovered += 1
            print(f"not covered: {where}: {row.get('not_covered')}")
            continue
        checked = check_bundle(bundle, key)
        if checked.ok and (bundle.get("leaf") or {}).get("event_id") != row.get("event_id"):
            checked = Checked(False, "leaf", "the bundle is of another event than its row")
        if checked.ok and subject_key is not None and subject_id is not None:
            checked = check_subject(bundle, str(subject_type), str(subject_id), str(subject_key))
        if not checked.ok:
            failed += _failed(where, checked)
            continue
        print(f"verified: {where}: {bundle['chain']} row {bundle['leaf_index'] + 1}")
    checked_rows = len(rows) - uncovered - failed
    about = (
        f", each about {subject_type} {subject_id}"
        if subject_key is not None and subject_id is not None
        else " (not checked to be about the person: the report gives no subject key)"
    )
    print(
        f"{checked_rows} of {len(rows)} rows verified{about}; {uncovered} not yet covered by "
        f"a signed checkpoint; {failed} failed"
    )
    print(f"limits: {SUBJECT_PROOFS_LIMITS}")
    return 1 if failed else 0
