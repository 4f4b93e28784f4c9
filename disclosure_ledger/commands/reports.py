"""``report KIND``: the compliance reports, written as md, json, html or csv."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from disclosure_ledger.commands.key_material import subject_keys, subject_secret
from disclosure_ledger.commands.options import (
    add_command,
    iso_date,
    iso_datetime,
    ledger_location,
    open_output,
)
from disclosure_ledger.commands.server_options import (
    ledger_or_server_options,
    reason_option,
    service_client,
)
from disclosure_ledger.errors import DisclosureLedgerError
from ledger.key_check import KeyStoreAccess

if TYPE_CHECKING:
    from disclosure_ledger.commands.options import Subcommands
    from ledger.pseudonyms import SubjectKeyStore
    from ledger.store import Ledger
    from reports.request_log import RequestLog
    from reports.subject import SubjectReport

RECEIVED_VIA = (
    "web_form",
    "email",
    "toll_free_phone",
    "mail",
    "in_person",
    "authorized_agent",
    "other",
)


def register(commands: Subcommands) -> None:
    report = add_command(commands, "report", run_report, "Write a compliance report.")
    kinds = report.add_subparsers(dest="kind", required=True, metavar="KIND")

    def report_kind(name: str, help_text: str, *, as_of: bool = True) -> argparse.ArgumentParser:
        kind = kinds.add_parser(name, help=help_text, description=help_text)
        ledger_or_server_options(kind)
        if as_of:
            kind.add_argument(
                "--as-of", type=iso_datetime, required=True, help="end of the window, exclusive"
            )
        kind.add_argument(
            "--format",
            choices=["md", "json", "html", "csv"],
            default="md",
            help="output format (default md)",
        )
        kind.add_argument("--output", type=Path, help="file to write (default: standard output)")
        return kind

    kind = report_kind("ccpa", "CCPA 1798.130(a)(5)(C) lists for [as-of - 12 months, as-of).")
    _allow_incomplete_option(kind)
    for name, help_text in (
        ("conformance", "Undeclared flows and transfers without safeguard in the window."),
        ("transfers", "Disclosures outside the EEA with the safeguard in force (Art. 30)."),
    ):
        kind = report_kind(name, help_text)
        kind.add_argument("--since", type=iso_datetime, help="window start (default: 12 months)")
        _allow_incomplete_option(kind)
    kind = report_kind(
        "subject", "A consumer's request to know (1798.110/115, GDPR Art. 15(1)(c)); logged."
    )
    _subject_options(kind)
    kind.add_argument(
        "--since", type=iso_datetime, help="reach back beyond 12 months (not before 2022-01-01)"
    )
    kind.add_argument(
        "--with-proofs",
        action="store_true",
        help="add a proof bundle per row, and the person's subject key so they can recompute "
        "their pseudonym (json only; see docs/proofs.md for what this gives them)",
    )
    kind = report_kind(
        "recipients",
        "Every recipient of a person's data (GDPR Art. 19; logged), or with --notices-due "
        "the notices of erasures still due to recipients, and those sent.",
        as_of=False,
    )
    kind.add_argument(
        "--as-of", type=iso_datetime, help="end of the window, exclusive (with --subject-id)"
    )
    kind.add_argument(
        "--notices-due",
        action="store_true",
        help="instead of one person's recipients: for every erasure in the journal, each "
        "recipient of the subject's data not yet notified (GDPR Art. 19), with the erasure "
        "day and days due, and the notices sent; needs no subject",
    )
    _subject_options(kind, required=False)
    kind = report_kind(
        "requests", "11 CCR 7102 metrics of the request log for a calendar year.", as_of=False
    )
    kind.add_argument("--year", type=int, required=True, help="calendar year, e.g. 2026")
    kind.add_argument(
        "--request-log", type=Path, help="request log (default LEDGER.requests.sqlite)"
    )
    kind = report_kind(
        "access",
        "Every read of personal data recorded in the access log (who, role, when, what, the "
        "stated reason, rows returned); subjects as pseudonyms.",
        as_of=False,
    )
    kind.add_argument(
        "--since",
        type=iso_datetime,
        required=True,
        help="window start, included (UTC date or time)",
    )
    kind.add_argument("--until", type=iso_datetime, help="window end, excluded (default: now)")


def _allow_incomplete_option(kind: argparse.ArgumentParser) -> None:
    kind.add_argument(
        "--allow-incomplete",
        action="store_true",
        help="write the report even when its window ends after the ledger's coverage, "
        "marked provisional (without it such a window is refused, exit status 3)",
    )


def _subject_options(kind: argparse.ArgumentParser, *, required: bool = True) -> None:
    kind.add_argument("--subject-id", required=required, help="the id the person gave")
    reason_option(kind, "this person's data is read")
    kind.add_argument(
        "--subject-type",
        choices=["member", "guest"],
        default="member",
        help="the kind of subject (default member)",
    )
    kind.add_argument(
        "--key-store", type=Path, help="subject key store (default LEDGER.keys.sqlite)"
    )
    kind.add_argument(
        "--request-log", type=Path, help="request log (default LEDGER.requests.sqlite)"
    )
    kind.add_argument(
        "--received-on",
        type=iso_date,
        default=datetime.now(UTC).date(),
        help="day the request was received (default: today, UTC)",
    )
    kind.add_argument(
        "--received-via",
        choices=list(RECEIVED_VIA),
        default="web_form",
        help="how the request was received (default web_form)",
    )
    kind.add_argument(
        "--deny",
        metavar="BASIS",
        help="record the request as denied on this basis (e.g. identity not verified) "
        "and write the denial instead of the report",
    )
    kind.add_argument(
        "--request",
        metavar="REQUEST_ID",
        help="answer this open entry of the request register (`requests open`, identity "
        "verified): the answer, its SHA-256 and --output are recorded against it; without "
        "it the request is logged as received and answered at once",
    )
    kind.add_argument(
        "--reissue",
        metavar="REQUEST_ID",
        help="give again the answer to this logged request, which a late event changed "
        "(`report requests` lists them); recorded against it, not as a new request",
    )


def run_report(args: argparse.Namespace) -> int:
    from disclosure_ledger.commands.via_service import report_text
    from ledger.store import Ledger

    if args.kind == "recipients":
        _check_recipients_options(args)
    if getattr(args, "with_proofs", False) and (args.format != "json" or args.deny is not None):
        raise DisclosureLedgerError(
            "--with-proofs adds JSON proof bundles to an answer: give --format json, and "
            "leave it out with --deny (a denial lists no rows)"
        )
    client = service_client(args)
    if client is not None:
        with client:
            text = report_text(args, client)
    elif args.kind == "recipients" and args.notices_due:
        text = _notices_due_report(args)
    elif args.kind == "requests":
        text = _requests_report(args)
    else:
        with Ledger(ledger_location(args), read_only=True) as ledger:
            text = _REPORTS[args.kind](args, ledger)
    with open_output(args.output) as out:
        out.write(text)
    if args.output:
        print(f"{args.kind} report written to {args.output}")
    return 0


def _check_recipients_options(args: argparse.Namespace) -> None:
    """``report recipients``: one person's list (--subject-id, --as-of) or the notices due."""
    if args.notices_due:
        given = [
            "--" + name.replace("_", "-")
            for name in ("subject_id", "as_of", "deny", "reissue", "key_store", "request_log")
            if getattr(args, name, None) is not None
        ]
        if given:
            raise DisclosureLedgerError(
                "--notices-due lists every erasure's notices from the ledger's erasure "
                f"journal and takes no subject: leave out {', '.join(given)}"
            )
        return
    missing = [
        option
        for option, value in (("--subject-id", args.subject_id), ("--as-of", args.as_of))
        if value is None
    ]
    if missing:
        raise DisclosureLedgerError(
            f"report recipients needs {' and '.join(missing)} (one person's recipients), or "
            "--notices-due (the GDPR Art. 19 notices still due after erasures)"
        )


