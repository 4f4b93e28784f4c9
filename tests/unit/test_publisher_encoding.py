"""The publisher's batch encoder writes exactly EventCodec's bytes, and refuses what the
model refuses, naming the event, the field and the fix; its partitioner is kafka-python's."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from disclosure_ledger.simulate import simulate
from producers.encoding import EventEncoder
from producers.publisher import KeyHashPartitioner
from schemas.codec import EventCodec
from schemas.errors import EventValidationError
from schemas.model import (
    DisclosureEvent,
    DisclosureKind,
    LegalBasis,
    Producer,
    Recipient,
    RecipientCategory,
    Subject,
    SubjectType,
)
from tests.unit.events import make_event

CODEC = EventCodec()
ENCODER = EventEncoder(CODEC)


def _reference(event: DisclosureEvent) -> tuple[bytes, bytes]:
    return event.subject.id.encode(), CODEC.encode(event.to_avro())


def test_simulated_traffic_encodes_byte_identical_to_the_codec() -> None:
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    events = list(simulate(3000, 7, start, end, undeclared_rate=0.05))
    encoded, refused = ENCODER.messages(events)
    assert not refused
    assert [e for e, _, _ in encoded] == events
    assert [(k, v) for _, k, v in encoded] == [_reference(e) for e in events]


_text = st.text(min_size=1, max_size=90)
_key = st.from_regex(r"[a-z0-9_]{1,12}(\.[a-z0-9_]{1,12}){0,3}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    event_id=st.uuids(),
    occurred_at=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
    subject_id=_text,
    subject_type=st.sampled_from(SubjectType),
    recipient_id=_text,
    category=st.sampled_from(RecipientCategory),
    data_categories=st.lists(_key, min_size=1, max_size=80),
    purpose=_key,
    legal_basis=st.sampled_from(LegalBasis),
    kind=st.sampled_from(DisclosureKind),
    service=_text,
    version=_text,
    context=st.dictionaries(st.text(max_size=20), st.text(max_size=200), max_size=70),
    legal_reference=st.none() | _text,
)
def test_any_valid_event_encodes_byte_identical_to_the_codec(
    event_id: uuid.UUID,
    occurred_at: datetime,
    offset_minutes: int,
    subject_id: str,
    subject_type: SubjectType,
    recipient_id: str,
    category: RecipientCategory,
    data_categories: list[str],
    purpose: str,
    legal_basis: LegalBasis,
    kind: DisclosureKind,
    service: str,
    version: str,
    context: dict[str, str],
    legal_reference: str | None,
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    event = DisclosureEvent(
        event_id=event_id,
        occurred_at=occurred_at.astimezone(zone),
        subject=Subject(id=subject_id, type=subject_type),
        recipient=Recipient(id=recipient_id, category=category),
        data_categories=tuple(data_categories),
        purpose=purpose,
        legal_basis=legal_basis,
        disclosure_kind=kind,
        producer=Producer(service=service, version=version),
        context=context,
        legal_reference=legal_reference,
    )
    assert ENCODER.message(event) == _reference(event)


@pytest.mark.parametrize(
    ("milliseconds", "zigzag"),
    [
        # The Avro specification's examples of long encoding, then 2026-03-01T12:00Z.
        (0, "00"),
        (-1, "01"),
        (1, "02"),
        (-2, "03"),
        (2, "04"),
        (-64, "7f"),
        (64, "8001"),
        (1_772_366_400_000, "80a8a8949567"),
    ],
)
def test_occurred_at_is_written_as_avros_zigzag_long_of_epoch_milliseconds(
    milliseconds: int, zigzag: str
) -> None:
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=milliseconds)
    event = make_event(occurred_at=at.astimezone(timezone(timedelta(hours=-5))))
    value = ENCODER.encode(event)
    after_event_id = 10 + 1 + 36  # header, then the UUID text's length and characters
    assert value[after_event_id : after_event_id + len(zigzag) // 2].hex() == zigzag
    assert CODEC.decode(value)[1]["occurred_at"] == milliseconds


def _unvalidated(**changes: Any) -> DisclosureEvent:
    """A valid event's fields, changed, put together without validation (model_construct)."""
    fields = dict(vars(make_event()))
    fields.update(changes)
    return DisclosureEvent.model_construct(**fields)


