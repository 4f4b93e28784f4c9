"""The publish rate with each Kafka client, beside that client's bare ceiling (issue 20, 3).

    .venv/bin/python -m bench.bench_publish [--events 100000] [--runs 5] [--profile CLIENT]

Per run and per client (the clients alternate; confluent-kafka only when installed), on
fresh 4-partition topics of the broker ``bench.bench_ingest`` uses, with the same
simulated events:

- ``publish``: ``DisclosurePublisher(client=...).publish_many`` of the events, from
  opening the publisher to closing it: checking, encoding (``producers/encoding.py``),
  sending through ``kafka_transport``, every acknowledgement awaited and accounted.
- ``bare``: the bare client sending the same bytes, encoded beforehand by the publisher's
  own encoder, with the publisher's settings (``acks=all``, idempotence, linger, batch
  size, partitioning by murmur2 of the key), waiting for every acknowledgement and
  counting them (kafka-python: ``KafkaProducer.send`` then ``flush``, futures checked
  after; confluent-kafka: ``Producer.produce`` with one counting delivery callback).

``--profile CLIENT`` instead runs one ``publish`` under cProfile and prints where the
time goes. Prints medians and writes bench/results/publish.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from bench.bench_ingest import PARTITIONS, RESULTS, _bootstrap, _topic, delete_topics, print_run
from disclosure_ledger.simulate import simulate
from kafka_transport import CLIENTS, confluent_installed
from producers.encoding import EventEncoder
from producers.publisher import (
    _CHUNK,
    LIBRDKAFKA_DEFAULTS,
    PRODUCER_DEFAULTS,
    DisclosurePublisher,
    _librdkafka_timeouts,
)
from schemas.model import DisclosureEvent

TARGET_RATE = 50_000
TARGET_SHARE = 0.70


def _events(n: int) -> list[DisclosureEvent]:
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    return list(simulate(n, 1, start, end))


def _encoded(events: list[DisclosureEvent]) -> list[tuple[bytes, bytes]]:
    encoder = EventEncoder()
    out: list[tuple[bytes, bytes]] = []
    for start in range(0, len(events), _CHUNK):
        messages, refused = encoder.messages(events[start : start + _CHUNK])
        assert not refused
        out.extend((key, value) for _, key, value in messages)
    return out


def publish(bootstrap: str, client: str, events: list[DisclosureEvent]) -> float:
    topic = _topic(bootstrap, "publish")
    started = time.perf_counter()
    with DisclosurePublisher(bootstrap, topic, client=client) as publisher:
        result = publisher.publish_many(events)
    seconds = time.perf_counter() - started
    assert result.ok and result.delivered == len(events), result.undelivered[:3]
    delete_topics(bootstrap, [topic])
    return len(events) / seconds


def _bare_kafka_python(bootstrap: str, topic: str, encoded: list[tuple[bytes, bytes]]) -> float:
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_DEFAULTS)
    send = producer.send
    started = time.perf_counter()
    futures = [send(topic, key=key, value=value) for key, value in encoded]
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    assert all(f.succeeded() for f in futures)
    return seconds


class _Count:
    def __init__(self) -> None:
        self.acknowledged = self.failed = 0

    def __call__(self, error: Any, _message: Any) -> None:
        if error is None:
            self.acknowledged += 1
        else:
            self.failed += 1


def _bare_confluent(bootstrap: str, topic: str, encoded: list[tuple[bytes, bytes]]) -> float:
    import confluent_kafka

    from kafka_transport.confluent import producer_config

    config = {
        **producer_config(bootstrap, timeout=60, acks="all"),
        **LIBRDKAFKA_DEFAULTS,
        **_librdkafka_timeouts(None),
    }
    producer = confluent_kafka.Producer(config)
    count = _Count()
    produce, poll = producer.produce, producer.poll
    started = time.perf_counter()
    for key, value in encoded:
        while True:
            try:
                produce(topic, value, key, on_delivery=count)
                break
            except BufferError:
                poll(0.05)
    producer.flush(60)
    seconds = time.perf_counter() - started
    assert count.acknowledged == len(encoded) and not count.failed
    return seconds


def bare(bootstrap: str, client: str, encoded: list[tuple[bytes, bytes]]) -> float:
    topic = _topic(bootstrap, "publish-bare")
    if client == "confluent-kafka":
        seconds = _bare_confluent(bootstrap, topic, encoded)
    else:
        seconds = _bare_kafka_python(bootstrap, topic, encoded)
    delete_topics(bootstrap, [topic])
    return len(encoded) / seconds


def clients() -> list[str]:
    return [c for c in CLIENTS if c != "confluent-kafka" or confluent_installed()]


def run(events_n: int, runs: int) -> dict[str, Any]:
    bootstrap = _bootstrap()
    events = _events(events_n)
    encoded = _encoded(events)
    names = [f"{c} {kind}" for c in clients() for kind in ("publish", "bare")]
    figures: dict[str, list[float]] = {name: [] for name in names}
    load = [os.getloadavg()[0]]
    for run_no in range(1, runs + 1):
        order = clients() if run_no % 2 else clients()[::-1]
        for client in order:
            figures[f"{client} publish"].append(publish(bootstrap, client, events))
            figures[f"{client} bare"].append(bare(bootstrap, client, encoded))
        load.append(os.getloadavg()[0])
        print_run(run_no, figures)
    medians = {k: statistics.median(v) for k, v in figures.items()}
    import kafka

    versions = {"kafka-python": kafka.__version__}
    if confluent_installed():
        import confluent_kafka

        versions["confluent-kafka"] = (
            f"{confluent_kafka.__version__} (librdkafka {confluent_kafka.libversion()[0]})"
        )
    return {
        "benchmark": "publish",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1min": load,
        "events": events_n,
        "partitions": PARTITIONS,
        "runs": runs,
        "clients": versions,
        "unit": "events/s",
        "medians": medians,
        "all_runs": figures,
    }


def profile(client: str, events_n: int) -> None:
    bootstrap = _bootstrap()
    events = _events(events_n)
    profiler = cProfile.Profile()
    profiler.enable()
    rate = publish(bootstrap, client, events)
    profiler.disable()
    print(f"{client}: {rate:,.0f} events/s under cProfile ({events_n:,} events)")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", choices=CLIENTS, help="profile one publish instead")
    args = parser.parse_args()
    if args.profile:
        profile(args.profile, args.events)
        return
    result = run(args.events, args.runs)
    m = result["medians"]
    print(
        f"\npublish benchmark, {result['events']:,} events, {PARTITIONS} partitions, median "
        f"of {result['runs']} runs, {result['cores']} cores, {result['date']}, load "
        + ", ".join(f"{x:.1f}" for x in result["load_average_1min"])
    )
    print(f"{'client':<18}{'publish/s':>12}{'bare/s':>12}{'share':>8}")
    for client in clients():
        rate, ceiling = m[f"{client} publish"], m[f"{client} bare"]
        print(f"{client:<18}{rate:>12,.0f}{ceiling:>12,.0f}{rate / ceiling:>8.0%}")
    print(f"target with librdkafka: publish >= {TARGET_RATE:,}/s and >= {TARGET_SHARE:.0%} of bare")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "publish.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
