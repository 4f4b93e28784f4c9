"""Publish and ingest throughput against the real local broker (issue 7), and the ingest
pipeline alone without one (issue 15).

    .venv/bin/python -m bench.bench_ingest [--events 1000000] [--runs 3]
    .venv/bin/python -m bench.bench_ingest --no-broker [--pipeline-events 100000] [--runs 5]

Per run, on fresh 4-partition topics: (1) publish N simulated events through the
producer library (``DisclosurePublisher.publish_many``, the path services and the CLI
use: check, encode, send, wait for every acknowledgement), and beside it the ceiling,
kafka-python's ``KafkaProducer.send`` of the same pre-encoded bytes with the same
producer settings (``PRODUCER_DEFAULTS``, partitioner included); (2) ingest that
backlog into an empty ledger in a separate process (decode, classify, pseudonymise,
chain, append, store offsets), and beside it the ceiling, a bare kafka-python consumer
that only polls the topic to the end.
(3) The pipeline alone (``bench.ingest_offline``, in its own process each run): the same
simulated messages decoded, classified, pseudonymised, chained and appended batch by batch
with no broker, as events per wall second and per CPU second (every thread of the
process); the CPU figure is the one that compares across a busy machine and across
versions of the code (run the same module in the other version's tree).
Prints medians and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient

from disclosure_ledger.local_broker import LocalBroker
from disclosure_ledger.settings import load_settings
from disclosure_ledger.simulate import simulate
from kafka_transport import CLIENTS, confluent_installed
from producers.publisher import PRODUCER_DEFAULTS, DisclosurePublisher
from producers.topics import ensure_topic
from schemas.codec import EventCodec

PARTITIONS = 4
RESULTS = Path(__file__).resolve().parent / "results"


def _bootstrap() -> str:
    settings = load_settings()
    if settings.kafka_bootstrap_servers:
        return settings.kafka_bootstrap_servers
    return LocalBroker(
        state_dir=settings.state_dir,
        port=settings.broker_port,
        controller_port=settings.controller_port,
        heap=settings.broker_heap,
    ).start()


def print_run(run_no: int, figures: dict[str, list[float]]) -> None:
    """One run's figures on stderr, as each benchmark run ends."""
    print(
        f"run {run_no}: " + ", ".join(f"{k} {v[-1]:,.0f}" for k, v in figures.items()),
        file=sys.stderr,
    )


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    """Drop the benchmark's topics, so runs leave no data on the broker."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.delete_topics(topics)
    admin.close()


def _topic(bootstrap: str, kind: str) -> str:
    name = f"bench.{kind}.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, name, PARTITIONS)
    return name


def _bare_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=10_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0
    started = time.perf_counter()
    while seen < expected:
        for records in consumer.poll(timeout_ms=1000).values():
            seen += len(records)
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


def pipeline_runs(events_n: int, runs: int) -> dict[str, list[float]]:
    """The broker-free pipeline figures of ``runs`` runs (bench.ingest_offline), the
    encoded messages cached in the results folder so every run reads the same bytes."""
    RESULTS.mkdir(exist_ok=True)
    cache = RESULTS / f"ingest-messages-{events_n}.pickle"
    figures: dict[str, list[float]] = {"pipeline_eps": [], "pipeline_events_per_cpu_s": []}
    for run_no in range(1, runs + 1):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.ingest_offline",
                "--events",
                str(events_n),
                "--messages",
                str(cache),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        worker = json.loads(out.stdout.strip().splitlines()[-1])
        figures["pipeline_eps"].append(worker["eps"])
        figures["pipeline_events_per_cpu_s"].append(worker["events_per_cpu_s"])
        print_run(run_no, figures)
    return figures


def _worker(*args: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.ingest_worker", *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )
    if out.returncode:
        raise SystemExit(f"bench.ingest_worker {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def ingest_with(
    client: str, bootstrap: str, topic: str, events_n: int, workers: int | None
) -> dict[str, float]:
    """One client's figures on ``topic`` (holding ``events_n`` events): the end-to-end
    ingest into an empty ledger (``bench.ingest_worker``, its own process, as ``consume``
    runs) and the bare ceiling, the same client polling the same topic to its end through
    ``kafka_transport`` with the consumer's settings and doing nothing else."""
    env = {"DISCLOSURE_LEDGER_KAFKA_CLIENT": client}
    if workers is not None:
        env["DISCLOSURE_LEDGER_INGEST_WORKERS"] = str(workers)
    with tempfile.TemporaryDirectory() as folder:
        ledger = str(Path(folder) / "ledger.duckdb")
        worker = _worker(bootstrap, topic, ledger, str(events_n), env=env)
    assert worker["events"] == events_n, worker
    ceiling = _worker("--bare", bootstrap, topic, "-", str(events_n), env=env)
    return {
        f"ingest_eps {client}": events_n / worker["seconds"],
        f"ingest_ceiling_eps {client}": events_n / ceiling["seconds"],
        f"ingest_peak_rss_mb {client}": worker["peak_rss_total_mb"],
        f"ingest_peak_rss_main_mb {client}": worker["peak_rss_mb"],
        f"ingest_peak_pss_mb {client}": worker["peak_pss_total_mb"],
    }


