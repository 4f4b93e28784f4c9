"""Several ledger services over one lake (issue 21): three `disclosure-ledger serve`
processes in one Kafka consumer group split a 6-partition topic and append to one DuckLake
on a real PostgreSQL server, while the test SIGKILLs one instance after another and scales
them from 3 to 2 to 3, with traffic flowing throughout. At the end every offset is
accounted for, each distinct event is in the lake once, every chain is gapless and the lake
verifies (:func:`~tests.integration.reliability_support.assert_ledger_holds_exactly`).

Real broker, real PostgreSQL, real DuckLake; nothing mocked. Bounded for CI: a few
thousand events, with small batches so that kills land mid-batch and mid-commit, and a
6-second group session so a killed instance's partitions move on quickly.
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.service.auth.roles import Role
from ledger.store import Ledger
from tests.conftest import LakeLocation, LedgerLocation, cli_argument
from tests.integration.reliability_support import (
    EventFactory,
    Sent,
    assert_ledger_holds_exactly,
    run_seed,
    send,
    traffic,
)
from tests.integration.service_process import ServiceProcess, issue_token

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True),
    # with librdkafka, the client `auto` chooses: the group's protocol is tested with both
    # clients in test_consumer_group.py; this scenario costs ~90 s a run
    pytest.mark.parametrize("kafka_client", ["confluent-kafka"], indirect=True),
]

DISTINCT, DUPLICATES, POISON = 3_000, 60, 15
PARTITIONS = 6
SESSION_TIMEOUT = "6"  # seconds: the broker's group.min.session.timeout.ms allows it


class _Traffic(threading.Thread):
    """Publishes the messages in small portions over about ``seconds``, so that the
    instances' starts, kills and rebalances all happen while events arrive."""

    def __init__(self, bootstrap: str, topic: str, messages: Sequence[Sent], seconds: float):
        super().__init__(name="traffic", daemon=True)
        self.bootstrap, self.topic, self.messages = bootstrap, topic, messages
        self.portions = 40
        self.pause = seconds / self.portions
        self.positions: list[tuple[int, int]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            size = -(-len(self.messages) // self.portions)
            for start in range(0, len(self.messages), size):
                self.positions += send(
                    self.bootstrap, self.topic, self.messages[start : start + size]
                )
                time.sleep(self.pause)
        except BaseException as exc:  # reported by the test
            self.error = exc


class _Instances:
    """The services of the test, each a `serve` child process with its own local path (as
    on its own machine) and its own log."""

    def __init__(
        self,
        lake: LakeLocation,
        tmp_path: Path,
        bootstrap: str,
        topic: str,
        env: dict[str, str],
    ) -> None:
        self.lake, self.tmp_path, self.bootstrap, self.topic = lake, tmp_path, bootstrap, topic
        self.env = env
        self.started: dict[str, ServiceProcess] = {}

    def start(self, name: str) -> ServiceProcess:
        local = self.tmp_path / name / "ledger"
        local.parent.mkdir()
        service = ServiceProcess(
            local,
            self.tmp_path / f"{name}.log",
            "--topic",
            self.topic,
            "--bootstrap-servers",
            self.bootstrap,
            "--no-checkpoints",
            "--batch-size",
            "200",
            env={**self.env, "DISCLOSURE_LEDGER_LAKE_LOCAL_PATH": str(local)},
            location=cli_argument(self.lake),
        )
        self.started[name] = service
        return service

    def running(self) -> list[ServiceProcess]:
        return [s for s in self.started.values() if s.process.poll() is None]

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{s.log()[-2500:]}" for name, s in self.started.items())


def _ingested(lake: LakeLocation, topic: str) -> int:
    """How many messages of the topic the lake has accounted for (its stored offsets)."""
    with Ledger(lake, read_only=True) as ledger:
        return sum(ledger.stored_offsets(topic).values())


def _wait_for(
    what: str, done: Callable[[], bool], instances: _Instances, timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout:.0f} s\n{instances.logs()}")
        time.sleep(0.5)


@pytest.mark.timeout(420)
def test_three_services_killed_and_scaled_ingest_every_event_exactly_once(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_location: LedgerLocation,
    tmp_path: Path,
    subject_secret_env: str,
    client_env: dict[str, str],
) -> None:
    assert isinstance(ledger_location, LakeLocation)
    lake = ledger_location
    rng = random.Random(run_seed("lake instances"))
    topic = new_topic(partitions=PARTITIONS)
    messages = traffic(rng, EventFactory(rng), DISTINCT, duplicates=DUPLICATES, poison_count=POISON)
    env = {
        **client_env,
        "DISCLOSURE_LEDGER_CONSUMER_GROUP": f"ledger-{topic}",
        "DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT": SESSION_TIMEOUT,
    }
    instances = _Instances(lake, tmp_path, kafka_bootstrap, topic, env)
    # the lake's tables are made before the services start
    assert main(["migrate", "--ledger", cli_argument(lake)]) == 0
    publisher = _Traffic(kafka_bootstrap, topic, messages, seconds=12.0)
    publisher.start()

    a, b, c = (instances.start(n) for n in ("a", "b", "c"))
    for service in (a, b, c):
        service.wait_ready()
    total = len(messages)
    _wait_for("ingesting", lambda: _ingested(lake, topic) > 0, instances)

    def moves_on(by: int) -> None:
        before = _ingested(lake, topic)
        _wait_for(
            f"past {before + by} messages",
            lambda: _ingested(lake, topic) >= min(before + by, len(publisher.positions) or by),
            instances,
        )

    b.process.kill()  # SIGKILL, mid-batch or mid-commit: its partitions move on
    b.process.wait(30)
    moves_on(150)
    b2 = instances.start("b2")
    b2.wait_ready()
    c.process.kill()  # 3 -> 2: a and b2 take c's partitions
    c.process.wait(30)
    moves_on(150)
    c2 = instances.start("c2")  # 2 -> 3
    c2.wait_ready()
    moves_on(150)
    a.process.kill()
    a.process.wait(30)
    a2 = instances.start("a2")
    a2.wait_ready()

    publisher.join(120)
    assert publisher.error is None, publisher.error
    assert len(publisher.positions) == total
    _wait_for("caught up", lambda: _ingested(lake, topic) == total, instances, timeout=180)
    # every instance answers for the whole lake, to a token made once in its shared accounts
    auditor = issue_token(lake, Role.auditor)
    rows = {
        service.port: service.json("/api/v1/status", auditor)["rows"] for service in (a2, b2, c2)
    }
    assert set(rows.values()) == {DISTINCT}, rows
    for service in instances.running():
        service.process.send_signal(signal.SIGTERM)
    for service in (b2, c2, a2):
        assert service.process.wait(60) == 0, instances.logs()

    # the instances split the partitions: some instance was given fewer than all six
    given = [
        set(map(int, found.split(", ")))
        for service in instances.started.values()
        for found in re.findall(r"the group gave \S+ partitions \[([\d, ]+)\]", service.log())
    ]
    assert given and any(len(parts) < PARTITIONS for parts in given), instances.logs()
    assert_ledger_holds_exactly(
        lake,
        topic,
        messages,
        publisher.positions,
        bootstrap=kafka_bootstrap,
        context="three instances, SIGKILLed and scaled 3 -> 2 -> 3",
    )
