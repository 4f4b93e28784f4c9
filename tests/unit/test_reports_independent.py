"""The reports recomputed from the raw simulated events, not from the ledger, and compared.

The fixed ledger (``tests/unit/golden/fixed_ledger.py``) is built from simulated events
through the real ingest pipeline. Here the same events are classified again directly with
``reference.classify_event`` and counted in plain Python, by raw subject id rather
than pseudonym, and the CCPA, subject, recipients, conformance and transfers reports
computed from the ledger must agree with that count, category for category.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData, classify_event
from reports.ccpa import CcpaReport, ccpa_report
from reports.conformance import conformance_report
from reports.subject import recipients_report, subject_report
from reports.transfers import transfers_report
from reports.window import report_window
from schemas.model import DisclosureEvent
from tests.unit.golden.fixed_ledger import (
    AS_OF,
    HEAVY_SUBJECT,
    SECRET,
    UNSAFE_SUBJECT,
    FixedLedger,
    build_fixed_ledger,
)

START, END = report_window(AS_OF)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> FixedLedger:
    return build_fixed_ledger(tmp_path_factory.mktemp("independent"), reference)


@pytest.fixture(scope="module")
def ccpa(fixed: FixedLedger) -> CcpaReport:
    with Ledger(fixed.path, read_only=True) as ledger:
        return ccpa_report(ledger, AS_OF)


@dataclass
class Tally:
    events: int = 0
    subjects: set[tuple[str, str]] = field(default_factory=set)
    recipient_categories: set[str] = field(default_factory=set)
    recipients: set[str] = field(default_factory=set)
    purposes: set[str] = field(default_factory=set)
    kinds: set[str] = field(default_factory=set)
    letters: set[str] = field(default_factory=set)
    data_categories: set[str] = field(default_factory=set)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, event: DisclosureEvent, letters: set[str], purpose: str) -> None:
        self.events += 1
        self.subjects.add((event.subject.type.value, event.subject.id))
        self.recipient_categories.add(event.recipient.category.value)
        self.recipients.add(event.recipient.id)
        self.purposes.add(purpose)
        self.kinds.add(event.disclosure_kind.value)
        self.letters |= letters
        self.data_categories |= set(event.data_categories)
        at = event.occurred_at.astimezone(UTC)
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)


def _in_window(event: DisclosureEvent) -> bool:
    return START <= event.occurred_at < END


def test_ccpa_report_equals_a_count_of_the_raw_events(
    fixed: FixedLedger, ccpa: CcpaReport, reference: ReferenceData
) -> None:
    expected: dict[tuple[bool, str], Tally] = defaultdict(Tally)
    for event in filter(_in_window, fixed.events):
        c = classify_event(reference, event)
        for letter in set(c.ccpa_letters):
            key = (event.disclosure_kind.value == "business_purpose", letter)
            expected[key].add(event, {letter}, c.business_purpose)
    assert expected, "the fixed events must fall in the window"

    got = {(True, c.letter): c for c in ccpa.business_purpose}
    got |= {(False, c.letter): c for c in ccpa.sold_or_shared}
    assert set(got) == set(expected)
    for key, tally in expected.items():
        category = got[key]
        assert category.events == tally.events, key
        assert category.distinct_subjects == len(tally.subjects), key
        assert set(category.recipient_categories) == tally.recipient_categories, key
        if key[0]:
            assert {p.number for p in category.business_purposes} == tally.purposes, key
        else:
            assert set(category.disclosure_kinds) == tally.kinds, key
    assert ccpa.events_counted == sum(1 for _ in filter(_in_window, fixed.events))


def test_monthly_volume_equals_the_raw_events(fixed: FixedLedger, ccpa: CcpaReport) -> None:
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for event in filter(_in_window, fixed.events):
        month = f"{event.occurred_at.astimezone(UTC):%Y-%m}"
        expected[(event.recipient.category.value, month)] += 1
    got = {
        (category, month): value
        for category, values in ccpa.monthly.by_recipient_category
        for month, value in zip(ccpa.monthly.months, values, strict=True)
        if value
    }
    assert got == dict(expected)
    assert len(ccpa.monthly.months) == 12


def _subject_events(fixed: FixedLedger, subject: tuple[str, str]) -> list[DisclosureEvent]:
    return [
        e
        for e in fixed.events
        if (e.subject.type.value, e.subject.id) == subject and e.occurred_at < END
    ]


def test_subject_report_equals_the_raw_events_of_that_person(
    fixed: FixedLedger, reference: ReferenceData
) -> None:
    mine = _subject_events(fixed, HEAVY_SUBJECT)
    assert len(mine) > 50, "the heavy subject must have many events"
    by_letter: dict[str, Tally] = defaultdict(Tally)
    by_recipient: dict[str, Tally] = defaultdict(Tally)
    for event in mine:
        c = classify_event(reference, event)
        for letter in set(c.ccpa_letters):
            by_letter[letter].add(event, {letter}, c.business_purpose)
        by_recipient[event.recipient.id].add(event, set(c.ccpa_letters), c.business_purpose)

    with (
        Ledger(fixed.path, read_only=True) as ledger,
        SubjectKeyStore(fixed.key_store, SECRET) as keys,
    ):
        report = subject_report(
            ledger,
            keys,
            subject_type=HEAVY_SUBJECT[0],
            subject_id=HEAVY_SUBJECT[1],
            as_of=AS_OF,
            since=datetime(2022, 1, 1, tzinfo=UTC),  # everything the fixed ledger holds
        )
    assert report.data_held and not report.since_clamped
    assert {c.letter for c in report.categories} == set(by_letter)
    for category in report.categories:
        tally = by_letter[category.letter]
        assert category.events == tally.events
        assert set(category.recipient_categories) == tally.recipient_categories
        assert {r.recipient_id for r in category.recipients} == tally.recipients
        assert (category.first_disclosed, category.last_disclosed) == (tally.first, tally.last)
    assert {r.recipient_id for r in report.recipients} == set(by_recipient)
    for recipient in report.recipients:
        tally = by_recipient[recipient.recipient_id]
        assert recipient.events == tally.events
        assert set(recipient.letters) == tally.letters
        assert set(recipient.data_categories) == tally.data_categories
        assert (recipient.first_disclosed, recipient.last_disclosed) == (tally.first, tally.last)
        assert tally.last is not None
        entry = reference.recipient_at(recipient.recipient_id, int(tally.last.timestamp() * 1000))
        assert recipient.name == (recipient.recipient_id if entry is None else entry.legal_name)
    assert report.source.events_counted == len(mine)


def test_recipients_report_equals_the_raw_events(
    fixed: FixedLedger, reference: ReferenceData
) -> None:
    mine = _subject_events(fixed, UNSAFE_SUBJECT)
    with (
        Ledger(fixed.path, read_only=True) as ledger,
        SubjectKeyStore(fixed.key_store, SECRET) as keys,
    ):
        report = recipients_report(
            ledger, keys, subject_type=UNSAFE_SUBJECT[0], subject_id=UNSAFE_SUBJECT[1], as_of=AS_OF
        )
    assert [(r.recipient_id, r.events) for r in report.recipients] == [
        ("survey-provider", len(mine))
    ]
    (only,) = report.recipients
    assert only.role == "third_party" and only.country == "US"
    assert only.last_disclosed == max(e.occurred_at for e in mine)


def test_conformance_and_transfers_equal_the_raw_flags(
    fixed: FixedLedger, reference: ReferenceData
) -> None:
    window = [e for e in fixed.events if _in_window(e)]
    flagged = [(e, classify_event(reference, e)) for e in window]
    undeclared = [e for e, c in flagged if "undeclared_flow" in c.flags]
    unsafe = [e for e, c in flagged if "transfer_without_safeguard" in c.flags]
    outside = [(e, c) for e, c in flagged if c.recipient_eea is False]
    with Ledger(fixed.path, read_only=True) as ledger:
        conformance = conformance_report(ledger, AS_OF)
        transfers = transfers_report(ledger, AS_OF)
    assert conformance.undeclared_events == len(undeclared) > 0
    assert sum(f.events for f in conformance.undeclared_flows) == len(undeclared)
    assert conformance.unsafe_transfer_events == len(unsafe) == 3
    assert transfers.transfer_events == len(outside)
    assert transfers.without_safeguard_events == len(unsafe)
    by_safeguard: dict[tuple[str, str], int] = defaultdict(int)
    for event, c in outside:
        safeguard = "none" if c.safeguard is None else c.safeguard.value
        by_safeguard[(event.recipient.id, safeguard)] += 1
    assert {(t.recipient_id, t.safeguard): t.events for t in transfers.transfers} == dict(
        by_safeguard
    )
    assert transfers.transfers[0].safeguard_missing
