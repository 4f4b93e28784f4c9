"""The publisher's side of ``kafka_transport``, without a broker (real clients pointed at a
port where nothing listens): connecting fails with an error naming the broker, a full
local queue gives up after the timeout, closing with unsent records reports each one
undelivered instead of raising, and the client a secured connection gets."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from kafka_transport import TransportError, TransportTimeoutError, client_for
from producers.errors import PublishError
from producers.publisher import DisclosurePublisher

NOBODY = "127.0.0.1:1"  # nothing listens on port 1
SECURED = {"security_protocol": "SASL_SSL"}


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


def test_kafka_python_close_with_unsent_records_stops_the_producer_without_raising() -> None:
    from kafka_transport.kafka_python import PublishingProducer

    transport = PublishingProducer.__new__(PublishingProducer)
    stuck = _StuckProducer()
    transport._producer = stuck
    transport.close(0)
    assert stuck._sender.forced and stuck._sender.joined
    assert stuck.closed


def _unconnected_confluent(**settings: Any) -> Any:
    """librdkafka's publishing producer aimed at nobody, built without its start-up probe."""
    import confluent_kafka

    from kafka_transport.confluent import PublishingProducer, handle_config

    transport = PublishingProducer.__new__(PublishingProducer)
    transport.timeout = 0.5
    config = {**handle_config(NOBODY, timeout=30, connection=None), **settings}
    transport._producer = confluent_kafka.Producer(config)
    return transport


def test_confluent_close_with_unsent_records_reports_each_one_undelivered() -> None:
    pytest.importorskip("confluent_kafka")
    transport = _unconnected_confluent()
    failures: list[str] = []
    deliveries = [
        transport.send("t", b"v%d" % i, key=b"k", on_failure=lambda: failures.append("x"))
        for i in range(3)
    ]
    transport.close(0.2)  # does not raise: the broker never answered
    assert all(d.done() and d.failed() and not d.succeeded() for d in deliveries)
    assert all("PURGE" in (d.error() or "") for d in deliveries)
    assert len(failures) == 3  # the watermark hold heard of each, before close returned
    with pytest.raises(TransportError, match="PURGE"):
        deliveries[0].get(0)


def test_confluent_send_gives_up_when_the_local_queue_stays_full() -> None:
    pytest.importorskip("confluent_kafka")
    transport = _unconnected_confluent(**{"queue.buffering.max.messages": 1})
    transport.send("t", b"first", key=b"k")
    with pytest.raises(TransportTimeoutError, match=r"queue stayed full for 0\.5 s"):
        transport.send("t", b"second", key=b"k")
    transport.close(0)


def test_confluent_delivery_get_times_out_naming_the_wait() -> None:
    pytest.importorskip("confluent_kafka")
    transport = _unconnected_confluent()
    delivery = transport.send("t", b"v", key=b"k")
    with pytest.raises(TransportTimeoutError, match=r"no delivery report within 0\.2 s"):
        delivery.get(0.2)
    transport.close(0)


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
def test_a_publisher_without_a_broker_names_the_address_and_the_fix(client: str) -> None:
    if client == "confluent-kafka":
        pytest.importorskip("confluent_kafka")
    with pytest.raises(PublishError, match=f"cannot reach Kafka at {NOBODY}: .*KAFKA_BOOTSTRAP"):
        DisclosurePublisher(NOBODY, "t", timeout=1, client=client)


def test_an_unknown_client_is_refused_by_the_publisher_naming_the_setting() -> None:
    with pytest.raises(PublishError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT='kafka-java'"):
        DisclosurePublisher(NOBODY, "t", timeout=1, client="kafka-java")


def test_a_secured_connection_keeps_the_configured_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("confluent_kafka")
    assert client_for("confluent-kafka", SECURED) == "confluent-kafka"
    assert client_for("auto", SECURED) == "confluent-kafka"
    assert client_for("kafka-python", SECURED) == "kafka-python"
    # OAUTHBEARER is librdkafka's only: the publisher refuses it with kafka-python, naming the
    # client setting, and with librdkafka gets as far as the (absent) broker
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM", "OAUTHBEARER")
    monkeypatch.setenv(
        "DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER",
        '{"method": "oidc", "client.id": "ledger", "client.secret": "s3cret", '
        '"token.endpoint.url": "https://idp.invalid/token"}',
    )
    with pytest.raises(PublishError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT=confluent-kafka"):
        DisclosurePublisher(NOBODY, "t", timeout=1, client="kafka-python")
    with pytest.raises(PublishError, match=f"cannot reach Kafka at {NOBODY}"):
        DisclosurePublisher(NOBODY, "t", timeout=1, client="confluent-kafka")


def test_confluent_batch_failures_are_found_by_position_even_for_equal_messages() -> None:
    pytest.importorskip("confluent_kafka")
    transport = _unconnected_confluent()
    messages = [(b"k", b"same"), (b"k", b"other"), (b"k", b"same")]
    failed_at: list[int] = []
    deliveries = transport.send_batch("t", messages, failed_at.append)
    assert deliveries.attempted() == 3 and deliveries.stopped() is None
    assert not deliveries.done() and deliveries.unreported() is None  # cannot tell which
    transport.close(0)  # the broker never answered: all three are failed
    assert deliveries.done() and deliveries.unreported() == []
    assert sorted(deliveries.failures()) == [0, 1, 2]
    assert sorted(failed_at) == [0, 1, 2]


def test_confluent_batch_stops_where_the_local_queue_stays_full() -> None:
    pytest.importorskip("confluent_kafka")
    transport = _unconnected_confluent(**{"queue.buffering.max.messages": 1})
    deliveries = transport.send_batch("t", [(b"k", b"a"), (b"k", b"b"), (b"k", b"c")])
    assert deliveries.attempted() == 2  # the first queued, the second refused: the third not
    assert "queue stayed full" in (deliveries.stopped() or "")
    assert list(deliveries.failures()) == [1]
    transport.close(0)
    assert sorted(deliveries.failures()) == [0, 1]
