"""The ingest pipeline alone, without a broker: decode, classify, deduplicate, pseudonymise,
chain and append pre-encoded messages, in batches of ``DEFAULT_BATCH``, the way
:func:`consumers.consumer.consume` runs them (its own ``_Commits`` and ``_BatchCollector``:
batch N commits on a second thread while N+1 is prepared, garbage collected between
batches).

    python -m bench.ingest_offline [--events 100000] [--messages FILE] [--stages] [--no-tree]
        -> one JSON line: events, wall seconds, events/s, CPU seconds (every thread of
           the process, DuckDB's included) and events per CPU second

The messages are simulated events (seed 1) encoded by :class:`~schemas.codec.EventCodec`,
keyed by subject id and spread over 4 partitions by key. ``--messages FILE`` keeps them in
FILE (written on first use), so several runs, and other versions of the code, ingest the
very same bytes. Each run starts from an empty ledger and an empty subject key store.

``--stages`` prepares and commits one batch after the other instead (no overlap), with a
timer around each stage, and prints on stderr where the CPU time goes (in-process: what
``--workers`` moves to a worker is ``decode_batch``).

``--workers N`` decodes in N worker processes (``DISCLOSURE_LEDGER_INGEST_WORKERS``); the
CPU figures then include the workers' (from /proc).

``--no-tree`` stubs out the Merkle tree (:meth:`ledger.tree.TreeBuilder.extend` returns no
node rows, so none are inserted either): run beside a normal run, it shows what keeping the
tree costs ingest (``bench.bench_proofs`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import consumers.decoding as decoding
import consumers.pipeline as pipeline
from consumers.consumer import DEFAULT_BATCH, ConsumeStats, _BatchCollector, _Commits
from consumers.decoding import DecodePool
from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.simulate import simulate
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.tree import NodeRow, TreeBuilder
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


def ingest(
    messages: list[SourceMessage], folder: Path, *, one_by_one: bool, workers: int = 0
) -> dict[str, Any]:
    """Ingest every message into a new ledger in ``folder``; the figures of that run."""
    reference = load_reference()
    with (
        Ledger(folder / "ledger.duckdb") as ledger,
        SubjectKeyStore(folder / "keys.sqlite", b"b" * 32) as keys,
    ):
        ingestor = Ingestor(ledger, keys, reference)
        stats = ConsumeStats()
        collector = _BatchCollector()
        decoder = DecodePool(workers, reference, ingestor.codec) if workers else None
        commits = _Commits(ingestor, stats, None, collector, decoder)
        cpu_started = time.process_time()
        started = time.perf_counter()
        children_cpu = _children_cpu(decoder)
        try:
            for at in range(0, len(messages), DEFAULT_BATCH):
                if one_by_one:
                    stats.add(ingestor.commit(ingestor.prepare(messages[at : at + DEFAULT_BATCH])))
                    collector.collect()
                else:
                    commits.submit(messages[at : at + DEFAULT_BATCH])
            commits.wait()
            seconds = time.perf_counter() - started
            cpu_s = time.process_time() - cpu_started
            workers_cpu_s = _children_cpu(decoder) - children_cpu
        finally:
            commits.close()
            collector.close()
            if decoder is not None:
                decoder.close()
    if stats.accepted != len(messages):
        raise SystemExit(f"accepted {stats.accepted} of {len(messages)} messages")
    return {
        "events": len(messages),
        "seconds": seconds,
        "eps": len(messages) / seconds,
        "cpu_s": cpu_s + workers_cpu_s,
        "workers_cpu_s": workers_cpu_s,
        "events_per_cpu_s": len(messages) / (cpu_s + workers_cpu_s),
    }


def _children_cpu(decoder: DecodePool | None) -> float:
    """CPU seconds of the decode workers so far (user + system, from /proc)."""
    if decoder is None:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in decoder.pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


class StageTimer:
    """CPU and wall seconds spent in each wrapped function."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        self.nested: set[str] = set()  # stages timed inside another one

    def wrap(self, owner: Any, attribute: str, stage: str, *, within: bool = False) -> None:
        if within:
            self.nested.add(stage)
        inner: Callable[..., Any] = getattr(owner, attribute)
        spent = self.spent[stage]

        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - cpu
                spent[1] += time.perf_counter() - wall

        setattr(owner, attribute, timed)

    def report(self, figures: dict[str, Any]) -> None:
        n, total_cpu, total_wall = figures["events"], figures["cpu_s"], figures["seconds"]
        rest = ["rest of prepare (Python glue, Arrow)", total_cpu, total_wall]
        print(
            f"{'stage':<40}{'CPU µs/event':>14}{'share':>8}{'wall µs/event':>15}", file=sys.stderr
        )
        for stage, (cpu, wall) in sorted(self.spent.items(), key=lambda kv: -kv[1][0]):
            if stage not in self.nested:
                rest[1] -= cpu
                rest[2] -= wall
            print(
                f"{stage:<40}{cpu / n * 1e6:>14.1f}{cpu / total_cpu:>8.0%}{wall / n * 1e6:>15.1f}",
                file=sys.stderr,
            )
        for stage, cpu, wall in [rest, ["total", total_cpu, total_wall]]:
            print(
                f"{stage:<40}{cpu / n * 1e6:>14.1f}{cpu / total_cpu:>8.0%}{wall / n * 1e6:>15.1f}",
                file=sys.stderr,
            )


