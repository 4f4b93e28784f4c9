"""What was disclosed about one person: the request to know, and the GDPR Art. 19 list.

:func:`subject_report` answers a consumer's request to know (Cal. Civ. Code 1798.110 and
1798.115) and GDPR Art. 15(1)(c): for the window ``[as_of - 12 months, as_of)`` (or from
``since``, which may reach back no further than 2022-01-01, the CCPA's floor for a longer
lookback, and says so when clamped), the categories of personal information disclosed
about that person, for each its recipient categories and the named recipients (the actual
identities, as the CJEU requires in C-154/21, not only categories), with the dates of
first and last disclosure.

:func:`recipients_report` (GDPR Art. 19) lists every recipient that ever received that
person's data up to ``as_of``, with the data categories and the last date: the list to
notify of a rectification or erasure.

The person is found through the subject key store: their pseudonym is computed from the
raw id and looked up in the ledger, which never holds the raw id. The reports print the
raw id the person gave, never the pseudonym. When the key store holds no key (never
seen, or erased) the answer is that no data is held. Each answer is recorded in the
request log (:mod:`reports.request_log`) by :func:`answer_subject_request`.

JSON shapes (fields are only ever added)::

    subject-report/1
    {
      "report": "subject-report/1", "generated_at": ..., "as_of": ...,
      "window": {"start": ..., "end": ...}, "source": {...},      # as in ccpa-report/1
      "subject": {"type": "member", "id": "member-0000042"},
      "lookback": {"since_requested": "2019-01-01T00:00:00Z" | null, "clamped": true,
                   "floor": "2022-01-01T00:00:00Z"},
      "data_held": true,                 # false: no key for this person (none, or erased)
      "request": {"request_id": ..., "kind": "know", "received_on": "2026-11-01",
                  "received_via": "web_form", "responded_on": "2026-11-02",
                  "response": "complied", "number_in_12_months": 3,
                  "beyond_statutory_obligation": true} | null,
      "categories": [                    # sorted by letter
        {"letter": "A", "name": "Identifiers",
         "disclosure_kinds": ["business_purpose"],
         "recipient_categories": ["payment_provider"],
         "recipients": [{"recipient_id": "escalion", "name": "Escalion S.à r.l.",
                         "events": 12, "first_disclosed": ..., "last_disclosed": ...}],
         "events": 12, "first_disclosed": ..., "last_disclosed": ...}
      ],
      "recipients": [                    # sorted by category, then id
        {"recipient_id": "escalion", "name": "Escalion S.à r.l.", "registered": true,
         "recipient_category": "payment_provider", "country": "LU",
         "letters": ["B", "D"], "data_categories": ["user.payment", ...],
         "events": 12, "first_disclosed": ..., "last_disclosed": ...}
      ]
    }

    recipients-report/1
    { "report": "recipients-report/1", ..., "window": {"start": null, "end": ...},
      "subject": {...}, "data_held": true, "request": {...} | null,
      "recipients": [ {"recipient_id", "name", "registered", "recipient_category",
                       "role", "address", "country", "data_categories", "letters",
                       "events", "first_disclosed", "last_disclosed"} ] }
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar

import duckdb

from ledger.derived import (
    LETTERS,
    UNKNOWN_LETTER_BIT,
    letters_of,
    require_derived,
    subject_lookup,
)
from ledger.store import Ledger
from reports.document import (
    Document,
    Section,
    Table,
    and_list,
    provenance_meta,
    render_csv,
    render_report,
)
from reports.errors import ReportError
from reports.provenance import (
    Provenance,
    aware,
    count_chains,
    provenance_from_counts,
    provenance_json,
    rfc3339,
    window_json,
)
from reports.registry import Registry, read_registry
from reports.request_log import LoggedRequest, ReceivedVia, RequestKind, RequestLog, Response
from reports.vocabulary import CCPA_CATEGORY_NAMES, recipient_phrase
from reports.window import as_utc, clamp_since, naive_utc, report_window

SUBJECT_JSON_VERSION = "subject-report/1"
RECIPIENTS_JSON_VERSION = "recipients-report/1"
LOOKBACK_FLOOR = datetime(2022, 1, 1, tzinfo=UTC)
"""A request to know may reach back beyond 12 months only to data of 2022-01-01 on."""


class PseudonymSource(Protocol):
    """What the reports need of the subject key store (``ledger.pseudonyms.SubjectKeyStore``)."""

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None: ...


@dataclass(frozen=True)
class NamedRecipient:
    """A recipient of one category of the person's data, with its dates for that category."""

    recipient_id: str
    name: str
    recipient_category: str
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class SubjectCategory:
    letter: str
    name: str
    disclosure_kinds: tuple[str, ...]
    recipient_categories: tuple[str, ...]
    recipients: tuple[NamedRecipient, ...]
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class RecipientDisclosed:
    recipient_id: str
    name: str
    registered: bool
    recipient_category: str
    role: str | None
    address: str | None
    country: str | None
    letters: tuple[str, ...]
    data_categories: tuple[str, ...]
    events: int
    first_disclosed: datetime
    last_disclosed: datetime


