"""Publishing and consuming over the local broker's SASL_SSL (SCRAM-SHA-512) listener, with
each Kafka client (the ``kafka_client`` fixture: kafka-python, then confluent-kafka).

The broker runs in its own state dir on a free triple of ports from 29500 up (locked, as
in test_local_broker.py) and reuses the shared broker's jars. Clients are configured the
way a user does it: through the DISCLOSURE_LEDGER_KAFKA_* variables, the client too. The
publisher and topic creation are kafka-python's whatever the setting, until they move
behind kafka_transport (docs/kafka-clients.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.consumer import Backoff, consume
from consumers.errors import ConsumeError
from consumers.pipeline import Ingestor
from disclosure_ledger.local_broker import LocalBroker
from disclosure_ledger.local_broker.secure_listener import SecureListener
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from producers.errors import PublishError
from producers.publisher import DisclosurePublisher
from producers.topics import ensure_topic
from reference import ReferenceData
from tests.integration.ports import locked_ports
from tests.unit.events import make_event

FIRST_PORT = 29500

pytestmark = [
    pytest.mark.integration,
    # kafka-python 3.0.12 uses importlib.resources APIs deprecated on Python 3.11.
    pytest.mark.filterwarnings(r"ignore:(read_text|open_text) is deprecated:DeprecationWarning"),
]


def _broker(state_dir: Path, port: int, *, secure: bool) -> LocalBroker:
    return LocalBroker(
        state_dir=state_dir,
        port=port,
        controller_port=port + 1,
        secure_port=port + 2 if secure else None,
        heap="384m",
        libs_dir=LocalBroker().libs_dir,
    )


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    with locked_ports(FIRST_PORT, 3) as port:
        broker = _broker(tmp_path_factory.mktemp("sasl-broker"), port, secure=True)
        try:
            broker.start(timeout=120)
            yield broker
        finally:
            broker.stop(timeout=15)


def _secure(broker: LocalBroker) -> SecureListener:
    assert broker.secure is not None
    return broker.secure


@pytest.fixture
def secure_env(
    secure_broker: LocalBroker, kafka_client: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The environment `broker start` prints for the SASL_SSL listener, and the client; the
    listener's bootstrap."""
    for name, value in _secure(secure_broker).client_settings().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_CLIENT", kafka_client)
    return _secure(secure_broker).bootstrap


def _events() -> list:  # type: ignore[type-arg]
    at = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    return [
        make_event(occurred_at=at, subject={"id": f"m-{i}", "type": "member"}) for i in range(5)
    ]


def test_events_cross_the_sasl_ssl_listener_once_even_after_a_refused_login(
    secure_env: str,
    kafka_client: str,
    monkeypatch: pytest.MonkeyPatch,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
) -> None:
    topic = f"test.disclosures.sasl.{uuid.uuid4().hex[:8]}"
    ensure_topic(secure_env, topic, 2)
    events = _events()
    with DisclosurePublisher(secure_env, topic) as publisher:
        for event in events:
            publisher.publish(event)

    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        # A wrong password: the consumer retries as for an unreachable broker, then gives
        # up naming the variable to fix, having written nothing.
        with monkeypatch.context() as wrong:  # a SASL password set wins over the file
            wrong.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD", "not-the-password")
            with pytest.raises(
                ConsumeError, match="DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD"
            ) as refused:
                consume(
                    secure_env,
                    topic,
                    ingestor,
                    until_idle=1.0,
                    backoff=Backoff(0.2, 0.5),
                    max_outage=2.0,
                    probe_timeout=2.0,
                    client=kafka_client,
                )
        if kafka_client == "confluent-kafka":  # librdkafka's own reason, not a guess
            assert "Authentication failed" in str(refused.value)
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (0,)

        stats = consume(secure_env, topic, ingestor, until_idle=1.0, client=kafka_client)
        assert (stats.accepted, stats.duplicates, stats.quarantined) == (5, 0, 0)
        again = consume(secure_env, topic, ingestor, until_idle=1.0, client=kafka_client)
        assert (again.accepted, again.duplicates) == (0, 0)
        stored = ledger.con.execute(
            "SELECT event_id::VARCHAR FROM disclosures WHERE topic = ? ORDER BY 1", [topic]
        ).fetchall()
    assert [row[0] for row in stored] == sorted(str(e.event_id) for e in events)


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD": "wrong"}, "KAFKA_SASL_PASSWORD"),
        ({"DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE": "OTHER_CA"}, "KAFKA_SSL_CA_FILE"),
        (
            {
                "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                "DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE": "",
                "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM": "",
            },
            "KAFKA_SECURITY_PROTOCOL",
        ),
    ],
    ids=["wrong-password", "untrusted-certificate", "wrong-protocol"],
)
def test_a_misconfigured_client_is_told_which_setting_to_fix(
    secure_env: str,
    kafka_client: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    change: dict[str, str],
    setting: str,
) -> None:
    other = SecureListener(1, tmp_path / "other")  # a CA that never signed the broker's cert
    other.prepare()
    for name, value in change.items():  # a SASL password set wins over the password file
        monkeypatch.setenv(name, str(other.ca_file) if value == "OTHER_CA" else value)
    with pytest.raises(PublishError, match=f"DISCLOSURE_LEDGER_{setting}"):
        DisclosurePublisher(secure_env, "test.disclosures.never", timeout=3)
    # The consumer retries as for an unreachable broker, then gives up naming the setting.
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(ledger, key_store, reference)
        with pytest.raises(ConsumeError, match=f"DISCLOSURE_LEDGER_{setting}"):
            consume(
                secure_env,
                "test.disclosures.never",
                ingestor,
                until_idle=1.0,
                backoff=Backoff(0.2, 0.5),
                max_outage=1.0,
                probe_timeout=2.0,
                client=kafka_client,
            )


def test_a_broker_formatted_without_the_listener_gets_the_scram_user_later(
    tmp_path: Path,
) -> None:
    """Storage formatted by a plain start: the secure start adds the user (kafka-configs)."""
    with locked_ports(FIRST_PORT, 3) as port:
        plain = _broker(tmp_path / "state", port, secure=False)
        try:
            plain.start(timeout=120)
            plain.stop(timeout=15)
            secure = _broker(tmp_path / "state", port, secure=True)
            secure.start(timeout=120)  # returns once a SCRAM client lists topics over TLS
            listener = _secure(secure)
            assert listener.credentials_applied()
            topic = f"test.disclosures.later.{uuid.uuid4().hex[:8]}"
            with pytest.MonkeyPatch.context() as env:
                for name, value in listener.client_settings().items():
                    env.setenv(name, value)
                assert ensure_topic(listener.bootstrap, topic) is True
        finally:
            plain.stop(timeout=15)
