"""What a second Kafka client would gain: confluent-kafka (librdkafka) beside kafka-python.

    .venv/bin/python -m bench.bench_second_client [--events 1000000] [--runs 3]

confluent-kafka is not a dependency of this project; this benchmark measures it only when
it is importable, and otherwise says how to install it and exits 0. Per run, on fresh
4-partition topics, with the same simulated events and the same pre-encoded bytes (key =
subject id, value = single-object encoding):

- ``kafka_python_send``: kafka-python's ``KafkaProducer.send`` with ``PRODUCER_DEFAULTS``
  (the publish ceiling of ``bench_ingest``);
- ``library_publish``: ``DisclosurePublisher.publish_many`` (encodes, then sends with
  kafka-python);
- ``confluent_produce``: confluent-kafka's ``Producer.produce`` of the pre-encoded bytes
  with the same guarantees: ``acks=all``, idempotence, the same linger and batch size,
  murmur2 partitioning of the key (kafka-python's and Java's), and a delivery callback per
  message that counts it acknowledged or not, as a library must;
- ``confluent_encode_produce``: the same, fed by this project's encoder
  (``EventEncoder.messages``): what the library would do on confluent-kafka;
- ``kafka_python_consume`` and ``confluent_consume``: a bare consumer of each client
  polling the library's topic from the beginning to the end, doing nothing with the
  records (the ingest ceiling).

Prints medians and writes bench/results/second_client.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer
from kafka.partitioner.default import murmur2

from bench.bench_ingest import (
    PARTITIONS,
    RESULTS,
    _bare_consume,
    _bootstrap,
    _topic,
    delete_topics,
    print_run,
)
from disclosure_ledger.simulate import simulate
from producers.encoding import EventEncoder
from producers.publisher import _CHUNK, PRODUCER_DEFAULTS, DisclosurePublisher
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent

INSTALL = """confluent-kafka is not installed, so there is nothing to compare; it is not a
dependency of this project. To measure it without touching the project's environment, in a
scratch virtual environment that also sees the project's packages:

    "$(readlink -f .venv/bin/python)" -m venv /tmp/second-client
    site() { "$1" -c 'import site; print(site.getsitepackages()[0])'; }
    site .venv/bin/python > "$(site /tmp/second-client/bin/python)/project.pth"
    /tmp/second-client/bin/pip install confluent-kafka
    /tmp/second-client/bin/python -m bench.bench_second_client
"""


FIGURES = (
    "kafka_python_send",
    "library_publish",
    "confluent_produce",
    "confluent_encode_produce",
    "kafka_python_consume",
    "confluent_consume",
)


def _confluent_config(bootstrap: str) -> dict[str, Any]:
    """librdkafka settings matching PRODUCER_DEFAULTS (kafka-python's names differ)."""
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": PRODUCER_DEFAULTS["enable_idempotence"],
        "linger.ms": PRODUCER_DEFAULTS["linger_ms"],
        "batch.size": PRODUCER_DEFAULTS["batch_size"],
        "message.max.bytes": PRODUCER_DEFAULTS["max_request_size"],
        "delivery.timeout.ms": PRODUCER_DEFAULTS["delivery_timeout_ms"],
        # Java's and kafka-python's partitioning of keyed records (librdkafka's default,
        # consistent_random, hashes with CRC32 and would put subjects elsewhere).
        "partitioner": "murmur2_random",
        "queue.buffering.max.messages": 500_000,
    }


class _Deliveries:
    """Delivery-report callback: counts acknowledged and failed messages, and checks a
    sample of partitions against kafka-python's murmur2 partitioning."""

    def __init__(self) -> None:
        self.acknowledged = 0
        self.failed: list[str] = []
        self.misplaced = 0

    def __call__(self, error: Any, message: Any) -> None:
        if error is not None:
            self.failed.append(str(error))
            return
        self.acknowledged += 1
        if self.acknowledged % 997 == 0:
            key = message.key()
            if message.partition() != (murmur2(key) & 0x7FFFFFFF) % PARTITIONS:
                self.misplaced += 1


def _confluent_produce(
    bootstrap: str, topic: str, messages: Callable[[], Any], expected: int
) -> float:
    from confluent_kafka import Producer

    producer = Producer(_confluent_config(bootstrap))
    deliveries = _Deliveries()
    produce, poll = producer.produce, producer.poll
    started = time.perf_counter()
    for key, value in messages():
        while True:
            try:
                produce(topic, value, key, on_delivery=deliveries)
                break
            except BufferError:  # local queue full: serve delivery reports, then retry
                poll(0.05)
        poll(0)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - started
    assert remaining == 0, f"{remaining} messages still queued after flush"
    assert deliveries.acknowledged == expected and not deliveries.failed, (
        deliveries.acknowledged,
        deliveries.failed[:3],
    )
    assert deliveries.misplaced == 0, "confluent-kafka partitioned differently"
    return seconds