@dataclass(frozen=True)
class SubjectReport:
    source: Provenance
    subject_type: str
    subject_id: str
    data_held: bool
    since_requested: datetime | None
    since_clamped: bool
    categories: tuple[SubjectCategory, ...]
    recipients: tuple[RecipientDisclosed, ...]
    request: LoggedRequest | None = None


@dataclass(frozen=True)
class RecipientsReport:
    source: Provenance
    subject_type: str
    subject_id: str
    data_held: bool
    recipients: tuple[RecipientDisclosed, ...]
    request: LoggedRequest | None = None


# -- reading the subject's rows -----------------------------------------------------------
# The person's rows are found by their subject_key (ledger.derived), a fixed-width column
# scanned in a few milliseconds, and their pseudonym (exact, read only where the key
# matched). A person with many rows (a heavy subject) is read instead from
# heavy_subject_rows, where their rows sit together, sorted by key. One query groups those
# rows three ways (the first column says which): per chain and reference version
# (_PER_CHAIN, for the provenance: rows, seq range, times), per what the report tells apart
# (_PER_GROUP: recipient, kind, letters, reference version), which Python merges per
# recipient and per letter, and per recipient (_PER_RECIPIENT, its data categories).
_PER_CHAIN, _PER_GROUP, _PER_RECIPIENT = 3, 4, 5  # GROUPING(chain_id, recipient_id, kind)
_GROUPED = """
SELECT GROUPING(chain_id, recipient_id, disclosure_kind), chain_id, recipient_id,
       recipient_category, disclosure_kind, ccpa_mask, reference_version,
       count(*), min(seq), max(seq), min(occurred_at), max(occurred_at),
       CASE WHEN GROUPING(chain_id, recipient_id, disclosure_kind) = 5
            THEN list_distinct(flatten(list(data_categories))) END
FROM {source}
WHERE subject_key = $key AND {pseudonym}subject_type = $subject_type
  AND occurred_at >= $start AND occurred_at < $end
GROUP BY GROUPING SETS (
    (chain_id, reference_version),
    (recipient_id, recipient_category, disclosure_kind, ccpa_mask, reference_version),
    (recipient_id, recipient_category)
)
"""
_SUBJECT_SQL = _GROUPED.format(
    source="disclosures", pseudonym="subject_pseudonym = $pseudonym AND "
)
# A heavy subject's rows are many, and cheap to read twice: the data categories per
# recipient come from a second query, by distinct list (a list per recipient costs more).
_HEAVY_WHERE = """
WHERE subject_key = $key AND subject_type = $subject_type
  AND occurred_at >= $start AND occurred_at < $end
"""
_HEAVY_SUBJECT_SQL = f"""
SELECT GROUPING(chain_id, recipient_id, disclosure_kind), chain_id, recipient_id,
       recipient_category, disclosure_kind, ccpa_mask, reference_version,
       count(*), min(seq), max(seq), min(occurred_at), max(occurred_at), NULL
FROM heavy_subject_rows {_HEAVY_WHERE}
GROUP BY GROUPING SETS (
    (chain_id, reference_version),
    (recipient_id, recipient_category, disclosure_kind, ccpa_mask, reference_version)
)
"""
_HEAVY_DATA_CATEGORIES_SQL = f"""
SELECT data_categories, list(DISTINCT recipient_category || chr(0) || recipient_id)
FROM heavy_subject_rows {_HEAVY_WHERE}
GROUP BY data_categories
"""
_UNKNOWN_LETTERS_SQL = f"""
SELECT DISTINCT letter FROM (
    SELECT unnest(ccpa_letters) AS letter FROM disclosures
    WHERE subject_key = $key AND subject_pseudonym = $pseudonym
      AND subject_type = $subject_type AND occurred_at >= $start AND occurred_at < $end
      AND (ccpa_mask >> {UNKNOWN_LETTER_BIT}) & 1 = 1
) WHERE length(letter) <> 1 OR instr('{LETTERS}', letter) = 0
"""


