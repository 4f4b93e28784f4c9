"""Broker outages, on a broker of this module's own (ports 39092/39093, state under
tmp_path, the shared broker's jars), so stopping it disturbs no other test.

- The consumer rides out a broker crash in the middle of ingesting: one log line per
  reconnection attempt, no busy loop, and on the broker's return it carries on from the
  ledger's offsets, losing and doubling nothing.
- While the broker is away, the publisher library (in a child process: see
  publisher_process.py) and ``publish``, with each Kafka client, report every event as
  undelivered (nothing as sent that was not acknowledged), ``publish --undelivered``
  writes them out for replay, a consumer started meanwhile waits for the broker, a stop
  signal still ends it cleanly, and ``--max-outage`` turns the wait into an error.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.local_broker import LocalBroker
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.publisher import publish_events
from producers.topics import ensure_topic
from schemas.model import DisclosureEvent
from tests.integration.reliability_support import (
    CLI,
    LIVE_PROCESSES,
    ConsumerProcess,
    EventFactory,
    assert_ledger_holds_exactly,
    run_seed,
    send,
    traffic,
)
from tests.unit.events import make_event

PORT = 39092
CONTROLLER_PORT = 39093
ATTEMPT = r"Kafka at 127\.0\.0\.1:39092 unreachable \(attempt \d+"

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    local = LocalBroker(
        state_dir=tmp_path_factory.mktemp("outage-broker"),
        port=PORT,
        controller_port=CONTROLLER_PORT,
        heap="384m",
        libs_dir=LocalBroker().libs_dir,
    )
    try:
        local.start(timeout=120)
        yield local
    finally:
        local.stop(timeout=15)


@pytest.fixture
def running(broker: LocalBroker) -> Iterator[LocalBroker]:
    """The module's broker, up at the start and at the end of the test."""
    broker.start(timeout=120)
    yield broker
    broker.start(timeout=120)


def _topic(bootstrap: str, partitions: int) -> str:
    name = f"test.disclosures.outage.{uuid.uuid4().hex[:8]}"
    ensure_topic(bootstrap, name, partitions)
    return name


