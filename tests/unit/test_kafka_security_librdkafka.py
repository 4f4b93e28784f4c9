"""The connection settings mean the same with confluent-kafka (librdkafka) as with
kafka-python: mapped to librdkafka's names and accepted by librdkafka itself; OAUTHBEARER
passed through to it; librdkafka's connection errors turned into the setting to fix."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from disclosure_ledger import kafka_security
from disclosure_ledger.errors import KafkaSecurityError
from disclosure_ledger.kafka_security import KafkaSecurity, connection_config, connection_hint
from disclosure_ledger.local_broker.secure_listener import SecureListener
from disclosure_ledger.settings import Settings
from kafka_transport import EXTRA, ClientConfigError, TransportError
from tests.conftest import skip_missing_part

if importlib.util.find_spec("confluent_kafka") is None:
    skip_missing_part("confluent-kafka (librdkafka)", EXTRA)

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from kafka_transport import confluent

NOWHERE = "127.0.0.1:1"  # nothing listens: librdkafka only checks its configuration
OIDC = {
    "method": "oidc",
    "client.id": "disclosure-ledger",
    "client.secret": "oauth-s3cret",
    "token.endpoint.url": "http://127.0.0.1:1/token",
    "sasl.oauthbearer.scope": "kafka",  # the prefix may be written out
}


@pytest.fixture
def tls_files(tmp_path: Path) -> SecureListener:
    """A real CA and a certificate with its key (the local broker's generator)."""
    files = SecureListener(1, tmp_path / "tls")
    files.prepare()
    return files


@pytest.fixture
def sasl_ssl_env(monkeypatch: pytest.MonkeyPatch, tls_files: SecureListener) -> None:
    for name, value in {
        "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE": str(tls_files.ca_file),
        "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "DISCLOSURE_LEDGER_KAFKA_SASL_USERNAME": "ledger",
        "DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD": "s3cret",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def oauth_env(monkeypatch: pytest.MonkeyPatch, tls_files: SecureListener) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE", str(tls_files.ca_file))
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM", "oauthbearer")
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER", json.dumps(OIDC))


def _librdkafka_accepts(config: dict[str, Any]) -> None:
    """librdkafka checks every property name and value, and loads the TLS files, when a
    client is created; nothing listens at NOWHERE, so nothing is sent."""
    producer = confluent_kafka.Producer({**config, "logger": confluent._LibrdkafkaLog()})
    assert producer.flush(0) == 0


def test_sasl_ssl_settings_map_to_librdkafka_names_and_librdkafka_takes_them(
    sasl_ssl_env: None, tls_files: SecureListener
) -> None:
    config = confluent.connection_config(NOWHERE, connection_config("confluent-kafka"))
    assert config == {
        "bootstrap.servers": NOWHERE,
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(tls_files.ca_file),
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ledger",
        "sasl.password": "s3cret",
    }
    _librdkafka_accepts(config)
    # the consumer and the producer are built on the same mapping
    consumer = confluent.consumer_config(
        NOWHERE, max_batch=10, timeout=1, connection=connection_config("confluent-kafka")
    )
    producer = confluent.producer_config(
        NOWHERE, timeout=1, acks="all", connection=connection_config("confluent-kafka")
    )
    assert consumer.items() >= config.items()
    assert producer.items() >= config.items()


def test_mutual_tls_without_a_hostname_check_maps_to_librdkafka(
    tls_files: SecureListener,
) -> None:
    security = KafkaSecurity(
        protocol="SSL",
        ca_file=tls_files.ca_file,
        cert_file=tls_files.server_file,  # one PEM file holding the key and the certificate
        key_file=tls_files.server_file,
        check_hostname=False,
    )
    config = confluent.connection_config(NOWHERE, connection_config("confluent-kafka", security))
    assert config == {
        "bootstrap.servers": NOWHERE,
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.ca.location": str(tls_files.ca_file),
        "ssl.certificate.location": str(tls_files.server_file),
        "ssl.key.location": str(tls_files.server_file),
    }
    _librdkafka_accepts(config)
    with_password = KafkaSecurity(
        protocol="SSL",
        cert_file=tls_files.server_file,
        key_file=tls_files.server_file,
        key_password=SecretStr("kp"),
    )
    mapped = confluent.connection_config(
        NOWHERE, connection_config("confluent-kafka", with_password)
    )
    assert mapped["ssl.key.password"] == "kp"


def test_the_documented_librdkafka_names_are_the_ones_the_client_uses() -> None:
    documented = {name.split(" ")[0] for name in kafka_security.LIBRDKAFKA_NAMES.values()}
    assert set(confluent.LIBRDKAFKA_NAMES.values()) <= documented


def test_a_connection_argument_without_a_librdkafka_meaning_is_refused_not_dropped() -> None:
    with pytest.raises(ClientConfigError, match="ssl_crlfile"):
        confluent.connection_config(NOWHERE, {"ssl_crlfile": "/etc/crl.pem"})


def test_oauthbearer_passes_its_settings_through_to_librdkafka(
    oauth_env: None, tls_files: SecureListener
) -> None:
    settings = Settings()
    assert "oauth-s3cret" not in repr(settings)
    security = KafkaSecurity.from_settings(settings)
    assert "oauth-s3cret" not in repr(security)
    assert "oauth-s3cret" not in security.describe()
    config = confluent.connection_config(NOWHERE, connection_config("confluent-kafka", security))
    assert config == {
        "bootstrap.servers": NOWHERE,
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(tls_files.ca_file),
        "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.method": "oidc",
        "sasl.oauthbearer.client.id": "disclosure-ledger",
        "sasl.oauthbearer.client.secret": "oauth-s3cret",
        "sasl.oauthbearer.token.endpoint.url": "http://127.0.0.1:1/token",
        "sasl.oauthbearer.scope": "kafka",
    }
    _librdkafka_accepts(config)


def test_oauthbearer_with_kafka_python_names_the_client_setting(oauth_env: None) -> None:
    with pytest.raises(KafkaSecurityError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT=confluent-kafka"):
        connection_config("kafka-python")
    with pytest.raises(KafkaSecurityError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT=confluent-kafka"):
        kafka_security.kafka_python_config()


def test_the_consumer_takes_the_configured_client_for_a_secured_connection(
    sasl_ssl_env: None, oauth_env: None
) -> None:
    from consumers.consumer import _client_for
    from consumers.errors import ConsumeError

    client, connection = _client_for("confluent-kafka")
    assert client == "confluent-kafka"
    assert connection["sasl.oauthbearer.method"] == "oidc"
    with pytest.raises(ConsumeError, match="DISCLOSURE_LEDGER_KAFKA_CLIENT=confluent-kafka"):
        _client_for("kafka-python")


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ('{"client.secret": "oauth-s3cret",', "is not JSON"),
        ('["oauth-s3cret"]', "must be a JSON object"),
        ('{"client.secret": ["oauth-s3cret"]}', "must be a string"),
    ],
    ids=["not-json", "not-an-object", "not-a-string"],
)
def test_a_malformed_oauthbearer_setting_is_named_without_its_secret(
    monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER", value)
    with pytest.raises(KafkaSecurityError, match="DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER") as e:
        KafkaSecurity.from_settings(Settings())
    assert named in str(e.value)
    assert "oauth-s3cret" not in str(e.value)


def test_oauthbearer_settings_without_the_mechanism_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER", json.dumps(OIDC))
    with pytest.raises(KafkaSecurityError, match="DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM"):
        connection_config("confluent-kafka")


def test_a_setting_librdkafka_does_not_know_is_refused_at_once_not_retried(
    oauth_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER", json.dumps({**OIDC, "client.idd": "x"})
    )
    with pytest.raises(ClientConfigError, match=r"sasl\.oauthbearer\.client\.idd") as e:
        confluent.Producer(NOWHERE, timeout=1, connection=connection_config("confluent-kafka"))
    assert not isinstance(e.value, TransportError)  # the consumer retries TransportError only


def _librdkafka_error(code: int, text: str) -> KafkaException:
    return KafkaException(KafkaError(code, text))


def test_librdkafka_connection_errors_name_the_setting_to_fix(sasl_ssl_env: None) -> None:
    security = KafkaSecurity.from_settings()
    refused = _librdkafka_error(
        KafkaError._AUTHENTICATION,
        "sasl_ssl://127.0.0.1:1/bootstrap: SASL authentication error: Authentication failed "
        "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512",
    )
    assert "DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD" in connection_hint(NOWHERE, refused, security)
    no_mechanism = _librdkafka_error(
        KafkaError._AUTHENTICATION,
        "sasl_plaintext://127.0.0.1:1/bootstrap: SASL SCRAM-SHA-512 mechanism handshake "
        "failed: Broker: Request not valid in current SASL state: broker's supported mechanisms: ",
    )
    assert "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM" in connection_hint(
        NOWHERE, no_mechanism, security
    )
    untrusted = _librdkafka_error(
        KafkaError._SSL,
        "sasl_ssl://127.0.0.1:1/bootstrap: SSL handshake failed: error:0A000086:SSL "
        "routines::certificate verify failed: broker certificate could not be verified",
    )
    assert "DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE" in connection_hint(NOWHERE, untrusted, security)
    answered = _librdkafka_error(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic")
    assert connection_hint(NOWHERE, answered, security) == ""


def test_librdkafka_s_reason_reaches_the_transport_error_of_the_call_that_timed_out(
    sasl_ssl_env: None,
) -> None:
    errors = confluent.ErrorLog()
    reason = KafkaError(
        KafkaError._AUTHENTICATION,
        "SASL authentication error: Authentication failed during authentication due to "
        "invalid credentials with SASL mechanism SCRAM-SHA-512",
    )
    errors(reason)
    errors(KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers are down"))  # says no why
    timed_out = _librdkafka_error(KafkaError._TRANSPORT, "Failed to get metadata")
    error = confluent._error(timed_out, errors)
    assert "Authentication failed" in str(error)
    assert isinstance(error.__cause__, KafkaException)
    hint = connection_hint(NOWHERE, error.__cause__, KafkaSecurity.from_settings())
    assert "refused the SASL credentials" in hint
    # an error that says what went wrong itself gets no borrowed reason
    answered = confluent._error(_librdkafka_error(KafkaError.UNKNOWN_TOPIC_OR_PART, "x"), errors)
    assert "Authentication failed" not in str(answered)
