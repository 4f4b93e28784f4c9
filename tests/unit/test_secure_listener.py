"""The local broker's opt-in SASL_SSL listener: off by default, its files when on."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509

from disclosure_ledger.errors import BrokerError
from disclosure_ledger.local_broker import LocalBroker


def test_the_default_broker_has_no_sasl_ssl_listener(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29192, controller_port=29193)
    assert broker.secure is None
    assert "SASL" not in broker._server_properties()


def test_the_secure_listener_is_added_with_a_pem_keystore(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29192, controller_port=29193, secure_port=29194)
    properties = broker._server_properties()
    assert "listeners=PLAINTEXT://127.0.0.1:29192,SASL_SSL://127.0.0.1:29194," in properties
    assert "listener.name.sasl_ssl.ssl.keystore.type=PEM" in properties
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in properties


def test_a_secure_port_equal_to_another_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="must differ"):
        LocalBroker(tmp_path, port=29192, controller_port=29193, secure_port=29192)


def test_prepare_makes_a_ca_a_pkcs8_server_key_and_a_private_password(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=29192, controller_port=29193, secure_port=29194)
    secure = broker.secure
    assert secure is not None
    secure.prepare()
    server_pem = secure.server_file.read_text(encoding="ascii")
    assert "-----BEGIN PRIVATE KEY-----" in server_pem  # PKCS#8, as Kafka requires
    ca = x509.load_pem_x509_certificate(secure.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(server_pem.encode())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    for private in (secure.password_file, secure.server_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    password, ca_bytes = secure.password(), secure.ca_file.read_bytes()
    secure.prepare()  # a restart keeps what clients already trust
    assert (secure.password(), secure.ca_file.read_bytes()) == (password, ca_bytes)
    assert not secure.credentials_applied()
