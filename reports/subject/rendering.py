"""A subject's answers written as JSON, Markdown, HTML or CSV (the JSON contracts are in
:mod:`reports.contracts`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, overload

from reports.base import ReportFormats
from reports.contracts import (
    Lookback,
    NamedRecipientJson,
    RecipientJson,
    RecipientsReportJson,
    RequestJson,
    SubjectCategoryJson,
    SubjectJson,
    SubjectProofsJson,
    SubjectRecipientJson,
    SubjectReportJson,
)
from reports.coverage import answered_nothing, moment_text, unanswered_sentence
from reports.document import (
    Document,
    Section,
    Table,
    and_list,
    provenance_meta,
    render_csv,
)
from reports.errors import ReportError
from reports.provenance import ledger_report_fields, rfc3339
from reports.request_log import LoggedRequest
from reports.subject.values import (
    LOOKBACK_FLOOR,
    RECIPIENTS_JSON_VERSION,
    SUBJECT_JSON_VERSION,
    NamedRecipient,
    RecipientDisclosed,
    RecipientsReport,
    SubjectReport,
)
from reports.vocabulary import recipient_phrase


@overload
def request_contract(request: LoggedRequest) -> RequestJson: ...
@overload
def request_contract(request: None) -> None: ...
@overload
def request_contract(request: LoggedRequest | None) -> RequestJson | None: ...
def request_contract(request: LoggedRequest | None) -> RequestJson | None:
    if request is None:
        return None
    return RequestJson(
        request_id=request.request_id,
        kind=request.kind,
        received_on=request.received_on.isoformat(),
        received_via=request.received_via,
        responded_on=None if request.responded_on is None else request.responded_on.isoformat(),
        response=request.response,
        number_in_12_months=request.number_in_12_months,
        beyond_statutory_obligation=request.beyond_statutory_obligation,
    )


def subject_contract(report: SubjectReport) -> SubjectReportJson:
    return SubjectReportJson(
        report=SUBJECT_JSON_VERSION,
        **ledger_report_fields(report.source),
        subject=SubjectJson(type=report.subject_type, id=report.subject_id),
        lookback=Lookback(
            since_requested=rfc3339(report.since_requested),
            clamped=report.since_clamped,
            floor=rfc3339(LOOKBACK_FLOOR),
        ),
        data_held=report.data_held,
        request=request_contract(report.request),
        categories=[
            SubjectCategoryJson(
                letter=c.letter,
                name=c.name,
                disclosure_kinds=list(c.disclosure_kinds),
                recipient_categories=list(c.recipient_categories),
                recipients=[
                    NamedRecipientJson(
                        recipient_id=r.recipient_id,
                        name=r.name,
                        events=r.events,
                        first_disclosed=rfc3339(r.first_disclosed),
                        last_disclosed=rfc3339(r.last_disclosed),
                    )
                    for r in c.recipients
                ],
                events=c.events,
                first_disclosed=rfc3339(c.first_disclosed),
                last_disclosed=rfc3339(c.last_disclosed),
            )
            for c in report.categories
        ],
        recipients=[
            SubjectRecipientJson(**_recipient_fields(r, with_role_and_address=False))
            for r in report.recipients
        ],
        proofs=None if report.proofs is None else SubjectProofsJson.model_validate(report.proofs),
    )


def subject_json(report: SubjectReport) -> dict[str, Any]:
    return subject_contract(report).model_dump(mode="json")


def recipients_contract(report: RecipientsReport) -> RecipientsReportJson:
    return RecipientsReportJson(
        report=RECIPIENTS_JSON_VERSION,
        **ledger_report_fields(report.source),
        subject=SubjectJson(type=report.subject_type, id=report.subject_id),
        data_held=report.data_held,
        request=request_contract(report.request),
        recipients=[RecipientJson(**_recipient_fields(r)) for r in report.recipients],
    )


def _recipient_fields(
    r: RecipientDisclosed, *, with_role_and_address: bool = True
) -> dict[str, Any]:
    """A recipient's fields in contract order; the request to know omits role and address."""
    role_and_address = {"role": r.role, "address": r.address} if with_role_and_address else {}
    return {
        "recipient_id": r.recipient_id,
        "name": r.name,
        "registered": r.registered,
        "recipient_category": r.recipient_category,
        **role_and_address,
        "country": r.country,
        "letters": list(r.letters),
        "data_categories": list(r.data_categories),
        "events": r.events,
        "first_disclosed": rfc3339(r.first_disclosed),
        "last_disclosed": rfc3339(r.last_disclosed),
    }


