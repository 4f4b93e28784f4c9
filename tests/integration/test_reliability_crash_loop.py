"""Crash loop: SIGKILL the consumer at random moments, at least 20 times, until it has
caught up; the ledger still holds each distinct valid event exactly once. Run with each
Kafka client (fixture ``kafka_client``); smaller with librdkafka, see ``SIZES``.

About 40,000 distinct events, 2% re-sent (a fifth of those under another key, so on
another partition) and 0.5% poison of every kind, on 4 partitions. The consumer runs as
``disclosure-ledger consume`` in a child process with small batches, so kills land in
start-up, mid-batch and mid-commit alike. The kill times come from the run's seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.reliability_support import (
    ConsumerProcess,
    EventFactory,
    assert_ledger_holds_exactly,
    kinds,
    run_seed,
    send,
    traffic,
)

pytestmark = pytest.mark.integration

# (distinct events, duplicates, poison, kills) per client: the full run with the design's
# client, half of it with librdkafka (the same code paths, to keep CI time in check)
SIZES = {
    "kafka-python": (40_000, 800, 200, 20),
    "confluent-kafka": (20_000, 400, 100, 12),
}


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    kafka_client: str,
    client_env: dict[str, str],
) -> None:
    distinct_events, duplicates, poison_count, kill_count = SIZES[kafka_client]
    seed = run_seed("crash loop")
    rng = random.Random(seed)
    topic = new_topic(partitions=4)
    began = time.monotonic()
    messages = traffic(
        rng,
        EventFactory(rng),
        distinct_events,
        duplicates=duplicates,
        poison_count=poison_count,
    )
    positions = send(kafka_bootstrap, topic, messages)
    print(f"sent {len(messages)} messages {kinds(messages)} in {time.monotonic() - began:.1f} s")

    ledger_path = tmp_path / "ledger.duckdb"
    kills = mid_ingest = rounds = 0
    began = time.monotonic()
    while kills < kill_count:
        rounds += 1
        consumer = ConsumerProcess(
            kafka_bootstrap,
            topic,
            ledger_path,
            tmp_path / f"consume-{rounds}.log",
            "--until-idle",
            "1",
            "--batch-size",
            str(rng.choice([500, 1000, 2500])),
            env=client_env,
        )
        time.sleep(rng.uniform(0.3, 2.8))
        committed_before_kill = consumer.count(r"batch of \d+")
        if consumer.kill():
            kills += 1
            mid_ingest += committed_before_kill > 0
        else:  # caught up before the kill: it must have exited cleanly
            assert consumer.process.returncode == 0, consumer.summary()
    print(
        f"{kills} SIGKILLs in {rounds} runs ({mid_ingest} after at least one committed "
        f"batch) in {time.monotonic() - began:.1f} s"
    )

    final = ConsumerProcess(
        kafka_bootstrap,
        topic,
        ledger_path,
        tmp_path / "consume-final.log",
        "--until-idle",
        "1",
        env=client_env,
    )
    assert final.wait(timeout=300) == 0, final.summary()
    print(f"caught up after the kills in {time.monotonic() - began:.1f} s: {final.output()}")

    contents = assert_ledger_holds_exactly(
        ledger_path, topic, messages, positions, bootstrap=kafka_bootstrap, context=f"seed {seed}"
    )
    assert contents.rows == distinct_events
    assert contents.duplicates == duplicates
    assert contents.quarantined == poison_count
    print(f"verified in {time.monotonic() - began:.1f} s since the first run")
