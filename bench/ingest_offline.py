"""The ingest pipeline alone, without a broker: decode, classify, deduplicate, pseudonymise,
chain and append pre-encoded messages, one batch of ``DEFAULT_BATCH`` at a time.

    python -m bench.ingest_offline [--events 100000] [--messages FILE] [--profile]
        -> one JSON line: events, seconds, events/s, CPU seconds (every thread of the
         process, DuckDB's included) and the prepare and commit shares (wall)

The messages are simulated events (seed 1) encoded by :class:`~schemas.codec.EventCodec`,
keyed by subject id and spread over 4 partitions by key, as the producer library does.
``--messages FILE`` keeps them in FILE (written on first use), so several runs, and other
versions of the code, ingest the very same bytes. Each run starts from an empty ledger and
an empty subject key store. Batches are prepared and committed one after the other (the
consumer overlaps a commit with the next prepare on a second thread; this does not, so the
two shares add up to the total).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pickle
import pstats
import sys
import tempfile
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path

from consumers.consumer import DEFAULT_BATCH
from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.simulate import simulate
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import load_reference
from schemas.codec import EventCodec

PARTITIONS = 4
TOPIC = "bench.offline"


def build_messages(events: int) -> list[SourceMessage]:
    """``events`` simulated disclosures as a topic would hold them."""
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    codec = EventCodec()
    offsets = [0] * PARTITIONS
    messages = []
    for event in simulate(events, 1, start, end):
        key = event.subject.id.encode()
        partition = zlib.crc32(key) % PARTITIONS
        messages.append(
            SourceMessage(TOPIC, partition, offsets[partition], key, codec.encode(event.to_avro()))
        )
        offsets[partition] += 1
    return messages


def load_messages(events: int, path: Path | None) -> list[SourceMessage]:
    if path is not None and path.exists():
        rows = pickle.loads(path.read_bytes())
        if len(rows) == events:
            return [SourceMessage(*row) for row in rows]
    messages = build_messages(events)
    if path is not None:
        path.write_bytes(pickle.dumps([tuple(m) for m in messages]))
    return messages


def ingest(messages: list[SourceMessage], folder: Path) -> dict[str, float]:
    """Ingest every message into a new ledger in ``folder``; the figures of that run."""
    reference = load_reference()
    ledger_path = folder / "ledger.duckdb"
    prepare_s = commit_s = 0.0
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(folder / "keys.sqlite", b"b" * 32) as keys,
    ):
        ingestor = Ingestor(ledger, keys, reference)
        accepted = 0
        cpu_started = time.process_time()
        started = time.perf_counter()
        for at in range(0, len(messages), DEFAULT_BATCH):
            t = time.perf_counter()
            prepared = ingestor.prepare(messages[at : at + DEFAULT_BATCH])
            prepare_s += time.perf_counter() - t
            t = time.perf_counter()
            accepted += ingestor.commit(prepared).accepted
            commit_s += time.perf_counter() - t
        seconds = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_started
    if accepted != len(messages):
        raise SystemExit(f"accepted {accepted} of {len(messages)} messages")
    return {
        "events": len(messages),
        "seconds": seconds,
        "eps": len(messages) / seconds,
        "cpu_s": cpu_s,
        "events_per_cpu_s": len(messages) / cpu_s,
        "prepare_s": prepare_s,
        "commit_s": commit_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--messages", type=Path, help="cache the encoded messages in this file")
    parser.add_argument("--profile", action="store_true", help="print where prepare's time goes")
    args = parser.parse_args()
    messages = load_messages(args.events, args.messages)
    with tempfile.TemporaryDirectory() as folder:
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            figures = ingest(messages, Path(folder))
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        else:
            figures = ingest(messages, Path(folder))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