def _subject_rows(
    cursor: duckdb.DuckDBPyConnection, pseudonym: str, params: dict[str, Any]
) -> tuple[list[tuple[Any, ...]], dict[tuple[str, str], set[str]]]:
    """The person's rows in the window, grouped (see ``_GROUPED``), letters as masks, and
    the data categories per recipient (category, id)."""
    key, heavy = subject_lookup(cursor, pseudonym)
    if not heavy:
        rows = cursor.execute(
            _SUBJECT_SQL, {**params, "key": key, "pseudonym": pseudonym}
        ).fetchall()
        return rows, {(str(r[3]), str(r[2])): set(r[12]) for r in rows if r[0] == _PER_RECIPIENT}
    rows = cursor.execute(_HEAVY_SUBJECT_SQL, {**params, "key": key}).fetchall()
    data_categories: dict[tuple[str, str], set[str]] = {}
    for categories, recipients in cursor.execute(
        _HEAVY_DATA_CATEGORIES_SQL, {**params, "key": key}
    ).fetchall():
        for recipient in recipients:
            category, _, rid = recipient.partition("\x00")
            data_categories.setdefault((category, rid), set()).update(categories)
    return rows, data_categories


@dataclass(frozen=True)
class _Group:
    recipient_id: str
    recipient_category: str
    kind: str
    letters: tuple[str, ...]
    reference_version: str
    events: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class _SubjectRows:
    groups: list[_Group]
    data_categories: dict[tuple[str, str], set[str]]  # per (recipient category, id)


def _read_subject(
    ledger: Ledger,
    pseudonym: str | None,
    subject_type: str,
    start: datetime | None,
    end: datetime,
    as_of: datetime,
    generated_at: datetime | None,
    what: str,
) -> tuple[_SubjectRows, Registry, Provenance]:
    require_derived(ledger)
    cursor = ledger.con.cursor()
    try:
        cursor.execute("SET enable_progress_bar = false")
        cursor.execute("BEGIN TRANSACTION")
        rows: list[tuple[Any, ...]] = []
        data_categories: dict[tuple[str, str], set[str]] = {}
        unknown: tuple[str, ...] = ()
        if pseudonym is not None:
            params: dict[str, Any] = {
                "subject_type": subject_type,
                "start": naive_utc(start or datetime(1970, 1, 1, tzinfo=UTC)),
                "end": naive_utc(end),
            }
            rows, data_categories = _subject_rows(cursor, pseudonym, params)
            if any(r[0] == _PER_GROUP and r[5] >> UNKNOWN_LETTER_BIT & 1 for r in rows):
                key, _ = subject_lookup(cursor, pseudonym)
                unknown = tuple(
                    str(u[0])
                    for u in cursor.execute(
                        _UNKNOWN_LETTERS_SQL, {**params, "key": key, "pseudonym": pseudonym}
                    ).fetchall()
                )
        groups = [
            _Group(
                str(r[2]),
                str(r[3]),
                str(r[4]),
                letters_of(r[5]) + (unknown if r[5] >> UNKNOWN_LETTER_BIT & 1 else ()),
                str(r[6]),
                int(r[7]),
                _at(r[10]),
                _at(r[11]),
            )
            for r in rows
            if r[0] == _PER_GROUP
        ]
        subject = _SubjectRows(groups, data_categories)
        registry = read_registry(cursor)  # a few hundred entries: cheaper whole than sifted
        source = provenance_from_counts(
            cursor,
            count_chains(
                (str(r[1]), int(r[7]), int(r[8]), int(r[9]), r[10], r[11], str(r[6]))
                for r in rows
                if r[0] == _PER_CHAIN
            ),
            as_of=as_of,
            window_start=start,
            window_end=end,
            generated_at=generated_at or datetime.now(UTC),
        )
        cursor.execute("COMMIT")
    except duckdb.Error as exc:
        raise ReportError(f"cannot compute the {what} from ledger {ledger.path}: {exc}") from exc
    finally:
        cursor.close()
    return subject, registry, source


