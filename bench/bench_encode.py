"""The publisher's encoding: events/s of turning simulated events into (key, value)
messages, alone and, with ``--broker``, inside publishing.

    .venv/bin/python -m bench.bench_encode [--events 20000] [--runs 7]
    .venv/bin/python -m bench.bench_encode --broker [--publish-events 100000] [--runs 5]

Per run, over the same simulated events (seed 1):

- ``encoder_messages``: ``EventEncoder.messages`` in chunks of the publisher's ``_CHUNK``,
  as ``DisclosurePublisher.publish_many`` calls it (checks, then encodes);
- ``codec_per_event``: ``EventCodec.encode(event.to_avro())`` one event at a time, the
  reference whose bytes the encoder must reproduce (it checks nothing).

With ``--broker`` (the local broker of the settings, started if needed, or
``KAFKA_BOOTSTRAP_SERVERS``), on fresh 4-partition topics, as in ``bench_ingest``:

- ``publish``: ``DisclosurePublisher.publish_many`` (check, encode, send, wait for every
  acknowledgement);
- ``publish_ceiling``: kafka-python's ``KafkaProducer.send`` of the same messages
  encoded beforehand, with the same producer settings.

Prints medians and writes bench/results/encode.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaProducer

from bench.bench_ingest import RESULTS, _bootstrap, _topic, delete_topics, print_run
from disclosure_ledger.simulate import simulate
from producers.encoding import EventEncoder
from producers.publisher import _CHUNK, PRODUCER_DEFAULTS, DisclosurePublisher
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent

FIGURES = ("encoder_messages", "codec_per_event")
BROKER_FIGURES = ("publish", "publish_ceiling")


def _encoder_messages(events: list[DisclosureEvent]) -> float:
    encoder = EventEncoder(EventCodec())
    started = time.perf_counter()
    for start in range(0, len(events), _CHUNK):
        encoded, refused = encoder.messages(events[start : start + _CHUNK])
        assert not refused and encoded
    return len(events) / (time.perf_counter() - started)


def _codec_per_event(events: list[DisclosureEvent]) -> float:
    codec = EventCodec()
    encode = codec.encode
    started = time.perf_counter()
    for event in events:
        encode(event.to_avro())
    return len(events) / (time.perf_counter() - started)


def _publish(bootstrap: str, events: list[DisclosureEvent]) -> float:
    topic = _topic(bootstrap, "encode")
    started = time.perf_counter()
    with DisclosurePublisher(bootstrap, topic, client="kafka-python") as publisher:
        result = publisher.publish_many(events)
    assert result.ok, result.undelivered[:3]
    seconds = time.perf_counter() - started
    delete_topics(bootstrap, [topic])
    return len(events) / seconds


def _publish_ceiling(bootstrap: str, encoded: list[tuple[bytes, bytes]]) -> float:
    topic = _topic(bootstrap, "encode-raw")
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_DEFAULTS)
    started = time.perf_counter()
    for key, value in encoded:
        producer.send(topic, key=key, value=value)
    producer.flush()
    seconds = time.perf_counter() - started
    producer.close()
    delete_topics(bootstrap, [topic])
    return len(encoded) / seconds


def _simulated(events_n: int) -> list[DisclosureEvent]:
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    return list(simulate(events_n, 1, start, end))


def run(events_n: int, runs: int, publish_events_n: int | None) -> dict[str, Any]:
    events = _simulated(events_n)
    names = FIGURES + (BROKER_FIGURES if publish_events_n else ())
    figures: dict[str, list[float]] = {k: [] for k in names}
    if publish_events_n:
        bootstrap = _bootstrap()
        published = _simulated(publish_events_n)
        codec = EventCodec()
        encoded = [(e.subject.id.encode(), codec.encode(e.to_avro())) for e in published]
    load = [os.getloadavg()[0]]
    for run_no in range(1, runs + 1):
        figures["encoder_messages"].append(_encoder_messages(events))
        figures["codec_per_event"].append(_codec_per_event(events))
        if publish_events_n:
            figures["publish"].append(_publish(bootstrap, published))
            figures["publish_ceiling"].append(_publish_ceiling(bootstrap, encoded))
        load.append(os.getloadavg()[0])
        print_run(run_no, figures)
    return {
        "benchmark": "encode",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1min": load,
        "events": events_n,
        "publish_events": publish_events_n,
        "runs": runs,
        "unit": "events/s",
        "medians": {k: statistics.median(v) for k, v in figures.items()},
        "all_runs": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--broker", action="store_true", help="also publish through a broker")
    parser.add_argument("--publish-events", type=int, default=100_000)
    args = parser.parse_args()
    result = run(args.events, args.runs, args.publish_events if args.broker else None)
    print(
        f"\nencode benchmark, {result['events']:,} events encoded"
        + (f", {result['publish_events']:,} published" if args.broker else "")
        + f", median of {result['runs']} runs, {result['cores']} cores, {result['date']}"
    )
    for name, median in result["medians"].items():
        print(f"{name:<20}{median:>12,.0f} events/s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encode.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
