"""``requests``: the request register (open, verify-identity, extend, answer, deny, list,
show), on the ledger's request log or through the service (``--server``).

Each command is a thin call of :class:`reports.request_register.RequestRegister`; the
output is printed from the register's JSON (:mod:`reports.register_listing`), the same JSON
the service answers with, so a command prints the same either way.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from disclosure_ledger.commands.key_material import subject_secret
from disclosure_ledger.commands.options import add_command, iso_date, ledger_location
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    refuse_file_options,
    service_client,
)
from reports.register_listing import entry_json, entry_lines, listing_json, listing_lines
from reports.request_log import ReceivedVia, RequestKind
from reports.request_register import (
    DenialGround,
    Law,
    RequestRegister,
    Status,
    select_entries,
    sha256_of_file,
)

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from disclosure_ledger.service.client import LedgerClient


def register(commands: Subcommands) -> None:
    group = add_command(
        commands,
        "requests",
        run_requests,
        "The request register: consumer requests received, verified, extended, answered.",
    )
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, help_text: str, *, with_id: bool = True) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help_text, description=help_text)
        ledger_or_server_options(sub)
        sub.add_argument(
            "--request-log", type=Path, help="request log (default LEDGER.requests.sqlite)"
        )
        if with_id:
            sub.add_argument("request_id", metavar="ID", help="the request id `requests open` gave")
        return sub

    sub = action("open", "Record a request received; prints its id and deadline.", with_id=False)
    sub.add_argument(
        "--kind",
        required=True,
        choices=[k.value for k in RequestKind],
        help="know, access, delete, opt_out, or recipients (GDPR Art. 19)",
    )
    sub.add_argument(
        "--law",
        required=True,
        choices=[law.value for law in Law],
        help="ccpa: 45 days (+45 once); gdpr: one month (+2 months once)",
    )
    sub.add_argument(
        "--subject-type",
        choices=["member", "guest"],
        default="member",
        help="the kind of subject (default member)",
    )
    sub.add_argument("--subject-id", required=True, help="the id the person gave")
    sub.add_argument(
        "--received-on", type=iso_date, help="day the request was received (default today, UTC)"
    )
    sub.add_argument(
        "--via",
        choices=[v.value for v in ReceivedVia],
        default=ReceivedVia.web_form.value,
        help="how the request was received (default web_form)",
    )
    sub.add_argument("--by", help="who records it (default: the OS user, or the account)")

    sub = action("verify-identity", "Record how the requester's identity was verified.")
    sub.add_argument("--method", required=True, help="e.g. 'email code', 'ID document seen'")
    sub.add_argument("--by", help="who verified it (default: the OS user, or the account)")

    sub = action("extend", "Take the one extension (CCPA +45 days, GDPR +2 months).")
    sub.add_argument(
        "--notice-sent-on", type=iso_date, required=True, help="day the requester was told"
    )
    sub.add_argument("--reason", required=True, help="the reasons given to the requester")

    sub = action("answer", "Record the answer: its document's SHA-256 and where it is kept.")
    sub.add_argument("--document", type=Path, help="the answer document sent (hashed here)")
    sub.add_argument("--stored-at", help="where the document is kept (default: its path)")
    sub.add_argument("--in-part", action="store_true", help="complied with in part only")
    sub.add_argument("--detail", default="answered", help="what the answer gave")
    sub.add_argument("--erasure-id", help="a deletion request: the erasure that carried it out")
    sub.add_argument("--answered-on", type=iso_date, help="default today (UTC)")

    sub = action("deny", "Record the request as denied, with its ground and basis.")
    sub.add_argument(
        "--ground",
        choices=[g.value for g in DenialGround],
        default=DenialGround.other.value,
        help="the 11 CCR 7102 ground (default other)",
    )
    sub.add_argument("--basis", required=True, help="the basis given to the requester (7101)")
    sub.add_argument("--denied-on", type=iso_date, help="default today (UTC)")
    sub.add_argument("--document", type=Path, help="the denial notice sent (hashed here)")
    sub.add_argument("--stored-at", help="where the notice is kept (default: its path)")

    sub = action("list", "The register: overdue first, then by deadline.", with_id=False)
    sub.add_argument("--overdue", action="store_true", help="only requests past their deadline")
    sub.add_argument(
        "--due-within", type=int, metavar="DAYS", help="only open requests due within DAYS"
    )
    sub.add_argument(
        "--status", action="append", choices=[s.value for s in Status], help="repeatable"
    )
    sub.add_argument("--as-of", type=iso_date, help="the day to judge deadlines on (default today)")
    sub.add_argument(
        "--format", choices=["text", "json"], default="text", help="output (default text)"
    )

    sub = action("show", "One request, every step recorded.")
    sub.add_argument("--as-of", type=iso_date, help="the day to judge deadlines on (default today)")
    sub.add_argument(
        "--format", choices=["text", "json"], default="text", help="output (default text)"
    )


def _today() -> date:
    return datetime.now(UTC).date()


def _document(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The document's SHA-256 and where it is kept (default: its absolute path)."""
    path: Path | None = getattr(args, "document", None)
    if path is None:
        return None, args.stored_at
    return sha256_of_file(path), args.stored_at or path.resolve().as_uri()