def recipients_json(report: RecipientsReport) -> dict[str, Any]:
    return recipients_contract(report).model_dump(mode="json")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def request_section(request: LoggedRequest | None) -> Section | None:
    if request is None:
        return None
    notice = None
    if request.beyond_statutory_obligation:
        notice = (
            f"This is request number {request.number_in_12_months} from this consumer "
            "within 12 months: it is answered, but beyond the statutory obligation to "
            "answer a request to know twice in 12 months (Cal. Civ. Code 1798.130(b))."
        )
    return Section(
        heading="Your request",
        notice=notice,
        items=(
            f"Request id: {request.request_id}",
            f"Received on {request.received_on.isoformat()} by "
            f"{request.received_via.value.replace('_', ' ')}",
            f"Answered on {request.responded_on.isoformat() if request.responded_on else '-'}"
            f" ({request.response.value.replace('_', ' ')})",
            f"Requests of this kind from you within 12 months, this one included: "
            f"{request.number_in_12_months}",
        ),
        section_id="request",
    )


def _recipients_cell(recipients: Sequence[NamedRecipient]) -> str:
    """Registered recipients by name; the others (each broadcaster has its own platform id)
    counted per category, since the recipient list names every one of them."""
    named = [r.name for r in recipients if r.name != r.recipient_id]
    counted: dict[str, int] = {}
    for r in recipients:
        if r.name == r.recipient_id:
            counted[r.recipient_category] = counted.get(r.recipient_category, 0) + 1
    named += [
        f"{n} {recipient_phrase(category)} (by platform id, listed below)"
        for category, n in sorted(counted.items())
    ]
    return "; ".join(named)


def _recipient_label(r: RecipientDisclosed) -> str:
    if r.registered:
        return r.name if r.name == r.recipient_id else f"{r.name} ({r.recipient_id})"
    return f"{r.recipient_id} (platform id)"