def _notices_due_report(args: argparse.Namespace) -> str:
    from ledger.store import Ledger
    from reports.erasure_notices import erasure_notices_report, render_notices

    with Ledger(ledger_location(args), read_only=True) as ledger:
        return render_notices(erasure_notices_report(ledger), args.format)


def _ccpa_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.ccpa import ccpa_report, render_ccpa

    report = ccpa_report(ledger, args.as_of, allow_incomplete=args.allow_incomplete)
    return render_ccpa(report, args.format)


def _conformance_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.conformance import conformance_report, render_conformance

    report = conformance_report(
        ledger, args.as_of, since=args.since, allow_incomplete=args.allow_incomplete
    )
    return render_conformance(report, args.format)


def _transfers_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.transfers import render_transfers, transfers_report

    report = transfers_report(
        ledger, args.as_of, since=args.since, allow_incomplete=args.allow_incomplete
    )
    return render_transfers(report, args.format)


def _subject_request(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.request_log import ReceivedVia, RequestKind, RequestLog, default_request_log
    from reports.subject import (
        answer_subject_request,
        deny_subject_request,
        recipients_report,
        reissue_subject_answer,
        render_denial,
        render_recipients,
        render_subject,
        subject_report,
    )

    log_path = args.request_log or default_request_log(ledger_location(args))
    subject = {"subject_type": args.subject_type, "subject_id": args.subject_id}
    # The key store checks the secret before the request log is opened: a wrong secret
    # records no request (:mod:`ledger.key_check`).
    with (
        subject_keys(
            ledger_location(args), args.key_store, access=KeyStoreAccess.read, ledger=ledger
        ) as keys,
        RequestLog(log_path, subject_secret(args.ledger, args.key_store)) as log,
    ):
        received_on, via = args.received_on, ReceivedVia(args.received_via)
        if args.request is not None:
            return _registered_answer(args, ledger, keys, log)
        if args.deny is not None:
            notice = deny_subject_request(
                log,
                kind=RequestKind.know if args.kind == "subject" else RequestKind.recipients,
                **subject,
                received_on=received_on,
                received_via=via,
                basis=args.deny,
            )
            return render_denial(notice, args.format)
        if args.kind == "subject":
            report = subject_report(ledger, keys, **subject, as_of=args.as_of, since=args.since)
            report = _with_proofs(args, ledger, keys, report)
            if args.reissue:
                report = reissue_subject_answer(report, log, request_id=args.reissue)
            else:
                report = answer_subject_request(
                    report, log, received_on=received_on, received_via=via
                )
            return render_subject(report, args.format)
        listed = recipients_report(ledger, keys, **subject, as_of=args.as_of)
        if args.reissue:
            listed = reissue_subject_answer(listed, log, request_id=args.reissue)
        else:
            listed = answer_subject_request(listed, log, received_on=received_on, received_via=via)
        return render_recipients(listed, args.format)


def _registered_answer(
    args: argparse.Namespace, ledger: Ledger, keys: SubjectKeyStore, log: RequestLog
) -> str:
    """``--request ID``: the report answers an open register entry, hashed once written."""
    import getpass

    from reports.request_log import RequestKind
    from reports.request_register import RequestRegister
    from reports.subject import (
        answer_registered_request,
        recipients_report,
        render_recipients,
        render_subject,
        subject_report,
    )

    if args.deny is not None or args.reissue is not None:
        raise DisclosureLedgerError(
            "--request answers an open register entry: deny it with `requests deny`, and "
            "re-issue an answer with --reissue alone"
        )
    subject = {"subject_type": args.subject_type, "subject_id": args.subject_id}
    kind = RequestKind.know if args.kind == "subject" else RequestKind.recipients
    with RequestRegister.over(log) as register:
        register.check_answerable(args.request, kind, **subject)  # before anything is read
        me = getpass.getuser()
        if args.kind == "subject":
            report = subject_report(ledger, keys, **subject, as_of=args.as_of, since=args.since)
            report = _with_proofs(args, ledger, keys, report)
            report = answer_registered_request(
                report, register, request_id=args.request, answered_by=me
            )
            text = render_subject(report, args.format)
        else:
            listed = recipients_report(ledger, keys, **subject, as_of=args.as_of)
            listed = answer_registered_request(
                listed, register, request_id=args.request, answered_by=me
            )
            text = render_recipients(listed, args.format)
        register.attach_answer(
            args.request,
            document_sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
            stored_at=None if args.output is None else args.output.resolve().as_uri(),
        )
    return text


def _with_proofs(
    args: argparse.Namespace, ledger: Ledger, keys: SubjectKeyStore, report: SubjectReport
) -> SubjectReport:
    """``--with-proofs``: the report with a bundle per row (:mod:`reports.subject.proofs`)."""
    if not args.with_proofs:
        return report
    from dataclasses import replace

    from reports.subject.proofs import subject_proofs

    return replace(report, proofs=subject_proofs(ledger, keys, report))


def _access_report(args: argparse.Namespace, ledger: Ledger) -> str:
    from reports.access import access_report, render_access

    report = access_report(ledger, since=args.since, until=args.until)
    return render_access(report, args.format)


def _requests_report(args: argparse.Namespace) -> str:
    from ledger.errors import LedgerLockedError
    from ledger.store import Ledger
    from reports.request_log import RequestLog, default_request_log
    from reports.request_metrics import render_requests, requests_report

    log_path = args.request_log or default_request_log(ledger_location(args))
    if not log_path.exists():
        raise DisclosureLedgerError(
            f"no request log at {log_path}: requests are logged by `report subject` and "
            "`report recipients`; give --request-log if it lives elsewhere"
        )
    with RequestLog(log_path, subject_secret(args.ledger)) as log:
        location = ledger_location(args)
        if isinstance(location, Path) and not location.exists():  # the metrics need only the log
            return render_requests(requests_report(log, args.year), args.format)
        try:
            with Ledger(location, read_only=True) as ledger:  # answers a late event changed
                report = requests_report(log, args.year, ledger=ledger)
        except LedgerLockedError as exc:
            print(
                f"warning: answers changed by late events since the last look are not "
                f"listed: {exc}",
                file=sys.stderr,
            )
            report = requests_report(log, args.year)
        return render_requests(report, args.format)


_REPORTS: dict[str, Callable[[argparse.Namespace, Ledger], str]] = {
    "ccpa": _ccpa_report,
    "conformance": _conformance_report,
    "transfers": _transfers_report,
    "subject": _subject_request,
    "recipients": _subject_request,
    "access": _access_report,
}
