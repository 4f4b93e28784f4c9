"""One timed ingest, in its own process so its peak resident memory is its own.

python -m bench.ingest_worker BOOTSTRAP TOPIC LEDGER EXPECTED  -> prints one JSON line
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from consumers.consumer import consume
from consumers.pipeline import Ingestor
from disclosure_ledger.settings import load_settings
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import load_reference


def _peak_rss_kib() -> int:
    """This process's own peak resident memory (VmHWM). Not ``ru_maxrss``: Linux carries the
    parent's peak over into it across the fork and exec that start this worker, so it
    reported the benchmark's 1,000,000 simulated events, not the consumer."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status: this benchmark needs Linux")


def main() -> None:
    bootstrap, topic, ledger_path, expected = sys.argv[1:5]
    reference = load_reference()
    stop = threading.Event()
    path = Path(ledger_path)
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
            client=load_settings().kafka_client,  # DISCLOSURE_LEDGER_KAFKA_CLIENT
        )
        seconds = time.perf_counter() - started
    peak_kib = _peak_rss_kib()
    print(
        json.dumps(
            {
                "events": stats.total,
                "accepted": stats.accepted,
                "seconds": seconds,
                "peak_rss_mb": peak_kib / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
