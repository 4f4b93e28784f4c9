"""The publisher's encoding alone, without Kafka: events/s of turning simulated events into
(key, value) messages.

    .venv/bin/python -m bench.bench_encode [--events 20000] [--runs 7]

Per run, over the same simulated events (seed 1):

- ``encoder_messages``: ``EventEncoder.messages`` in chunks of the publisher's ``_CHUNK``,
  as ``DisclosurePublisher.publish_many`` calls it (checks, then encodes);
- ``codec_per_event``: ``EventCodec.encode(event.to_avro())`` one event at a time, the
  reference whose bytes the encoder must reproduce (it checks nothing).

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

from bench.bench_ingest import RESULTS, print_run
from disclosure_ledger.simulate import simulate
from producers.encoding import EventEncoder
from producers.publisher import _CHUNK
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent

FIGURES = ("encoder_messages", "codec_per_event")


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


def run(events_n: int, runs: int) -> dict[str, Any]:
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    events = list(simulate(events_n, 1, start, end))
    figures: dict[str, list[float]] = {k: [] for k in FIGURES}
    load = [os.getloadavg()[0]]
    for run_no in range(1, runs + 1):
        figures["encoder_messages"].append(_encoder_messages(events))
        figures["codec_per_event"].append(_codec_per_event(events))
        load.append(os.getloadavg()[0])
        print_run(run_no, figures)
    return {
        "benchmark": "encode",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "load_average_1min": load,
        "events": events_n,
        "runs": runs,
        "unit": "events/s",
        "medians": {k: statistics.median(v) for k, v in figures.items()},
        "all_runs": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    result = run(args.events, args.runs)
    print(
        f"\nencode benchmark, {result['events']:,} events, median of {result['runs']} runs, "
        f"{result['cores']} cores, {result['date']}"
    )
    for name, median in result["medians"].items():
        print(f"{name:<20}{median:>12,.0f} events/s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "encode.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
