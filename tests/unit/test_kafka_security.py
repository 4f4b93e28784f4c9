"""The Kafka connection settings map to kafka-python's arguments, or fail naming the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from disclosure_ledger.errors import KafkaSecurityError
from disclosure_ledger.kafka_security import KafkaSecurity, kafka_python_config
from disclosure_ledger.settings import Settings

SASL_ENV = {
    "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
    "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM": "scram-sha-512",
    "DISCLOSURE_LEDGER_KAFKA_SASL_USERNAME": "ledger",
}


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n", encoding="ascii")
    return path


def test_the_default_is_plaintext_with_nothing_else() -> None:
    assert kafka_python_config(KafkaSecurity()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_settings_from_the_environment_map_to_kafka_python(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, ca_file: Path
) -> None:
    password_file = tmp_path / "password"
    password_file.write_text("s3cret\n", encoding="utf-8")
    for name, value in SASL_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE", str(ca_file))
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD_FILE", str(password_file))
    settings = Settings()
    assert isinstance(settings.kafka_sasl_password, SecretStr | None)
    assert "s3cret" not in repr(settings)
    assert kafka_python_config(KafkaSecurity.from_settings(settings)) == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(ca_file),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ledger",
        "sasl_plain_password": "s3cret",
    }


def test_mutual_tls_passes_the_client_certificate_and_key(tmp_path: Path, ca_file: Path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    cert.write_text("x", encoding="ascii")
    key.write_text("x", encoding="ascii")
    config = kafka_python_config(
        KafkaSecurity(
            protocol="SSL",
            ca_file=ca_file,
            cert_file=cert,
            key_file=key,
            key_password=SecretStr("kp"),
        )
    )
    assert config["ssl_certfile"] == str(cert)
    assert config["ssl_keyfile"] == str(key)
    assert config["ssl_password"] == "kp"
    assert "sasl_mechanism" not in config


@pytest.mark.parametrize(
    ("security", "named"),
    [
        (KafkaSecurity(protocol="SASL_SSL"), "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM"),
        (
            KafkaSecurity(protocol="SASL_SSL", sasl_mechanism="PLAIN"),
            "DISCLOSURE_LEDGER_KAFKA_SASL_USERNAME",
        ),
        (
            KafkaSecurity(protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u"),
            "DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD",
        ),
        (
            KafkaSecurity(
                protocol="SASL_SSL",
                sasl_mechanism="OAUTHBEARER",
                sasl_username="u",
                sasl_password=SecretStr("p"),
            ),
            "librdkafka",
        ),
        (KafkaSecurity(protocol="SSL", ca_file=Path("/no/such/ca.pem")), "SSL_CA_FILE"),
        (KafkaSecurity(protocol="SSL", cert_file=Path(__file__)), "SSL_KEY_FILE"),
        (KafkaSecurity(ca_file=Path(__file__)), "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL"),
        (KafkaSecurity(sasl_mechanism="PLAIN"), "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL"),
    ],
    ids=[
        "no-mechanism",
        "no-username",
        "no-password",
        "oauthbearer",
        "missing-ca",
        "cert-without-key",
        "tls-file-without-tls",
        "sasl-without-sasl",
    ],
)
def test_incomplete_settings_name_the_variable_to_set(security: KafkaSecurity, named: str) -> None:
    with pytest.raises(KafkaSecurityError, match=named):
        kafka_python_config(security)


def test_an_unreadable_password_file_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "nope"))
    with pytest.raises(KafkaSecurityError, match="DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD_FILE"):
        KafkaSecurity.from_settings(Settings())


def test_an_unknown_protocol_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError, match="kafka_security_protocol"):
        Settings()


def test_the_consumer_and_the_publisher_refuse_incomplete_settings_before_connecting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from consumers.consumer import consume
    from consumers.errors import ConsumeError
    from producers.errors import PublishError
    from producers.publisher import DisclosurePublisher

    for name, value in SASL_ENV.items():
        monkeypatch.setenv(name, value)  # no password
    with pytest.raises(ConsumeError, match="DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD"):
        consume("127.0.0.1:1", "topic", ingestor=None)  # type: ignore[arg-type]
    with pytest.raises(PublishError, match="DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD"):
        DisclosurePublisher("127.0.0.1:1", "topic")
