"""Reading one person's disclosures from the ledger, in one snapshot, as report values.

The person is found through the subject key store: their pseudonym is computed from the
raw id and looked up in the ledger, which never holds the raw id. When the key store holds
no key (never seen, or erased) the answer is that no data is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import duckdb

from ledger.derived import LETTERS, UNKNOWN_LETTER_BIT, letters_of, require_derived, subject_lookup
from ledger.store import Ledger
from reports.base import read_snapshot, requested_window
from reports.errors import ReportError
from reports.provenance import Provenance, aware, count_chains
from reports.registry import Registry, read_registry
from reports.subject.values import (
    LOOKBACK_FLOOR,
    NamedRecipient,
    PseudonymSource,
    RecipientDisclosed,
    RecipientsReport,
    SubjectCategory,
    SubjectReport,
)
from reports.vocabulary import CCPA_CATEGORY_NAMES
from reports.window import as_utc, naive_utc

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
    generated_at: datetime | None,
    what: str,
) -> tuple[_SubjectRows, Registry, Provenance]:
    require_derived(ledger)
    with read_snapshot(
        ledger,
        what,
        window_start=start,
        window_end=end,
        generated_at=generated_at,
        on_incomplete="cut",  # answered for the period the ledger covers, and says so
    ) as snapshot:
        cursor = snapshot.cursor
        rows: list[tuple[Any, ...]] = []
        data_categories: dict[tuple[str, str], set[str]] = {}
        unknown: tuple[str, ...] = ()
        if pseudonym is not None:
            params: dict[str, Any] = {
                "subject_type": subject_type,
                "start": naive_utc(start or datetime(1970, 1, 1, tzinfo=UTC)),
                "end": naive_utc(snapshot.window_end),
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
        source = snapshot.provenance(
            count_chains(
                (str(r[1]), int(r[7]), int(r[8]), int(r[9]), r[10], r[11], str(r[6]))
                for r in rows
                if r[0] == _PER_CHAIN
            )
        )
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
    start, end, clamped = requested_window(as_of, since, floor=LOOKBACK_FLOOR)
    pseudonym = keys.pseudonym(subject_type, subject_id)
    subject, registry, source = _read_subject(
        ledger, pseudonym, subject_type, start, end, generated_at, "subject report"
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
        pseudonym=pseudonym,
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
        ledger, pseudonym, subject_type, None, end, generated_at, "recipients report"
    )
    return RecipientsReport(
        source=source,
        subject_type=subject_type,
        subject_id=subject_id,
        data_held=pseudonym is not None,
        recipients=_recipients(subject, registry),
        pseudonym=pseudonym,
    )
