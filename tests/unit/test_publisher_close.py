"""Closing the publisher while the broker is away: unsent records are dropped, no error."""

from __future__ import annotations

from kafka.errors import KafkaTimeoutError

from producers.publisher import DisclosurePublisher


class _Sender:
    """kafka-python's I/O thread as far as close() sees it."""

    def __init__(self) -> None:
        self.forced = self.joined = False

    def force_close(self) -> None:
        self.forced = True

    def join(self, timeout: float) -> None:
        self.joined = True


class _StuckProducer:
    """kafka-python 3.0's KafkaProducer with records the broker never acknowledged: its
    close() flushes first and raises until the sender has aborted them."""

    def __init__(self) -> None:
        self._sender = _Sender()
        self.closed = False

    def close(self, timeout: float | None = None) -> None:
        if not self._sender.forced:
            raise KafkaTimeoutError("Timeout waiting for future")
        self.closed = True


def test_close_with_unsent_records_stops_the_producer_without_raising() -> None:
    publisher = DisclosurePublisher.__new__(DisclosurePublisher)
    producer = _StuckProducer()
    publisher._producer = producer
    publisher.close(timeout=0)
    assert producer._sender.forced and producer._sender.joined
    assert producer.closed