def _at(value: datetime) -> datetime:
    moment = aware(value)
    assert moment is not None
    return moment


def _recipients(subject: _SubjectRows, registry: Registry) -> tuple[RecipientDisclosed, ...]:
    merged: dict[tuple[str, str], _Merged] = {}
    latest: dict[tuple[str, str], _Group] = {}  # the group disclosed last (the first such)
    for g in subject.groups:
        key = (g.recipient_category, g.recipient_id)
        merged.setdefault(key, _Merged(g.first, g.last)).add(g)
        if key not in latest or g.last > latest[key].last:
            latest[key] = g
    out = []
    for (category, rid), m in sorted(merged.items()):
        last = latest[(category, rid)]
        entry = registry.at(rid, last.reference_version, last.last)
        out.append(
            RecipientDisclosed(
                recipient_id=rid,
                name=rid if entry is None else entry.legal_name,
                registered=entry is not None,
                recipient_category=category,
                role=None if entry is None else entry.role,
                address=None if entry is None else entry.address,
                country=None if entry is None else entry.country,
                letters=tuple(sorted(m.letters)),
                data_categories=tuple(sorted(subject.data_categories[(category, rid)])),
                events=m.events,
                first_disclosed=m.first,
                last_disclosed=m.last,
            )
        )
    return tuple(out)


@dataclass
class _Merged:
    """Groups merged: events, first and last disclosure, and what they name."""

    first: datetime
    last: datetime
    events: int = 0
    letters: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    recipient_categories: set[str] = field(default_factory=set)
    # per recipient (category, id): [events, first, last]
    recipients: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def add(self, g: _Group) -> None:
        self.events += g.events
        self.first = min(self.first, g.first)
        self.last = max(self.last, g.last)
        self.letters.update(g.letters)


def _categories(
    groups: Sequence[_Group], recipients: Sequence[RecipientDisclosed]
) -> tuple[SubjectCategory, ...]:
    names = {(r.recipient_category, r.recipient_id): r.name for r in recipients}
    by_letter: dict[str, _Merged] = {}
    for g in groups:
        key = (g.recipient_category, g.recipient_id)
        for letter in g.letters:
            m = by_letter.get(letter)
            if m is None:
                m = by_letter[letter] = _Merged(g.first, g.last)
            m.events += g.events
            m.first = min(m.first, g.first)
            m.last = max(m.last, g.last)
            m.kinds.add(g.kind)
            m.recipient_categories.add(g.recipient_category)
            r = m.recipients.get(key)
            if r is None:
                m.recipients[key] = [g.events, g.first, g.last]
                continue
            r[0] += g.events
            if g.first < r[1]:
                r[1] = g.first
            if g.last > r[2]:
                r[2] = g.last
    out = []
    for letter, m in sorted(by_letter.items()):
        name = CCPA_CATEGORY_NAMES.get(letter)
        if name is None:
            raise ReportError(
                f"the ledger holds rows classified with CCPA letter {letter!r}, which is not "
                f"one of {', '.join(CCPA_CATEGORY_NAMES)}"
            )
        out.append(
            SubjectCategory(
                letter=letter,
                name=name,
                disclosure_kinds=tuple(sorted(m.kinds)),
                recipient_categories=tuple(sorted(m.recipient_categories)),
                recipients=tuple(  # positional: thousands for a person with many recipients
                    NamedRecipient(rid, names[(category, rid)], category, events, first, last)
                    for (category, rid), (events, first, last) in sorted(m.recipients.items())
                ),
                events=m.events,
                first_disclosed=m.first,
                last_disclosed=m.last,
            )
        )
    return tuple(out)