def test_the_consumer_rides_out_a_broker_crash_mid_ingest(
    running: LocalBroker,
    tmp_path: Path,
    subject_secret_env: str,
    kafka_client: str,
    client_env: dict[str, str],
) -> None:
    rng = random.Random(run_seed("broker crash mid-ingest"))
    bootstrap = running.bootstrap
    topic = _topic(bootstrap, 4)
    factory = EventFactory(rng)
    # a third of the events with librdkafka: the same outage, less CI time
    size = 30_000 if kafka_client == "kafka-python" else 10_000
    messages = traffic(rng, factory, size, duplicates=size // 100, poison_count=30)
    positions = send(bootstrap, topic, messages)
    ledger_path = tmp_path / "ledger.duckdb"
    consumer = ConsumerProcess(
        bootstrap,
        topic,
        ledger_path,
        tmp_path / "consume.log",
        "--until-idle",
        "2",
        "--batch-size",
        "1000",
        env=client_env,
    )
    consumer.wait_for_log(r"batch of \d+", times=3)

    running.kill()  # SIGKILL: the broker crashes mid-ingest
    consumer.wait_for_log(ATTEMPT, timeout=60)
    cpu_before, watched_from = consumer.cpu_seconds(), time.monotonic()
    time.sleep(3)
    cpu = consumer.cpu_seconds() - cpu_before
    watched = time.monotonic() - watched_from
    print(f"consumer used {cpu:.2f} s of CPU in {watched:.1f} s without a broker")
    assert consumer.process.poll() is None, consumer.summary()
    assert cpu < 0.25 * watched, "the consumer busy-loops while the broker is away"

    running.start(timeout=120)
    later = traffic(rng, factory, 2_000, duplicates=20, poison_count=5)
    positions += send(bootstrap, topic, later)
    assert consumer.wait(timeout=180) == 0, consumer.summary()
    log = consumer.log()
    attempts = re.findall(ATTEMPT.replace(r"\d+", r"(\d+)"), log)
    print(f"{len(attempts)} reconnection attempts logged; {consumer.output().strip()}")
    assert [int(n) for n in attempts] == list(range(1, len(attempts) + 1))
    assert len(attempts) >= 2  # one line per attempt, while the broker restarted
    assert "answers again after" in log
    assert "rode out 1 broker outage(s)" in consumer.output()
    assert_ledger_holds_exactly(
        ledger_path, topic, messages + later, positions, bootstrap=bootstrap
    )


def _ids(events: list[DisclosureEvent]) -> list[str]:
    return [str(event.event_id) for event in events]


def _library(
    bootstrap: str, topic: str, events_file: Path, mode: str, env: dict[str, str]
) -> subprocess.Popen[str]:
    """The publisher library in its own process (see publisher_process.py for why), with
    the Kafka client ``env`` names."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.publisher_process",
            *(bootstrap, topic, str(events_file), "2", mode),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    LIVE_PROCESSES.append(process)
    return process


def _result(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_while_the_broker_is_away_nothing_is_reported_sent_and_consumers_wait(
    running: LocalBroker, tmp_path: Path, subject_secret_env: str, client_env: dict[str, str]
) -> None:
    bootstrap = running.bootstrap
    topic = _topic(bootstrap, 2)
    events = [make_event(subject={"id": f"member-{n}", "type": "member"}) for n in range(31)]
    batches = {"first": events[:11], "late": events[11:21], "command": events[21:]}
    files = {}
    for name, batch in batches.items():
        files[name] = tmp_path / f"{name}.jsonl"
        files[name].write_text("".join(e.to_json_line() + "\n" for e in batch), encoding="utf-8")

    # The library, connected before the outage (it delivers the first event) ...
    connected = _library(bootstrap, topic, files["first"], "connect-first", client_env)
    assert connected.stdout is not None and connected.stdin is not None
    assert connected.stdout.readline().strip() == "connected"
    running.stop()
    connected.stdin.write("go\n")
    connected.stdin.flush()
    ledger_path = tmp_path / "ledger.duckdb"
    waiting = ConsumerProcess(
        bootstrap, topic, ledger_path, tmp_path / "waiting.log", "--until-idle", "2"
    )
    quitter = ConsumerProcess(
        bootstrap,
        topic,
        tmp_path / "quitter.duckdb",
        tmp_path / "quitter.log",
        "--max-outage",
        "3",
    )
    stopped = ConsumerProcess(
        bootstrap, topic, tmp_path / "stopped.duckdb", tmp_path / "stopped.log"
    )
    # ... and one connecting during the outage: neither reports anything as delivered.
    late = _library(bootstrap, topic, files["late"], "connect-late", client_env)
    first_result, late_result = _result(connected), _result(late)
    assert first_result["delivered"] == 0
    assert [i for i, _ in first_result["undelivered"]] == _ids(events[1:11])
    assert late_result["delivered"] == 0
    assert [i for i, _ in late_result["undelivered"]] == _ids(events[11:21])
    assert all("cannot reach Kafka" in error for _, error in late_result["undelivered"])
    print("undelivered because:", first_result["undelivered"][0][1])

    # The command exits 1 and writes what it could not deliver, to replay.
    replay = tmp_path / "undelivered.jsonl"
    publish = [str(CLI), "publish", "--bootstrap-servers", bootstrap, "--topic", topic]
    refused = subprocess.run(
        [*publish, "--timeout", "2", "--undelivered", str(replay), str(files["command"])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **client_env},
    )
    assert refused.returncode == 1, refused.stderr
    assert "0 delivered, 10 not delivered" in refused.stdout
    assert replay.read_text(encoding="utf-8") == files["command"].read_text(encoding="utf-8")

    # Consumers started meanwhile wait, logging each attempt; a signal still stops one
    # at once, and --max-outage gives up with an error.
    waiting.wait_for_log(ATTEMPT, times=2, timeout=60)
    stopped.wait_for_log(ATTEMPT, times=1, timeout=60)
    stopped.signal(signal.SIGTERM)
    assert stopped.wait(timeout=15) == 0, stopped.summary()
    assert quitter.wait(timeout=60) == 1, quitter.summary()
    assert "giving up after --max-outage 3 s" in quitter.log()
    assert waiting.process.poll() is None, waiting.summary()

    running.start(timeout=120)
    missed = {i for i, _ in first_result["undelivered"] + late_result["undelivered"]}
    replayed = publish_events(
        bootstrap, topic, [e for e in events if str(e.event_id) in missed], timeout=30
    )
    assert replayed.ok and replayed.delivered == 20
    from_file = subprocess.run(
        [*publish, str(replay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert from_file.returncode == 0, from_file.stderr
    assert "10 delivered, 0 not delivered" in from_file.stdout

    assert waiting.wait(timeout=120) == 0, waiting.summary()
    with Ledger(ledger_path, read_only=True) as ledger:
        rows = ledger.con.execute("SELECT event_id::VARCHAR FROM disclosures").fetchall()
        quarantined = ledger.con.execute("SELECT count(*) FROM quarantine").fetchone()
        verified = verify_ledger(ledger)
    assert sorted(r[0] for r in rows) == sorted(_ids(events))
    assert quarantined == (0,)
    assert verified.ok, verified.failures
