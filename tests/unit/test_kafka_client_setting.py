"""DISCLOSURE_LEDGER_KAFKA_CLIENT: which Kafka client a setting means, and the error when
the one asked for is not installed."""

from __future__ import annotations

import pytest

import kafka_transport
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.settings import Settings
from kafka_transport import ClientNotInstalledError, TransportError, resolve_client


def test_auto_prefers_librdkafka_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_transport, "confluent_installed", lambda: True)
    assert resolve_client("auto") == "confluent-kafka"
    assert resolve_client(None) == "confluent-kafka"
    assert resolve_client("kafka-python") == "kafka-python"


def test_auto_falls_back_to_kafka_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_transport, "confluent_installed", lambda: False)
    assert resolve_client("auto") == "kafka-python"


def test_asking_for_a_missing_librdkafka_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kafka_transport, "confluent_installed", lambda: False)
    with pytest.raises(ClientNotInstalledError) as raised:
        resolve_client("confluent-kafka")
    message = str(raised.value)
    assert "DISCLOSURE_LEDGER_KAFKA_CLIENT" in message
    assert "pip install 'disclosure-ledger[librdkafka]'" in message
    assert isinstance(raised.value, DisclosureLedgerError)


def test_the_setting_is_read_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_CLIENT", "kafka-python")
    assert Settings().kafka_client == "kafka-python"
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_CLIENT", "librdkafka")
    with pytest.raises(TransportError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT='librdkafka'"):
        resolve_client(Settings().kafka_client)
    monkeypatch.delenv("DISCLOSURE_LEDGER_KAFKA_CLIENT")
    assert Settings().kafka_client == "auto"


def test_a_secured_connection_takes_the_configured_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consumers.consumer import _client_for

    monkeypatch.setattr(kafka_transport, "confluent_installed", lambda: True)
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_USERNAME", "ledger")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD", "s3cret")
    for setting, client in [
        ("auto", "confluent-kafka"),
        ("confluent-kafka", "confluent-kafka"),
        ("kafka-python", "kafka-python"),
    ]:
        chosen, connection = _client_for(setting)
        assert chosen == client
        assert connection["security_protocol"] == "SASL_PLAINTEXT"


@pytest.mark.parametrize(
    "argv",
    [
        ["publish", "/nonexistent/events.jsonl"],
        ["simulate", "--events", "3", "--bootstrap-servers", "127.0.0.1:1"],
    ],
)
def test_the_publishing_commands_refuse_an_unknown_client_before_anything_else(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from disclosure_ledger.cli import main

    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_CLIENT", "kafka-java")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "DISCLOSURE_LEDGER_KAFKA_CLIENT='kafka-java' is not a Kafka client" in err
    assert "nonexistent" not in err  # refused before the input was read