def subject_report(
    ledger: Ledger,
    keys: PseudonymSource,
    *,
    subject_type: str,
    subject_id: str,
    as_of: date | datetime,
    since: date | datetime | None = None,
    generated_at: datetime | None = None,
) -> SubjectReport:
    """The request-to-know answer for one person (see module doc)."""
    start, end = report_window(as_of)
    start, clamped = clamp_since(since, start, LOOKBACK_FLOOR)
    if start >= end:
        raise ReportError(f"--since {rfc3339(start)} must be before --as-of {rfc3339(end)}")
    pseudonym = keys.pseudonym(subject_type, subject_id)
    subject, registry, source = _read_subject(
        ledger, pseudonym, subject_type, start, end, end, generated_at, "subject report"
    )
    recipients = _recipients(subject, registry)
    return SubjectReport(
        source=source,
        subject_type=subject_type,
        subject_id=subject_id,
        data_held=pseudonym is not None,
        since_requested=None if since is None else as_utc(since),
        since_clamped=clamped,
        categories=_categories(subject.groups, recipients),
        recipients=recipients,
    )


def recipients_report(
    ledger: Ledger,
    keys: PseudonymSource,
    *,
    subject_type: str,
    subject_id: str,
    as_of: date | datetime,
    generated_at: datetime | None = None,
) -> RecipientsReport:
    """Every recipient of this person's data up to ``as_of`` (GDPR Art. 19)."""
    end = as_utc(as_of)
    pseudonym = keys.pseudonym(subject_type, subject_id)
    subject, registry, source = _read_subject(
        ledger, pseudonym, subject_type, None, end, end, generated_at, "recipients report"
    )
    return RecipientsReport(
        source=source,
        subject_type=subject_type,
        subject_id=subject_id,
        data_held=pseudonym is not None,
        recipients=_recipients(subject, registry),
    )


# -- answering and logging ------------------------------------------------------------------
def _response_detail(report: SubjectReport | RecipientsReport) -> tuple[Response, str]:
    if not report.data_held:
        return Response.complied, "no data held about the consumer (no subject key)"
    if isinstance(report, SubjectReport):
        detail = (
            f"{len(report.categories)} categories and {len(report.recipients)} recipients "
            f"disclosed, {report.source.events_counted} disclosures, window "
            f"{rfc3339(report.source.window_start)} to {rfc3339(report.source.window_end)}"
        )
        if report.since_clamped:
            return (
                Response.complied_in_part,
                detail + f"; lookback asked from {rfc3339(report.since_requested)} clamped "
                f"to {LOOKBACK_FLOOR:%Y-%m-%d}",
            )
        return Response.complied, detail
    return (
        Response.complied,
        f"{len(report.recipients)} recipients listed, {report.source.events_counted} "
        f"disclosures up to {rfc3339(report.source.window_end)}",
    )


Answered = TypeVar("Answered", SubjectReport, RecipientsReport)


def answer_subject_request(
    report: Answered,
    log: RequestLog,
    *,
    received_on: date,
    received_via: ReceivedVia,
) -> Answered:
    """Record the answer in the request log; returns the report with the logged request."""
    kind = RequestKind.know if isinstance(report, SubjectReport) else RequestKind.recipients
    response, detail = _response_detail(report)
    logged = log.record(
        kind=kind,
        subject_type=report.subject_type,
        subject_id=report.subject_id,
        received_on=received_on,
        received_via=received_via,
        responded_on=report.source.generated_at.date(),
        response=response,
        response_detail=detail,
        recorded_at=report.source.generated_at,
    )
    return replace(report, request=logged)


