"""One timed ingest, in its own process so its peak resident memory is its own.

python -m bench.ingest_worker BOOTSTRAP TOPIC LEDGER EXPECTED  -> prints one JSON line
python -m bench.ingest_worker --bare BOOTSTRAP TOPIC - EXPECTED -> the ceiling: the same
    client (DISCLOSURE_LEDGER_KAFKA_CLIENT), opened and polled as the consumer does it
    (kafka_transport, the same settings and batch size), reading the topic to its end and
    doing nothing with the messages

The Kafka client is DISCLOSURE_LEDGER_KAFKA_CLIENT's, the decode processes
DISCLOSURE_LEDGER_INGEST_WORKERS'. The peak resident memory reported is this process's
(``peak_rss_mb``) and, with decode workers, ``peak_rss_total_mb``: this process's peak plus
each child process's (the decode workers), sampled every 0.1 s while they live (each peak
is its own; their sum bounds what they held at once, counting the libraries they share once
per process), and ``peak_pss_total_mb``: the highest sum of their PSS (shared pages divided
among the processes sharing them) seen in those samples.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

from consumers.consumer import DEFAULT_BATCH, consume
from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.settings import load_settings
from kafka_transport import open_consumer, resolve_client
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import load_reference


def _peak_rss_kib(pid: int | str = "self") -> int:
    """A process's own peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries the
    parent's peak over into it across the fork and exec that start this worker, so it
    reported the benchmark's 1,000,000 simulated events, not the consumer."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark needs Linux")


def _pss_kib(pid: int | str = "self") -> int:
    """A process's proportional set size: its private pages, and its share of the pages it
    shares (the libraries a worker and the consumer both map count once in the sum)."""
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class ChildPeaks:
    """The peak resident memory of every child process of this one, sampled until closed;
    and the peak of the sum of this process's and its children's PSS, sampled as well."""

    def __init__(self, every: float = 0.1) -> None:
        self.peaks: dict[int, int] = {}
        self.peak_pss_sum = 0
        self._stop = threading.Event()
        self._every = every
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _children(self) -> list[int]:
        me = os.getpid()
        found = []
        for task in Path(f"/proc/{me}/task").iterdir():
            children = (task / "children").read_text().split()
            found.extend(int(c) for c in children)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            pss = _pss_kib()
            for pid in self._children():
                with contextlib.suppress(OSError):
                    pss += _pss_kib(pid)
                with contextlib.suppress(OSError, RuntimeError):  # gone, or a zombie
                    self.peaks[pid] = max(self.peaks.get(pid, 0), _peak_rss_kib(pid))
            self.peak_pss_sum = max(self.peak_pss_sum, pss)

    def close(self) -> int:
        """The sum of the children's peaks, KiB."""
        self._stop.set()
        self._thread.join()
        return sum(self.peaks.values())


def bare(bootstrap: str, topic: str, expected: int) -> None:
    client = resolve_client(load_settings().kafka_client)
    consumer = open_consumer(client, bootstrap, max_batch=DEFAULT_BATCH, timeout=10.0)
    partitions = consumer.partitions(topic, 10.0)
    consumer.assign(topic, dict.fromkeys(partitions))
    seen = 0
    started = time.perf_counter()
    while seen < expected:
        seen += len(consumer.poll(1.0, DEFAULT_BATCH, SourceMessage))
    seconds = time.perf_counter() - started
    consumer.close()
    print(json.dumps({"client": client, "events": seen, "seconds": seconds}))


def main() -> None:
    if sys.argv[1] == "--bare":
        bootstrap, topic, _, expected = sys.argv[2:6]
        bare(bootstrap, topic, int(expected))
        return
    bootstrap, topic, ledger_path, expected = sys.argv[1:5]
    settings = load_settings()
    reference = load_reference()
    stop = threading.Event()
    path = Path(ledger_path)
    children = ChildPeaks()
    with (
        Ledger(path) as ledger,
        SubjectKeyStore(path.with_name(path.name + ".keys.sqlite"), b"b" * 32) as keys,
    ):
        ingestor = Ingestor(ledger, keys, reference)
        done = {"n": 0}
        original = ingestor.commit  # consume prepares, then commits on its worker thread

        def counting(prepared):  # type: ignore[no-untyped-def]
            stats = original(prepared)
            done["n"] += stats.total
            if done["n"] >= int(expected):
                stop.set()
            return stats

        ingestor.commit = counting  # type: ignore[method-assign]
        started = time.perf_counter()
        stats = consume(
            bootstrap,
            topic,
            ingestor,
            until_idle=30.0,
            stop=stop,
            client=settings.kafka_client,  # DISCLOSURE_LEDGER_KAFKA_CLIENT
        )
        seconds = time.perf_counter() - started
    peak_kib = _peak_rss_kib()
    children_kib = children.close()
    print(
        json.dumps(
            {
                "client": resolve_client(settings.kafka_client),
                "workers": settings.ingest_workers,
                "events": stats.total,
                "accepted": stats.accepted,
                "seconds": seconds,
                "peak_rss_mb": peak_kib / 1024,
                "peak_rss_total_mb": (peak_kib + children_kib) / 1024,
                "peak_pss_total_mb": children.peak_pss_sum / 1024,
                "children": len(children.peaks),
            }
        )
    )


if __name__ == "__main__":
    main()
