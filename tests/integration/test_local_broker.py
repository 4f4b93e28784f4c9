"""The local KRaft broker starts, serves kafka-python, stops, and survives a SIGKILL.

It runs in its own state dir under pytest's tmp_path, on a free pair of ports from 29092
up (locked for the test, so concurrent test runs on one machine take different pairs), so
it never touches the shared broker the other integration tests use; it only reuses that
broker's jars (``.local/kafka/libs``, fetched there once if missing).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker import LocalBroker
from tests.integration.ports import locked_ports

FIRST_PORT = 29092

pytestmark = [
    pytest.mark.integration,
    # kafka-python 3.0.12 uses importlib.resources APIs deprecated on Python 3.11.
    pytest.mark.filterwarnings(r"ignore:(read_text|open_text) is deprecated:DeprecationWarning"),
]


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """A (client, controller) port pair that is free and that no other test run holds."""
    with locked_ports(FIRST_PORT, 2) as port:
        yield port, port + 1


@pytest.fixture
def broker(tmp_path: Path, ports: tuple[int, int]) -> Iterator[LocalBroker]:
    local = LocalBroker(
        state_dir=tmp_path / "state",
        port=ports[0],
        controller_port=ports[1],
        heap="384m",
        libs_dir=LocalBroker().libs_dir,
    )
    try:
        yield local
    finally:
        local.stop(timeout=15)


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    producer: Any = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for value in values:
            producer.send(topic, value=value).get(timeout=30)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, TopicPartition

    consumer: Any = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while consumer.position(partition) < end and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(record.value for record in records)
        return values
    finally:
        consumer.close()


def test_start_produce_consume_stop_kill_restart(broker: LocalBroker) -> None:
    assert not broker.status().running

    address = broker.start(timeout=90)
    assert address == f"127.0.0.1:{broker.port}"
    first = broker.status()
    assert first.running and first.pid is not None
    assert first.bootstrap == address
    assert first.log_file.is_file()
    assert broker.start() == address  # already running: same broker, no second JVM
    assert broker.status().pid == first.pid

    topic = f"test.local-broker.{uuid.uuid4().hex[:8]}"
    _produce(address, topic, [b"before-stop"])
    assert _read_all(address, topic) == [b"before-stop"]

    assert broker.stop() is True
    stopped = broker.status()
    assert not stopped.running and stopped.pid is None
    assert not broker.pid_file.exists()
    assert broker.stop() is False

    assert broker.start() == address  # restarts on its existing data
    _produce(address, topic, [b"before-kill"])
    broker.kill()
    assert not broker.status().running

    assert broker.start() == address  # recovers the log after the crash
    assert broker.status().running
    assert _read_all(address, topic) == [b"before-stop", b"before-kill"]


def test_start_says_when_the_port_belongs_to_someone_else(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    other = LocalBroker(
        state_dir=tmp_path / "state",
        port=ports[0],
        controller_port=ports[1],
        libs_dir=LocalBroker().libs_dir,
    )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", ports[0]))
        squatter.listen(1)
        with pytest.raises(BrokerError, match=rf"127\.0\.0\.1:{ports[0]} is already in use by"):
            other.start(timeout=10)
    assert not other.status().running