# -- rendering ------------------------------------------------------------------------------
def _request_json(request: LoggedRequest | None) -> dict[str, Any] | None:
    if request is None:
        return None
    return {
        "request_id": request.request_id,
        "kind": request.kind.value,
        "received_on": request.received_on.isoformat(),
        "received_via": request.received_via.value,
        "responded_on": None if request.responded_on is None else request.responded_on.isoformat(),
        "response": request.response.value,
        "number_in_12_months": request.number_in_12_months,
        "beyond_statutory_obligation": request.beyond_statutory_obligation,
    }


def _recipient_json(r: RecipientDisclosed, *, full: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "recipient_id": r.recipient_id,
        "name": r.name,
        "registered": r.registered,
        "recipient_category": r.recipient_category,
    }
    if full:
        data["role"] = r.role
        data["address"] = r.address
    data["country"] = r.country
    data["letters"] = list(r.letters)
    data["data_categories"] = list(r.data_categories)
    data["events"] = r.events
    data["first_disclosed"] = rfc3339(r.first_disclosed)
    data["last_disclosed"] = rfc3339(r.last_disclosed)
    return data


def subject_json(report: SubjectReport) -> dict[str, Any]:
    return {
        "report": SUBJECT_JSON_VERSION,
        "generated_at": rfc3339(report.source.generated_at),
        "as_of": rfc3339(report.source.as_of),
        "window": window_json(report.source),
        "source": provenance_json(report.source),
        "subject": {"type": report.subject_type, "id": report.subject_id},
        "lookback": {
            "since_requested": rfc3339(report.since_requested),
            "clamped": report.since_clamped,
            "floor": rfc3339(LOOKBACK_FLOOR),
        },
        "data_held": report.data_held,
        "request": _request_json(report.request),
        "categories": [
            {
                "letter": c.letter,
                "name": c.name,
                "disclosure_kinds": list(c.disclosure_kinds),
                "recipient_categories": list(c.recipient_categories),
                "recipients": [
                    {
                        "recipient_id": r.recipient_id,
                        "name": r.name,
                        "events": r.events,
                        "first_disclosed": rfc3339(r.first_disclosed),
                        "last_disclosed": rfc3339(r.last_disclosed),
                    }
                    for r in c.recipients
                ],
                "events": c.events,
                "first_disclosed": rfc3339(c.first_disclosed),
                "last_disclosed": rfc3339(c.last_disclosed),
            }
            for c in report.categories
        ],
        "recipients": [_recipient_json(r, full=False) for r in report.recipients],
    }


def recipients_json(report: RecipientsReport) -> dict[str, Any]:
    return {
        "report": RECIPIENTS_JSON_VERSION,
        "generated_at": rfc3339(report.source.generated_at),
        "as_of": rfc3339(report.source.as_of),
        "window": window_json(report.source),
        "source": provenance_json(report.source),
        "subject": {"type": report.subject_type, "id": report.subject_id},
        "data_held": report.data_held,
        "request": _request_json(report.request),
        "recipients": [_recipient_json(r, full=True) for r in report.recipients],
    }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%B %Y}"


