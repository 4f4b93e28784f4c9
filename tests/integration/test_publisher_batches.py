"""publish_many against a real broker: chunked encoding, settling acknowledgements as they
come, refusing invalid events without losing the rest, partitioning by subject id as
kafka-python's default partitioner does; once with each Kafka client (``kafka_client``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2

from disclosure_ledger.simulate import simulate
from producers.publisher import DisclosurePublisher
from schemas.codec import EventCodec
from schemas.errors import EventValidationError
from schemas.model import DisclosureEvent
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

PARTITIONS = 4


def _read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[int, bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    records: list[tuple[int, bytes, bytes]] = []
    deadline = time.monotonic() + 60
    while len(records) < expected and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend((r.partition, r.key, r.value) for r in batch)
    consumer.close()
    return records


def test_publish_many_delivers_every_valid_event_and_refuses_invalid_ones(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
    kafka_client: str,
) -> None:
    # Small chunks and a small bound on what is outstanding, so that a few thousand
    # events go through every branch: many chunks, and waiting for the oldest one.
    monkeypatch.setattr("producers.publisher._CHUNK", 100)
    monkeypatch.setattr("producers.publisher._MAX_UNSETTLED", 250)
    topic = new_topic(partitions=PARTITIONS)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    good = list(simulate(2500, 3, start, end))
    invalid = [
        DisclosureEvent.model_construct(**{**vars(make_event()), "data_categories": ()}),
        DisclosureEvent.model_construct(**{**vars(make_event()), "purpose": "Not A Key"}),
    ]
    events: list[DisclosureEvent] = [*good[:1000], invalid[0], *good[1000:], invalid[1]]

    with DisclosurePublisher(kafka_bootstrap, topic, client=kafka_client) as publisher:
        result = publisher.publish_many(events)

    assert result.delivered == len(good)
    assert [miss.event for miss in result.undelivered] == invalid
    assert "field data_categories: " in result.undelivered[0].error
    assert "field purpose: " in result.undelivered[1].error
    assert all("was not sent" in miss.error for miss in result.undelivered)

    records = _read_all(kafka_bootstrap, topic, len(good))
    codec = EventCodec()
    sent = {
        codec.decode(value)[1]["event_id"]: (partition, key) for partition, key, value in records
    }
    assert set(sent) == {str(e.event_id) for e in good}
    for event in good:
        partition, key = sent[str(event.event_id)]
        assert key == event.subject.id.encode()
        assert partition == (murmur2(key) & 0x7FFFFFFF) % PARTITIONS


def test_send_and_publish_refuse_an_invalid_event_and_send_nothing(
    kafka_bootstrap: str, new_topic: Callable[..., str], kafka_client: str
) -> None:
    topic = new_topic(partitions=PARTITIONS)
    bad = DisclosureEvent.model_construct(
        **{**vars(make_event()), "occurred_at": datetime(2026, 3, 1, 12, 0)}
    )
    with DisclosurePublisher(kafka_bootstrap, topic, client=kafka_client) as publisher:
        with pytest.raises(EventValidationError, match=f"event {bad.event_id} .*occurred_at"):
            publisher.send(bad)
        with pytest.raises(EventValidationError, match="offset"):
            publisher.publish(bad)
        publisher.publish(make_event())
        landed = publisher.send(make_event(subject={"id": "member-7", "type": "member"}))
        where = landed.get(30)
    assert where.partition == (murmur2(b"member-7") & 0x7FFFFFFF) % PARTITIONS
    assert len(_read_all(kafka_bootstrap, topic, 2)) == 2