def time_stages() -> StageTimer:
    timer = StageTimer()
    timer.wrap(pipeline, "decode_batch", "decode_batch (a worker's part, in-process)")
    timer.wrap(EventCodec, "decode_many", "  of it: decode (fastavro)", within=True)
    timer.wrap(decoding, "classify", "  of it: classify", within=True)
    timer.wrap(decoding, "canonical_context", "  of it: contexts' canonical JSON", within=True)
    timer.wrap(pipeline, "encrypt_canonical_contexts", "encrypt contexts (AES-GCM)")
    timer.wrap(pipeline, "batch_leaf_hashes", "leaf hashes (ledger.leaf_batch)")
    timer.wrap(pipeline, "link_hashes", "link hashes")
    timer.wrap(SubjectKeyStore, "derive", "pseudonymise (SubjectKeyStore.derive)")
    timer.wrap(Ledger, "find_event_ids", "deduplicate (Ledger.find_event_ids)")
    timer.wrap(TreeBuilder, "extend", "merkle tree (TreeBuilder.extend)")
    timer.wrap(pipeline, "node_table", "merkle node rows (node_table)")
    timer.wrap(Ledger, "append_batch", "commit (Ledger.append_batch)")
    timer.wrap(_BatchCollector, "collect", "garbage collection between batches")
    return timer


def stub_tree() -> None:
    """Ingest without the Merkle tree: no nodes computed, none inserted."""

    def no_nodes(self: TreeBuilder, chain: str, size: int, leaves: object) -> list[NodeRow]:
        return []

    TreeBuilder.extend = no_nodes  # type: ignore[method-assign,assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--messages", type=Path, help="cache the encoded messages in this file")
    parser.add_argument("--stages", action="store_true", help="print where the time goes")
    parser.add_argument(
        "--no-tree", action="store_true", help="stub out the Merkle tree (to measure its cost)"
    )
    parser.add_argument(
        "--workers", type=int, default=0, help="decode processes (DISCLOSURE_LEDGER_INGEST_WORKERS)"
    )
    args = parser.parse_args()
    if args.no_tree:
        stub_tree()
    messages = load_messages(args.events, args.messages)
    timer = time_stages() if args.stages else None
    with tempfile.TemporaryDirectory() as folder:
        figures = ingest(messages, Path(folder), one_by_one=timer is not None, workers=args.workers)
    if timer is not None:
        timer.report(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