def _request_section(request: LoggedRequest | None) -> Section | None:
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
    window = f"{_day(s.window_start)} up to {_day(s.window_end)} (excluded)"
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
            _request_section(report.request),
            Section(
                heading="Categories of personal information disclosed",
                paragraphs=(intro, *lookback),
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
    if not report.data_held:
        intro = (
            f"We hold no record of disclosures about {report.subject_type} {report.subject_id}: "
            "the ledger has no key for this identifier (never seen, or erased)."
        )
    elif not report.recipients:
        intro = (
            f"No recipient received personal data about {report.subject_type} "
            f"{report.subject_id} up to {_day(s.window_end)}."
        )
    else:
        intro = (
            f"Up to {_day(s.window_end)}, personal data about {report.subject_type} "
            f"{report.subject_id} was disclosed to {_count(len(report.recipients), 'recipient')}; "
            "each is to be told of a rectification or erasure (GDPR Art. 19)."
        )
    sections = [
        section
        for section in (
            _request_section(report.request),
            Section(
                heading="Recipients to notify",
                paragraphs=(intro,),
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


def _request_meta(
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
        *_request_meta(report.request, report.subject_type, report.subject_id, report.data_held),
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
        *_request_meta(report.request, report.subject_type, report.subject_id, report.data_held),
    ]
    return render_csv(RECIPIENTS_JSON_VERSION, meta, RECIPIENTS_CSV_HEADERS, rows)


def render_subject(report: SubjectReport, fmt: str) -> str:
    return render_report(
        fmt,
        name="subject",
        as_json=lambda: subject_json(report),
        as_document=lambda: subject_document(report),
        as_csv=lambda: subject_csv(report),
    )


def render_recipients(report: RecipientsReport, fmt: str) -> str:
    return render_report(
        fmt,
        name="recipients",
        as_json=lambda: recipients_json(report),
        as_document=lambda: recipients_document(report),
        as_csv=lambda: recipients_csv(report),
    )


# -- a request denied -------------------------------------------------------------------------
DENIAL_JSON_VERSION = "request-denial/1"


@dataclass(frozen=True)
class DenialNotice:
    """A request recorded as denied (e.g. the requester's identity could not be verified).

    Nothing is read from the ledger: a denied request discloses nothing. JSON shape
    ``request-denial/1``: ``{"report", "generated_at", "subject": {"type", "id"},
    "request": {...as in subject-report/1...}, "denial_basis"}``.
    """

    subject_type: str
    subject_id: str
    generated_at: datetime
    request: LoggedRequest

    @property
    def basis(self) -> str:
        return self.request.denial_basis or ""


def deny_subject_request(
    log: RequestLog,
    *,
    kind: RequestKind,
    subject_type: str,
    subject_id: str,
    received_on: date,
    received_via: ReceivedVia,
    basis: str,
    generated_at: datetime | None = None,
) -> DenialNotice:
    """Record a request as denied, with its basis (11 CCR 7101(a))."""
    if not basis.strip():
        raise ReportError("a denial must state its basis (11 CCR 7101(a)); give --deny BASIS")
    moment = (generated_at or datetime.now(UTC)).astimezone(UTC)
    logged = log.record(
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        received_on=received_on,
        received_via=received_via,
        responded_on=moment.date(),
        response=Response.denied,
        response_detail="denied: " + basis,
        denial_basis=basis,
        recorded_at=moment,
    )
    return DenialNotice(subject_type, subject_id, moment, logged)


def render_denial(notice: DenialNotice, fmt: str) -> str:
    what = (
        "request to know"
        if notice.request.kind is RequestKind.know
        else "request for the recipients"
    )
    return render_report(
        fmt,
        name="denial",
        as_json=lambda: {
            "report": DENIAL_JSON_VERSION,
            "generated_at": rfc3339(notice.generated_at),
            "subject": {"type": notice.subject_type, "id": notice.subject_id},
            "request": _request_json(notice.request),
            "denial_basis": notice.basis,
        },
        as_document=lambda: Document(
            title=f"Your {what} ({notice.subject_type} {notice.subject_id})",
            basis="Cal. Civ. Code 1798.130, 11 CCR 7101 (record of the response).",
            sections=tuple(
                s
                for s in (
                    _request_section(notice.request),
                    Section(
                        heading="Our response",
                        paragraphs=(
                            f"We cannot answer your {what}: {notice.basis}",
                            "No personal information was disclosed in this response.",
                        ),
                        section_id="response",
                    ),
                )
                if s is not None
            ),
            provenance=None,
            source_lines=(f"Generated at: {rfc3339(notice.generated_at)}.",),
        ),
        as_csv=lambda: render_csv(
            DENIAL_JSON_VERSION,
            [
                ("generated_at", rfc3339(notice.generated_at) or ""),
                *_request_meta(notice.request, notice.subject_type, notice.subject_id, False),
            ],
            ("request_id", "kind", "received_on", "responded_on", "response", "denial_basis"),
            [
                (
                    notice.request.request_id,
                    notice.request.kind.value,
                    notice.request.received_on.isoformat(),
                    notice.generated_at.date().isoformat(),
                    notice.request.response.value,
                    notice.basis,
                )
            ],
        ),
    )