def subject_document(report: SubjectReport) -> Document:
    s = report.source
    assert s.window_start is not None
    window = f"{_day(s.window_start)} up to {moment_text(s.window_end)} (excluded)"
    nothing_covered = answered_nothing(s.coverage, s.window_start)
    uncovered = unanswered_sentence(s.coverage, s.window_start)
    lookback = []
    if report.since_clamped and report.since_requested is not None:
        lookback.append(
            f"You asked for disclosures from {_day(report.since_requested)}; the law provides "
            f"for a lookback to data from {_day(LOOKBACK_FLOOR)} on, so this answer starts "
            "there."
        )
    if not report.data_held:
        intro = (
            f"We hold no record of disclosures of personal information about {report.subject_type} "
            f"{report.subject_id}: the ledger has no key for this identifier (it was never seen, "
            "or its data was erased)."
        )
    elif nothing_covered and uncovered:  # never "we did not disclose" of uncovered time
        intro = uncovered
    elif not report.categories:
        intro = (
            f"From {window} we did not disclose personal information about "
            f"{report.subject_type} {report.subject_id}."
        )
    else:
        parts = [
            f"{c.name} ({c.letter}) to "
            + and_list([recipient_phrase(x) for x in c.recipient_categories])
            for c in report.categories
        ]
        intro = (
            f"From {window} we disclosed the following categories of personal information "
            f"about {report.subject_type} {report.subject_id}: {'; '.join(parts)}."
        )
    sections = [
        section
        for section in (
            request_section(report.request),
            Section(
                heading="Categories of personal information disclosed",
                paragraphs=(
                    intro,
                    *(() if nothing_covered or not uncovered else (uncovered,)),
                    *lookback,
                ),
                table=Table(
                    (
                        "Category",
                        "Disclosed as",
                        "Recipient categories",
                        "Recipients",
                        "First disclosed",
                        "Last disclosed",
                        "Events",
                    ),
                    tuple(
                        (
                            f"{c.name} ({c.letter})",
                            ", ".join(k.replace("_", " ") for k in c.disclosure_kinds),
                            ", ".join(recipient_phrase(x) for x in c.recipient_categories),
                            _recipients_cell(c.recipients),
                            f"{c.first_disclosed:%Y-%m-%d}",
                            f"{c.last_disclosed:%Y-%m-%d}",
                            str(c.events),
                        )
                        for c in report.categories
                    ),
                    (False, False, False, False, False, False, True),
                )
                if report.categories
                else None,
                section_id="categories",
            ),
            Section(
                heading="Recipients (GDPR Art. 15(1)(c))",
                paragraphs=(
                    "The recipients by name; a recipient the platform addresses by its own "
                    "id (a broadcaster) is named by that id."
                    if report.recipients
                    else "The ledger cannot yet answer for this period."
                    if nothing_covered
                    else "No recipient received personal information about you in this period.",
                ),
                items=tuple(
                    f"{_recipient_label(r)}: {recipient_phrase(r.recipient_category)}"
                    f"{', ' + r.country if r.country else ''}; categories "
                    f"{', '.join(r.letters)}; first {r.first_disclosed:%Y-%m-%d}, last "
                    f"{r.last_disclosed:%Y-%m-%d}"
                    for r in report.recipients
                ),
                section_id="recipients",
            ),
        )
        if section is not None
    ]
    return Document(
        title=f"Personal information disclosed about {report.subject_type} {report.subject_id}",
        basis=(
            "Your request to know, Cal. Civ. Code 1798.110 and 1798.115, and GDPR Art. "
            f"15(1)(c), as of {rfc3339(s.as_of)}."
        ),
        sections=tuple(sections),
        provenance=s,
        provenance_notes=(
            "Disclosures are found by the keyed pseudonym of your identifier; the ledger "
            "never holds the identifier itself.",
        ),
    )


def recipients_document(report: RecipientsReport) -> Document:
    s = report.source
    uncovered = unanswered_sentence(s.coverage, s.window_start)
    if not report.data_held:
        intro = (
            f"We hold no record of disclosures about {report.subject_type} {report.subject_id}: "
            "the ledger has no key for this identifier (never seen, or erased)."
        )
    elif answered_nothing(s.coverage, s.window_start) and uncovered:
        intro, uncovered = uncovered, None
    elif not report.recipients:
        intro = (
            f"No recipient received personal data about {report.subject_type} "
            f"{report.subject_id} up to {moment_text(s.window_end)}."
        )
    else:
        intro = (
            f"Up to {moment_text(s.window_end)}, personal data about {report.subject_type} "
            f"{report.subject_id} was disclosed to {_count(len(report.recipients), 'recipient')}; "
            "each is to be told of a rectification or erasure (GDPR Art. 19)."
        )
    sections = [
        section
        for section in (
            request_section(report.request),
            Section(
                heading="Recipients to notify",
                paragraphs=(intro,) if uncovered is None else (intro, uncovered),
                table=Table(
                    (
                        "Recipient",
                        "Category",
                        "Role",
                        "Address",
                        "Country",
                        "Data categories",
                        "Last disclosed",
                    ),
                    tuple(
                        (
                            _recipient_label(r),
                            recipient_phrase(r.recipient_category),
                            (r.role or "-").replace("_", " "),
                            r.address or "-",
                            r.country or "-",
                            ", ".join(r.data_categories),
                            f"{r.last_disclosed:%Y-%m-%d}",
                        )
                        for r in report.recipients
                    ),
                )
                if report.recipients
                else None,
                section_id="recipients",
            ),
        )
        if section is not None
    ]
    return Document(
        title=f"Recipients of personal data about {report.subject_type} {report.subject_id}",
        basis=f"GDPR Art. 19 (notification of rectification or erasure), as of {rfc3339(s.as_of)}.",
        sections=tuple(sections),
        provenance=s,
    )