def run(
    events_n: int, runs: int, clients: list[str] | None = None, workers: int | None = None
) -> dict[str, Any]:
    clients = clients or [c for c in CLIENTS if c != "confluent-kafka" or confluent_installed()]
    bootstrap = _bootstrap()
    start, end = datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    t = time.perf_counter()
    events = list(simulate(events_n, 1, start, end))
    print(f"simulated {events_n} events in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    codec = EventCodec()
    encoded = [(e.subject.id.encode(), codec.encode(e.to_avro())) for e in events]
    figures: dict[str, list[float]] = {
        k: []
        for k in (
            "publish_eps",
            "publish_ceiling_eps",
        )
    }
    topics: list[str] = []
    for run_no in range(1, runs + 1):
        topic = _topic(bootstrap, "lib")
        topics.append(topic)
        t = time.perf_counter()
        with DisclosurePublisher(bootstrap, topic, client="kafka-python") as publisher:
            result = publisher.publish_many(events)
        assert result.ok, result.undelivered[:3]
        figures["publish_eps"].append(events_n / (time.perf_counter() - t))

        raw_topic = _topic(bootstrap, "raw")
        topics.append(raw_topic)
        producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_DEFAULTS)
        t = time.perf_counter()
        for key, value in encoded:
            producer.send(raw_topic, key=key, value=value)
        producer.flush()
        figures["publish_ceiling_eps"].append(events_n / (time.perf_counter() - t))
        producer.close()

        for client in clients:
            for key, value in ingest_with(client, bootstrap, topic, events_n, workers).items():
                figures.setdefault(key, []).append(value)
        print_run(run_no, figures)
    delete_topics(bootstrap, topics)
    medians = {k: statistics.median(v) for k, v in figures.items()}
    return {
        "benchmark": "ingest",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "events": events_n,
        "runs": runs,
        "medians": medians,
        "all_runs": figures,
        "clients": clients,
        "ingest_workers": workers if workers is not None else load_settings().ingest_workers,
        "publish_ratio": medians["publish_eps"] / medians["publish_ceiling_eps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pipeline-events", type=int, default=100_000)
    parser.add_argument(
        "--no-broker", action="store_true", help="only the pipeline alone: no broker needed"
    )
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=CLIENTS,
        help="the Kafka clients to ingest with (default: each one installed)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="decode processes of the consumer (default: DISCLOSURE_LEDGER_INGEST_WORKERS)",
    )
    args = parser.parse_args()
    result: dict[str, Any] = (
        {
            "benchmark": "ingest",
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cores": os.cpu_count(),
            "runs": args.runs,
            "medians": {},
            "all_runs": {},
        }
        if args.no_broker
        else run(args.events, args.runs, args.clients, args.workers)
    )
    pipeline = pipeline_runs(args.pipeline_events, args.runs)
    result["pipeline_events"] = args.pipeline_events
    result["all_runs"].update(pipeline)
    result["medians"].update({k: statistics.median(v) for k, v in pipeline.items()})
    m = result["medians"]
    print(
        f"\ningest benchmark, median of {result['runs']} runs, {result['cores']} cores, "
        f"{result['date']}"
    )
    print(f"{'figure':<40}{'value':>14}{'ceiling':>14}{'ratio':>8}")
    if not args.no_broker:
        print(f"{result['events']:,} events through the broker")
        print(
            f"{'publish (events/s)':<40}{m['publish_eps']:>14,.0f}"
            f"{m['publish_ceiling_eps']:>14,.0f}{result['publish_ratio']:>8.0%}"
        )
        print(f"ingest with {result['ingest_workers']} decode worker process(es)")
        for client in result["clients"]:
            eps, ceiling = m[f"ingest_eps {client}"], m[f"ingest_ceiling_eps {client}"]
            print(
                f"{'ingest, ' + client + ' (events/s)':<40}{eps:>14,.0f}{ceiling:>14,.0f}"
                f"{eps / ceiling:>8.0%}"
            )
            print(
                f"{'  peak RSS, workers included (MB)':<40}"
                f"{m[f'ingest_peak_rss_mb {client}']:>14,.0f}"
            )
            print(
                f"{'  peak RSS, consumer process (MB)':<40}"
                f"{m[f'ingest_peak_rss_main_mb {client}']:>14,.0f}"
            )
            print(
                f"{'  peak PSS sum, workers included (MB)':<40}"
                f"{m[f'ingest_peak_pss_mb {client}']:>14,.0f}"
            )
    print(f"{args.pipeline_events:,} events through the pipeline alone (no broker)")
    print(f"{'pipeline (events/s)':<40}{m['pipeline_eps']:>14,.0f}")
    print(f"{'pipeline (events per CPU second)':<40}{m['pipeline_events_per_cpu_s']:>14,.0f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