def run_requests(args: argparse.Namespace) -> int:
    if args.action == "list" and args.due_within is not None and args.due_within < 0:
        from disclosure_ledger.errors import DisclosureLedgerError

        raise DisclosureLedgerError("--due-within takes a number of days, 0 or more")
    client = service_client(args)
    if client is not None:
        with client:
            refuse_file_options(args, "request_log")
            document = _through_service(args, client)
    else:
        document = _on_file(args)
    _print(args, document)
    return 0


def _print(args: argparse.Namespace, document: dict[str, Any]) -> None:
    if getattr(args, "format", "text") == "json":
        json.dump(document, sys.stdout, indent=2)
        print()
    elif args.action == "list":
        print("\n".join(listing_lines(document)))
    elif args.action == "open":
        print(
            f"request {document['request_id']} opened: {document['kind']} under "
            f"{document['law']}, received {document['received_on']} via "
            f"{document['received_via']}; deadline {document['deadline']}"
        )
        if document["identity_required"]:
            print("next: verify the requester's identity (`requests verify-identity`)")
    else:
        print("\n".join(entry_lines(document)))


def _on_file(args: argparse.Namespace) -> dict[str, Any]:
    from disclosure_ledger.errors import DisclosureLedgerError
    from reports.request_log import default_request_log

    path = args.request_log or default_request_log(ledger_location(args))
    if args.action != "open" and not path.exists():
        if args.action == "list":
            return listing_json([], args.as_of or _today())
        raise DisclosureLedgerError(
            f"no request log at {path}: open a request first (`requests open`), or give "
            "--request-log if it lives elsewhere"
        )
    me = getattr(args, "by", None) or getpass.getuser()
    with RequestRegister(path, subject_secret(args.ledger)) as register:
        if args.action == "open":
            entry = register.open_request(
                kind=RequestKind(args.kind),
                law=Law(args.law),
                subject_type=args.subject_type,
                subject_id=args.subject_id,
                received_on=args.received_on or _today(),
                received_via=ReceivedVia(args.via),
                opened_by=me,
            )
        elif args.action == "verify-identity":
            entry = register.verify_identity(args.request_id, method=args.method, verified_by=me)
        elif args.action == "extend":
            entry = register.extend(
                args.request_id, notice_sent_on=args.notice_sent_on, reason=args.reason
            )
        elif args.action == "answer":
            digest, stored_at = _document(args)
            entry = register.answer(
                args.request_id,
                answered_by=me,
                document_sha256=digest,
                stored_at=stored_at,
                response_detail=args.detail,
                in_part=args.in_part,
                erasure_id=args.erasure_id,
                answered_on=args.answered_on,
            )
        elif args.action == "deny":
            digest, stored_at = _document(args)
            entry = register.deny(
                args.request_id,
                ground=DenialGround(args.ground),
                basis=args.basis,
                denied_by=me,
                denied_on=args.denied_on,
                document_sha256=digest,
                stored_at=stored_at,
            )
        elif args.action == "list":
            day = args.as_of or _today()
            chosen = select_entries(
                register.register_entries(),
                as_of=day,
                overdue=args.overdue,
                due_within=args.due_within,
                statuses=tuple(Status(s) for s in args.status or ()),
            )
            return listing_json(chosen, day)
        else:
            entry = register.entry(args.request_id)
        return entry_json(entry, getattr(args, "as_of", None) or _today())


def _through_service(args: argparse.Namespace, client: LedgerClient) -> dict[str, Any]:
    def drop_none(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if v is not None}

    def day(value: date | None) -> str | None:
        return None if value is None else value.isoformat()

    path = f"/requests/{getattr(args, 'request_id', '')}"
    answer: dict[str, Any]
    if args.action == "open":
        answer = client.post_json(
            "/requests",
            drop_none(
                {
                    "kind": args.kind,
                    "law": args.law,
                    "subject_type": args.subject_type,
                    "subject_id": args.subject_id,
                    "received_on": day(args.received_on),
                    "received_via": args.via,
                }
            ),
        )
    elif args.action == "verify-identity":
        body = drop_none({"method": args.method, "verified_by": args.by})
        answer = client.post_json(path + "/identity", body)
    elif args.action == "extend":
        body = {"notice_sent_on": args.notice_sent_on.isoformat(), "reason": args.reason}
        answer = client.post_json(path + "/extension", body)
    elif args.action == "answer":
        digest, stored_at = _document(args)
        body = {
            "document_sha256": digest,
            "stored_at": stored_at,
            "in_part": args.in_part,
            "detail": args.detail,
            "erasure_id": args.erasure_id,
            "answered_on": day(args.answered_on),
        }
        answer = client.post_json(path + "/answer", drop_none(body))
    elif args.action == "deny":
        digest, stored_at = _document(args)
        body = {
            "ground": args.ground,
            "basis": args.basis,
            "denied_on": day(args.denied_on),
            "document_sha256": digest,
            "stored_at": stored_at,
        }
        answer = client.post_json(path + "/denial", drop_none(body))
    elif args.action == "list":
        params: dict[str, Any] = {"overdue": "true" if args.overdue else None}
        params |= {"due_within": args.due_within, "as_of": day(args.as_of)}
        params["status"] = ",".join(args.status) if args.status else None
        answer = client.get_json("/requests", drop_none(params))
    else:
        answer = client.get_json(path, drop_none({"as_of": day(args.as_of)}))
    return answer