@pytest.mark.parametrize(
    ("changes", "field", "hint"),
    [
        ({"occurred_at": datetime(2026, 3, 1, 12, 0)}, "occurred_at", "offset"),
        ({"data_categories": ()}, "data_categories", "at least 1"),
        ({"data_categories": ("User Email",)}, "data_categories.0", "Fides key"),
        ({"purpose": "Marketing!"}, "purpose", "Fides key"),
        (
            {"recipient": Recipient.model_construct(id="x", category="friend")},
            "recipient.category",
            "payment_provider",
        ),
        ({"subject": Subject.model_construct(id="", type=SubjectType.member)}, "subject.id", ""),
        ({"legal_reference": ""}, "legal_reference", ""),
        ({"event_id": "not-a-uuid"}, "event_id", "UUID"),
        ({"producer": Producer.model_construct(service="", version="1")}, "producer.service", ""),
        ({"legal_basis": "because"}, "legal_basis", "consent"),
        ({"context": {"case": 7}}, "context.case", "string"),
    ],
)
def test_an_invalid_event_is_refused_naming_event_field_and_fix(
    changes: dict[str, Any], field: str, hint: str
) -> None:
    event = _unvalidated(**changes)
    with pytest.raises(EventValidationError) as caught:
        ENCODER.message(event)
    message = str(caught.value)
    assert caught.value.field == field
    assert f"event {event.event_id} is invalid and was not sent: field {field}: " in message
    assert hint in message
    assert "DisclosureEvent.model_validate" in message  # the fix: build it validated


@pytest.mark.parametrize(
    "changes",
    [
        {"data_categories": ()},  # refused before anything is written
        {"legal_basis": "because"},  # refused by fastavro, part of the message written
        {"context": {"case": 7}},
    ],
)
def test_messages_reports_invalid_events_and_encodes_the_rest_in_order(
    changes: dict[str, Any],
) -> None:
    good = [make_event(), make_event(), make_event()]
    bad = _unvalidated(**changes)
    encoded, refused = ENCODER.messages([good[0], bad, good[1], good[2]])
    assert [e for e, _, _ in encoded] == good
    assert [(k, v) for _, k, v in encoded] == [_reference(e) for e in good]
    assert [e for e, _ in refused] == [bad]


def test_unvalidated_but_valid_values_are_encoded_like_validated_ones() -> None:
    """Strings for enums, a list for the categories: pydantic accepts them, so do we."""
    valid = make_event(disclosure_kind="share", legal_reference="DPA-7")
    loose = _unvalidated(
        event_id=valid.event_id,
        subject=Subject.model_construct(id="member-1", type="member"),
        data_categories=["user.financial"],
        legal_basis="contract",
        disclosure_kind="share",
        legal_reference="DPA-7",
    )
    assert ENCODER.message(loose) == _reference(valid)


def test_other_write_versions_encode_as_their_codec_does() -> None:
    v1 = EventCodec(write_version=1)
    encoder = EventEncoder(v1)
    event = make_event(legal_reference="DPA-7")
    assert encoder.message(event) == (b"member-1", v1.encode(event.to_avro()))
    with pytest.raises(EventValidationError, match="data_categories"):
        encoder.message(_unvalidated(data_categories=()))


def test_known_valid_keys_stay_bounded_and_checks_hold_when_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("producers.encoding._KNOWN_VALID_LIMIT", 3)
    encoder = EventEncoder(CODEC)
    events = [
        make_event(purpose=f"purpose_{i}", data_categories=[f"user.k{i}", "user.financial"])
        for i in range(20)
    ]
    encoded, _ = encoder.messages(events + events)
    assert [(k, v) for _, k, v in encoded] == [_reference(e) for e in events + events]
    assert len(encoder._fides_keys) <= 3 and len(encoder._category_lists) <= 3
    with pytest.raises(EventValidationError, match="purpose"):
        encoder.message(_unvalidated(purpose="Purpose 0"))


def test_partitions_are_kafka_pythons_default_ones() -> None:
    class Cluster:
        def __init__(self, count: int) -> None:
            self.count = count

        def topics(self) -> set[str]:
            return {"t"}

        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(self.count))

        def available_partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(self.count))

    rng = random.Random(5)
    ours, default = KeyHashPartitioner(max_keys=50), DefaultPartitioner()
    for _ in range(3000):
        key = rng.choice(
            [f"member-{rng.randrange(10**7):07d}".encode(), rng.randbytes(rng.randrange(40))]
        )
        for count in (1, 4, 7):
            cluster = Cluster(count)
            assert ours.partition("t", None, key, None, None, cluster) == default.partition(
                "t", None, key, None, None, cluster
            )
    assert ours.partition("t", None, None, None, b"v", Cluster(4)) in range(4)
