"""The consumer as an operator runs it: ``disclosure-ledger consume`` in its own process.

- SIGTERM or SIGINT finishes the batch in hand, stores its offsets, closes the broker
  connection and exits 0; a later run carries on from there.
- A second consumer on the same ledger file fails at once, naming the file and the
  process holding it, and the first one carries on undisturbed.
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger.store import Ledger
from ledger.verify import verify_ledger
from tests.integration.reliability_support import (
    ConsumerProcess,
    EventFactory,
    assert_ledger_holds_exactly,
    run_seed,
    send,
    traffic,
)

pytestmark = pytest.mark.integration

SUMMARY = re.compile(
    r"(\d+) messages from .*: (\d+) appended(?: \(\d+ late\))?, (\d+) duplicates, (\d+) quarantined"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_commits_the_batch_in_hand_and_exits_0(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    signum: signal.Signals,
) -> None:
    rng = random.Random(run_seed(f"graceful stop on {signum.name}"))
    topic = new_topic(partitions=4)
    messages = traffic(rng, EventFactory(rng), 20_000, duplicates=200, poison_count=20)
    positions = send(kafka_bootstrap, topic, messages)
    ledger_path = tmp_path / "ledger.duckdb"

    consumer = ConsumerProcess(
        kafka_bootstrap, topic, ledger_path, tmp_path / "first.log", "--batch-size", "500"
    )
    consumer.wait_for_log(r"batch of \d+", times=3)
    consumer.signal(signum)
    signalled = time.monotonic()
    assert consumer.wait(timeout=30) == 0, consumer.summary()
    print(f"exited 0 {time.monotonic() - signalled:.2f} s after {signum.name}")
    log = consumer.log()
    assert f"{signum.name} received: finishing the current batch" in log
    assert "stopped on request" in log
    summary = SUMMARY.search(consumer.output())
    assert summary is not None, consumer.summary()
    total, appended, duplicates, quarantined = map(int, summary.groups())

    # Everything it reported is committed, with the offsets that go with it.
    with Ledger(ledger_path, read_only=True) as ledger:
        counts = ledger.con.execute(
            "SELECT (SELECT count(*) FROM disclosures), (SELECT count(*) FROM duplicates), "
            "(SELECT count(*) FROM quarantine)"
        ).fetchone()
        stored = ledger.stored_offsets(topic)
        verified = verify_ledger(ledger)
    assert counts == (appended, duplicates, quarantined)
    assert sum(stored.values()) == total  # offsets start at 0 on every partition
    assert verified.ok, verified.failures[:10]
    print(f"stopped after {total} of {len(messages)} messages")

    resumed = ConsumerProcess(
        kafka_bootstrap, topic, ledger_path, tmp_path / "second.log", "--until-idle", "1"
    )
    assert resumed.wait(timeout=120) == 0, resumed.summary()
    assert_ledger_holds_exactly(ledger_path, topic, messages, positions, bootstrap=kafka_bootstrap)


def test_a_second_consumer_on_the_same_ledger_is_refused_at_once(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
) -> None:
    rng = random.Random(run_seed("second writer"))
    topic = new_topic(partitions=2)
    factory = EventFactory(rng, pool=50)
    messages = traffic(rng, factory, 5_000, duplicates=50, poison_count=10)
    positions = send(kafka_bootstrap, topic, messages)
    ledger_path = tmp_path / "ledger.duckdb"

    first = ConsumerProcess(
        kafka_bootstrap,
        topic,
        ledger_path,
        tmp_path / "first.log",
        "--until-idle",
        "6",
        "--batch-size",
        "500",
    )
    first.wait_for_log(r"batch of \d+")

    started = time.monotonic()
    second = ConsumerProcess(
        kafka_bootstrap, topic, ledger_path, tmp_path / "second.log", "--until-idle", "1"
    )
    assert second.wait(timeout=30) == 1, second.summary()
    refused_after = time.monotonic() - started
    error = second.log()
    print(f"refused after {refused_after:.2f} s: {error.strip()}")
    assert refused_after < 10
    assert f"ledger file {ledger_path} is held by process {first.pid}" in error
    assert first.process.poll() is None, "the first consumer must not be disturbed"

    # The first one carries on: later events still arrive, exactly once.
    later = traffic(rng, factory, 1_000, duplicates=20)
    positions += send(kafka_bootstrap, topic, later)
    assert first.wait(timeout=120) == 0, first.summary()
    assert_ledger_holds_exactly(
        ledger_path, topic, messages + later, positions, bootstrap=kafka_bootstrap
    )
