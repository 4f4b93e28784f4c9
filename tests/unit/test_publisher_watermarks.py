"""What a publisher's watermark claims, without a broker: sent after a flush, to every
partition, never past an event it reported undelivered, never in the future."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.errors import PublishError
from producers.publisher import DisclosurePublisher, WatermarkSource
from schemas.watermark import WatermarkCodec, epoch_ms
from tests.unit.events import make_event


class _Acknowledged:
    def done(self) -> bool:
        return True

    def get(self, timeout: float) -> None:
        return None


class _Producer:
    """The part of the publisher's ProducerTransport a watermark uses, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def flush(self, timeout: float) -> None:
        self.calls.append(("flush",))

    def partitions(self, topic: str, timeout: float) -> set[int]:
        return {2, 0, 1}

    def send(
        self, topic: str, value: bytes, *, key: bytes | None = None, partition: int
    ) -> _Acknowledged:
        self.calls.append(("send", partition, value))
        return _Acknowledged()

    def close(self, timeout: float) -> None:
        self.calls.append(("close",))


def _publisher() -> tuple[DisclosurePublisher, _Producer]:
    producer = _Producer()
    publisher = DisclosurePublisher.__new__(DisclosurePublisher)
    publisher.__dict__.update(
        topic="t",
        timeout=5.0,
        source=WatermarkSource("billing", "4.12.3"),
        _watermark_codec=WatermarkCodec(),
        _producer=producer,
    )
    # the rest of __init__'s state, without connecting
    publisher.__dict__.update(
        _send_lock=threading.RLock(),
        _undelivered_lock=threading.Lock(),
        _earliest_undelivered_ms=None,
        _watermark_on_close=True,
        _stop_watermarks=threading.Event(),
    )
    return publisher, producer


def test_a_watermark_follows_a_flush_and_goes_to_every_partition() -> None:
    publisher, producer = _publisher()
    before = datetime.now(UTC)
    watermark = publisher.send_watermark()
    assert producer.calls[0] == ("flush",)
    sends = [c for c in producer.calls if c[0] == "send"]
    assert [c[1] for c in sends] == [0, 1, 2]
    assert {WatermarkCodec().decode(c[2]) for c in sends} == {watermark}
    assert watermark.source == "billing" and watermark.producer_version == "4.12.3"
    assert epoch_ms(before) <= watermark.watermark_at_ms <= epoch_ms(datetime.now(UTC))
    producer.calls.clear()
    publisher.close()
    assert [c[0] for c in producer.calls][:2] == ["flush", "send"]  # a last one on close
    assert producer.calls[-1] == ("close",)


def test_a_watermark_never_passes_an_event_reported_undelivered() -> None:
    publisher, _ = _publisher()
    lost_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    publisher._hold_watermark_at(make_event(occurred_at=lost_at))  # its report said failed
    assert publisher.send_watermark().watermark_at == lost_at
    with pytest.raises(PublishError, match="reported undelivered"):
        publisher.send_watermark(lost_at + timedelta(seconds=1))
    assert publisher.send_watermark(lost_at - timedelta(days=1)).watermark_at < lost_at


def test_a_watermark_in_the_future_or_without_a_source_is_refused() -> None:
    publisher, producer = _publisher()
    with pytest.raises(PublishError, match="in the future"):
        publisher.send_watermark(datetime.now(UTC) + timedelta(hours=1))
    publisher.source = None
    with pytest.raises(PublishError, match="names no source"):
        publisher.send_watermark()
    assert not [c for c in producer.calls if c[0] == "send"]
