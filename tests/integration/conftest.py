"""Integration tests: no child process outlives the test that started it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kafka_transport import CLIENTS, EXTRA, confluent_installed
from tests.conftest import skip_missing_part
from tests.integration.reliability_support import stop_leftover_processes


@pytest.fixture(autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    stop_leftover_processes()


@pytest.fixture(scope="module", params=CLIENTS)
def kafka_client(request: pytest.FixtureRequest) -> str:
    """Each Kafka client in turn: the tests that prove a guarantee run once with each."""
    client = str(request.param)
    if client == "confluent-kafka" and not confluent_installed():
        skip_missing_part("confluent-kafka (librdkafka)", EXTRA)
    return client


@pytest.fixture(scope="module")
def client_env(kafka_client: str) -> dict[str, str]:
    """The environment a child process needs to run with ``kafka_client``."""
    return {"DISCLOSURE_LEDGER_KAFKA_CLIENT": kafka_client}
