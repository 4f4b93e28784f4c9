"""The consumer's reconnection loop without a broker: the connection attempt is replaced by
one that fails a given number of times (the real broker's outages are in
tests/integration/test_reliability_broker_outage.py)."""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import pytest

import consumers.consumer as consumer_module
from consumers.consumer import Backoff, ConsumeStats, _connect
from consumers.errors import ConsumeError
from kafka_transport import TransportError

FAST = Backoff(initial=0.01, maximum=0.02)


class FlakyBroker:
    """Stands in for opening a KafkaConsumer: fails ``failures`` times, then connects."""

    def __init__(self, failures: int, on_attempt: Any = None) -> None:
        self.failures = failures
        self.attempts = 0
        self.on_attempt = on_attempt

    def __call__(
        self,
        client: str,
        bootstrap_servers: str,
        max_batch: int,
        timeout_s: float,
        connection: object = None,
    ) -> str:
        self.attempts += 1
        if self.on_attempt is not None:
            self.on_attempt(self.attempts)
        if self.attempts <= self.failures:
            raise TransportError("KafkaConnectionError: connection refused")
        return "connected"


def _run(
    monkeypatch: pytest.MonkeyPatch,
    broker: FlakyBroker,
    *,
    stop: threading.Event | None = None,
    max_outage: float | None = None,
) -> tuple[Any, ConsumeStats]:
    monkeypatch.setattr(consumer_module, "_open_consumer", broker)
    stats = ConsumeStats()
    found = _connect(
        "kafka-python", "broker:9092", 10, stop or threading.Event(), FAST, max_outage, 1.0, stats
    )
    return found, stats


def test_each_failed_attempt_is_one_numbered_warning_then_it_connects(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="consumers.consumer")
    found, stats = _run(monkeypatch, FlakyBroker(failures=3))
    assert found == "connected"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    numbers = [int(re.search(r"\(attempt (\d+)", w).group(1)) for w in warnings]  # type: ignore[union-attr]
    assert numbers == [1, 2, 3]
    assert all("broker:9092 unreachable" in w and "KafkaConnectionError" in w for w in warnings)
    assert (stats.outages, stats.reconnect_attempts) == (1, 3)
    assert any(
        "answers after" in r.getMessage() and "3 attempt" in r.getMessage() for r in caplog.records
    )


def test_a_broker_that_answers_at_once_is_no_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    found, stats = _run(monkeypatch, FlakyBroker(failures=0))
    assert found == "connected"
    assert (stats.outages, stats.reconnect_attempts) == (0, 0)


def test_it_gives_up_after_max_outage_naming_the_broker_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = FlakyBroker(failures=10**9)
    with pytest.raises(ConsumeError, match=r"giving up after --max-outage 0\.05 s") as caught:
        _run(monkeypatch, broker, max_outage=0.05)
    assert "Kafka at broker:9092 has not answered" in str(caught.value)
    assert "KafkaConnectionError" in str(caught.value)
    assert "KAFKA_BOOTSTRAP_SERVERS" in str(caught.value)
    assert broker.attempts >= 2


def test_a_stop_during_the_wait_ends_it_at_once_without_another_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    broker = FlakyBroker(failures=10**9)
    monkeypatch.setattr(consumer_module, "_open_consumer", broker)
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    slow = Backoff(initial=120.0, maximum=120.0)  # the test would time out if it slept
    found = _connect("kafka-python", "broker:9092", 10, stop, slow, None, 1.0, ConsumeStats())
    timer.join()
    assert found is None
    assert broker.attempts == 1  # the attempt after the cut-short wait never reached it


def test_a_stop_set_while_an_attempt_fails_wins_over_giving_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signal during an outage is a clean stop, even once max_outage has passed."""
    stop = threading.Event()
    broker = FlakyBroker(failures=10**9, on_attempt=lambda attempt: stop.set())
    found, _ = _run(monkeypatch, broker, stop=stop, max_outage=0.0)
    assert (found, broker.attempts) == (None, 1)


def test_a_stop_before_the_first_attempt_connects_to_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop = threading.Event()
    stop.set()
    broker = FlakyBroker(failures=0)
    found, _ = _run(monkeypatch, broker, stop=stop)
    assert (found, broker.attempts) == (None, 0)