def _confluent_consume(bootstrap: str, topic: str, expected: int) -> float:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 8 * 1024 * 1024,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen = 0
    started = time.perf_counter()
    while seen < expected:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error() is None:
                seen += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def _kafka_python_send(bootstrap: str, topic: str, encoded: Sequence[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_DEFAULTS)
    started = time.perf_counter()
    for key, value in encoded:
        producer.send(topic, key=key, value=value)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    return seconds


def _encoded_by_library(events: Sequence[DisclosureEvent]) -> Callable[[], Any]:
    def messages() -> Any:
        encoder = EventEncoder()
        for start in range(0, len(events), _CHUNK):
            encoded, refused = encoder.messages(events[start : start + _CHUNK])
            assert not refused
            for _, key, value in encoded:
                yield key, value

    return messages


def run(events_n: int, runs: int) -> dict[str, Any]:
    import confluent_kafka

    bootstrap = _bootstrap()
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    events = list(simulate(events_n, 1, start, end))
    codec = EventCodec()
    encoded = [(e.subject.id.encode(), codec.encode(e.to_avro())) for e in events]
    figures: dict[str, list[float]] = {k: [] for k in FIGURES}
    load = [os.getloadavg()[0]]
    topics: list[str] = []

    def fresh() -> str:
        topics.append(_topic(bootstrap, "second"))
        return topics[-1]

    for run_no in range(1, runs + 1):
        figures["kafka_python_send"].append(
            events_n / _kafka_python_send(bootstrap, fresh(), encoded)
        )
        library_topic = fresh()
        started = time.perf_counter()
        with DisclosurePublisher(bootstrap, library_topic, client="kafka-python") as publisher:
            result = publisher.publish_many(events)
        assert result.ok, result.undelivered[:3]
        figures["library_publish"].append(events_n / (time.perf_counter() - started))
        figures["confluent_produce"].append(
            events_n / _confluent_produce(bootstrap, fresh(), lambda: iter(encoded), events_n)
        )
        figures["confluent_encode_produce"].append(
            events_n / _confluent_produce(bootstrap, fresh(), _encoded_by_library(events), events_n)
        )
        figures["kafka_python_consume"].append(
            events_n / _bare_consume(bootstrap, library_topic, events_n)
        )
        figures["confluent_consume"].append(
            events_n / _confluent_consume(bootstrap, library_topic, events_n)
        )
        load.append(os.getloadavg()[0])
        print_run(run_no, figures)
    delete_topics(bootstrap, topics)
    medians = {k: statistics.median(v) for k, v in figures.items()}
    return {
        "benchmark": "second_client",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1min": load,
        "events": events_n,
        "runs": runs,
        "confluent_kafka": confluent_kafka.__version__,
        "librdkafka": confluent_kafka.libversion()[0],
        "producer_settings": {k: v for k, v in PRODUCER_DEFAULTS.items() if k != "partitioner"},
        "unit": "events/s",
        "medians": medians,
        "all_runs": figures,
        "gain": {
            "produce, confluent over kafka-python": medians["confluent_produce"]
            / medians["kafka_python_send"],
            "publish with our encoder, confluent over kafka-python library": medians[
                "confluent_encode_produce"
            ]
            / medians["library_publish"],
            "consume, confluent over kafka-python": medians["confluent_consume"]
            / medians["kafka_python_consume"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if importlib.util.find_spec("confluent_kafka") is None:
        print(INSTALL)
        return
    result = run(args.events, args.runs)
    m = result["medians"]
    print(
        f"\nsecond-client benchmark, {result['events']:,} events, median of "
        f"{result['runs']} runs, {result['cores']} cores, {result['date']}, "
        f"confluent-kafka {result['confluent_kafka']} (librdkafka {result['librdkafka']})"
    )
    print(f"{'figure (events/s)':<28}{'kafka-python':>14}{'confluent':>14}{'gain':>8}")
    rows = (
        ("produce pre-encoded", "kafka_python_send", "confluent_produce"),
        ("publish, our encoder", "library_publish", "confluent_encode_produce"),
        ("bare consume", "kafka_python_consume", "confluent_consume"),
    )
    for label, ours, theirs in rows:
        print(f"{label:<28}{m[ours]:>14,.0f}{m[theirs]:>14,.0f}{m[theirs] / m[ours]:>7.1f}x")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "second_client.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