SUBJECT_CSV_HEADERS = (
    "letter",
    "name",
    "disclosure_kinds",
    "recipient_category",
    "recipient_id",
    "recipient_name",
    "events",
    "first_disclosed",
    "last_disclosed",
)


def request_meta(
    request: LoggedRequest | None, subject_type: str, subject_id: str, data_held: bool
) -> list[tuple[str, str]]:
    meta = [
        ("subject_type", subject_type),
        ("subject_id", subject_id),
        ("data_held", "true" if data_held else "false"),
    ]
    if request is not None:
        meta += [
            ("request_id", request.request_id),
            ("received_on", request.received_on.isoformat()),
            ("received_via", request.received_via.value),
            ("number_in_12_months", str(request.number_in_12_months)),
            (
                "beyond_statutory_obligation",
                "true" if request.beyond_statutory_obligation else "false",
            ),
        ]
    return meta


def subject_csv(report: SubjectReport) -> str:
    """One row per category and recipient, with that recipient's dates for that category."""
    rows = [
        (
            c.letter,
            c.name,
            c.disclosure_kinds,
            r.recipient_category,
            r.recipient_id,
            r.name,
            r.events,
            rfc3339(r.first_disclosed),
            rfc3339(r.last_disclosed),
        )
        for c in report.categories
        for r in c.recipients
    ]
    meta = [
        *provenance_meta(report.source),
        *request_meta(report.request, report.subject_type, report.subject_id, report.data_held),
        ("since_clamped", "true" if report.since_clamped else "false"),
    ]
    return render_csv(SUBJECT_JSON_VERSION, meta, SUBJECT_CSV_HEADERS, rows)


RECIPIENTS_CSV_HEADERS = (
    "recipient_id",
    "name",
    "registered",
    "recipient_category",
    "role",
    "address",
    "country",
    "letters",
    "data_categories",
    "events",
    "first_disclosed",
    "last_disclosed",
)


def recipients_csv(report: RecipientsReport) -> str:
    rows = [
        (
            r.recipient_id,
            r.name,
            r.registered,
            r.recipient_category,
            r.role,
            r.address,
            r.country,
            r.letters,
            r.data_categories,
            r.events,
            rfc3339(r.first_disclosed),
            rfc3339(r.last_disclosed),
        )
        for r in report.recipients
    ]
    meta = [
        *provenance_meta(report.source),
        *request_meta(report.request, report.subject_type, report.subject_id, report.data_held),
    ]
    return render_csv(RECIPIENTS_JSON_VERSION, meta, RECIPIENTS_CSV_HEADERS, rows)


def render_subject(report: SubjectReport, fmt: str) -> str:
    if report.proofs is not None and fmt != "json":
        raise ReportError(
            f"a subject report with proofs is written as json, not {fmt}: the proof bundles "
            "are JSON documents that verify-proof and other tools check; give --format json"
        )
    return SUBJECT_REPORT_FORMATS.render(report, fmt)


def render_recipients(report: RecipientsReport, fmt: str) -> str:
    return RECIPIENTS_REPORT_FORMATS.render(report, fmt)


SUBJECT_REPORT_FORMATS: ReportFormats[SubjectReport] = ReportFormats(
    "subject", subject_contract, subject_document, subject_csv
)
RECIPIENTS_REPORT_FORMATS: ReportFormats[RecipientsReport] = ReportFormats(
    "recipients", recipients_contract, recipients_document, recipients_csv
)
