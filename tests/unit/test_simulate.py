"""The simulator: deterministic, time-ordered, declared by default, valid events."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from disclosure_ledger.simulate import PRODUCERS, is_undeclared, simulate
from reference import ReferenceData, classify_event, load_reference
from schemas.model import DisclosureEvent, SubjectType

START = datetime(2025, 11, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def ref() -> ReferenceData:
    return load_reference()


@pytest.fixture(scope="module")
def year(ref: ReferenceData) -> list[DisclosureEvent]:
    """Declared traffic of a few thousand events over twelve months."""
    return list(simulate(3000, 2026, START, END, reference=ref))


def lines(events: int, seed: int, ref: ReferenceData, **kwargs: float) -> list[str]:
    return [e.to_json_line() for e in simulate(events, seed, START, END, reference=ref, **kwargs)]


def test_same_seed_same_bytes(ref: ReferenceData) -> None:
    first = lines(500, 7, ref, undeclared_rate=0.2)
    assert first == lines(500, 7, ref, undeclared_rate=0.2)
    assert first != lines(500, 8, ref, undeclared_rate=0.2)
    assert len({json.loads(line)["event_id"] for line in first}) == 500


def test_default_reference_is_the_shipped_one(ref: ReferenceData) -> None:
    shipped = [e.to_json_line() for e in simulate(50, 3, START, END)]
    assert shipped == lines(50, 3, ref)


def test_events_are_ordered_within_the_window_in_utc(year: list[DisclosureEvent]) -> None:
    assert len(year) == 3000
    times = [e.occurred_at for e in year]
    assert times == sorted(times)
    assert all(START <= t < END for t in times)
    assert all(t.utcoffset() == timedelta(0) for t in times)
    assert times[0] < START + timedelta(days=7)
    assert times[-1] > END - timedelta(days=7)


def test_short_window_end_is_exclusive(ref: ReferenceData) -> None:
    start = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    end = start + timedelta(milliseconds=3)
    times = {e.occurred_at for e in simulate(200, 1, start, end, reference=ref)}
    assert times <= {start + timedelta(milliseconds=n) for n in range(3)}


def test_every_event_validates_against_the_model(year: list[DisclosureEvent]) -> None:
    for event in year:
        assert DisclosureEvent.model_validate_json(event.to_json_line()) == event
        assert DisclosureEvent.model_validate(event.model_dump()) == event


def test_only_declared_flows_by_default(ref: ReferenceData, year: list[DisclosureEvent]) -> None:
    for event in year:
        result = classify_event(ref, event)
        assert result.declared, event.to_json_line()
        assert result.flags == (), event.to_json_line()
        assert not is_undeclared(ref, event)


def test_every_declared_flow_of_section_8_2_occurs(
    ref: ReferenceData, year: list[DisclosureEvent]
) -> None:
    letters: dict[str, set[str]] = {}
    for event in year:
        result = classify_event(ref, event)
        assert result.flow_id is not None
        letters.setdefault(result.flow_id, set()).update(result.ccpa_letters)
    assert {flow: letters[flow] for flow in letters if flow.startswith("ccpa-8.2-")} == {
        "ccpa-8.2-analytics": {"A", "F"},
        "ccpa-8.2-payment": {"B", "D"},
        "ccpa-8.2-marketing": {"A", "D", "F"},
        "ccpa-8.2-anti-fraud": {"A", "B", "D", "F"},
        "ccpa-8.2-auditing": {"A", "B", "D", "F"},
    }
    # Every declared flow but the business transfer (none happened) occurs as well.
    assert set(letters) == {f.id for f in ref.flows} - {"business-transfer"}


def test_platform_traffic(year: list[DisclosureEvent]) -> None:
    recipients = Counter(e.recipient.id for e in year)
    assert {"escalion", "hotjar", "google-analytics", "emarsys"} <= set(recipients)
    assert any(re.fullmatch(r"broadcaster-\d{5}", rid) for rid in recipients)
    authority = [e for e in year if e.recipient.category == "authority"]
    assert 0 < len(authority) < len(year) // 50
    assert {e.producer.service for e in year} == set(PRODUCERS)
    assert all(e.producer.version == PRODUCERS[e.producer.service] for e in year)
    guests = [e for e in year if e.subject.type is SubjectType.guest]
    assert guests
    assert {e.recipient.id for e in guests} <= {"hotjar", "google-analytics"}
    purchases = [e for e in year if e.recipient.id == "escalion"]
    assert all(re.fullmatch(r"ord-[0-9a-f]{10}", e.context["order_id"]) for e in purchases)
    chargebacks = [e for e in year if e.recipient.category == "financial_institution"]
    assert any(e.context.get("case_ref", "").startswith("CB-") for e in chargebacks)
    assert any("ticket" in e.context for e in year)


def test_undeclared_fraction_matches_the_rate(ref: ReferenceData) -> None:
    events = list(simulate(20_000, 11, START, END, reference=ref, undeclared_rate=0.1))
    flagged = [e for e in events if is_undeclared(ref, e)]
    assert abs(len(flagged) / len(events) - 0.1) < 0.01
    for event in flagged:
        result = classify_event(ref, event)  # valid: no ReferenceViolation
        assert result.flags == ("undeclared_flow",)
        assert result.recipient_registered
    assert len({(e.recipient.id, e.purpose) for e in flagged}) >= 5


def test_rate_one_is_all_undeclared(ref: ReferenceData) -> None:
    events = list(simulate(300, 5, START, END, reference=ref, undeclared_rate=1.0))
    assert all(is_undeclared(ref, e) for e in events)


def test_window_before_and_after_registry_changes(ref: ReferenceData) -> None:
    # Before 2021-07-22 only recipients that need no registration can be used; the survey
    # provider lost its processor contract on 2026-07-01 and is not used after it.
    start = datetime(2021, 7, 1, tzinfo=UTC)
    end = datetime(2021, 8, 1, tzinfo=UTC)
    early = list(simulate(2000, 9, start, end, reference=ref))
    before = {
        e.recipient.category.value
        for e in early
        if e.occurred_at < datetime(2021, 7, 22, tzinfo=UTC)
    }
    assert before <= {"broadcaster", "public", "authority"}
    late = list(simulate(2000, 9, datetime(2026, 6, 1, tzinfo=UTC), END, reference=ref))
    assert not any(
        e.recipient.id == "survey-provider" and e.occurred_at >= datetime(2026, 7, 1, tzinfo=UTC)
        for e in late
    )
    for event in early + late:
        assert classify_event(ref, event).flags == ()


def test_zero_events(ref: ReferenceData) -> None:
    assert list(simulate(0, 1, START, END, reference=ref)) == []


@pytest.mark.parametrize(
    ("events", "start", "end", "rate", "message"),
    [
        (-1, START, END, 0.0, "events must be 0 or more"),
        (10, START, START, 0.0, "is not after start"),
        (10, datetime(2026, 1, 1), END, 0.0, "has no UTC offset"),
        (10, START, END, 1.5, "undeclared_rate must be in"),
        (
            10,
            datetime(2021, 7, 1, tzinfo=UTC),
            END,
            0.1,
            "no undeclared scenario can be simulated .* at 2021-07-01T00:00:00",
        ),
    ],
)
def test_bad_arguments(
    ref: ReferenceData, events: int, start: datetime, end: datetime, rate: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        simulate(events, 1, start, end, reference=ref, undeclared_rate=rate)
