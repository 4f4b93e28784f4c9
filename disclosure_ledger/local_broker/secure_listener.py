"""The local broker's optional second listener: SASL_SSL with SCRAM-SHA-512 on 127.0.0.1.

Opt-in (``LocalBroker(secure_port=...)``, ``DISCLOSURE_LEDGER_BROKER_SASL_SSL_PORT``), so
the default broker is unchanged. Its files live in ``<state_dir>/kafka/secure/``::

    ca.pem              the CA clients trust (DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE)
    server.pem          the broker's certificate (localhost, 127.0.0.1) and its PKCS#8 key
    sasl-password       the SCRAM user's password (mode 0600; the user: SCRAM_USER)
    scram-applied       which credentials the broker's metadata already holds

Certificates are made with ``cryptography`` when missing or within a day of expiry (a new
CA then: clients must read ca.pem again). The SCRAM credentials go into the storage when
it is formatted (``kafka-storage format --add-scram``, KIP-900); a broker whose storage
already exists gets them through ``kafka-configs --alter`` over its PLAINTEXT listener.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from disclosure_ledger.kafka_security import KafkaSecurity
from disclosure_ledger.local_broker.processes import HOST
from disclosure_ledger.local_broker.state_files import atomic_write

__all__ = ["SCRAM_MECHANISM", "SCRAM_USER", "SecureListener"]

SCRAM_USER = "disclosure-ledger"
SCRAM_MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"
_VALID_DAYS = 825
_RENEW_BEFORE = dt.timedelta(days=1)


@dataclass(frozen=True)
class SecureListener:
    """The SASL_SSL listener's port and files under ``directory``."""

    port: int
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_file(self) -> Path:
        return self.directory / "server.pem"

    @property
    def password_file(self) -> Path:
        return self.directory / "sasl-password"

    @property
    def applied_file(self) -> Path:
        return self.directory / "scram-applied"

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def password(self) -> str:
        return self.password_file.read_text(encoding="utf-8").strip()

    def prepare(self) -> None:
        """Make the certificates and the password if missing (the certificates if expiring)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        if not self.password_file.is_file():
            atomic_write(self.password_file, secrets.token_urlsafe(24) + "\n")
            os.chmod(self.password_file, 0o600)
        if not (self.ca_file.is_file() and self.server_file.is_file()) or _expiring(
            self.server_file
        ):
            ca_pem, server_pem = _make_certificates()
            atomic_write(self.server_file, server_pem)
            os.chmod(self.server_file, 0o600)
            atomic_write(self.ca_file, ca_pem)

    def server_properties(self) -> list[str]:
        """The lines server.properties adds for this listener (besides listeners=)."""
        name = LISTENER.lower()
        mechanism = SCRAM_MECHANISM.lower()
        return [
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.{name}.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.{name}.{mechanism}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            # Kafka 4 reads PEM: one file holding the certificate and its PKCS#8 key.
            f"listener.name.{name}.ssl.keystore.type=PEM",
            f"listener.name.{name}.ssl.keystore.location={self.server_file}",
        ]

    def scram_argument(self) -> str:
        """``--add-scram`` (format) and ``--add-config`` (alter) value for SCRAM_USER."""
        return f"{SCRAM_MECHANISM}=[name={SCRAM_USER},password={self.password()}]"

    def alter_config_argument(self) -> str:
        return f"{SCRAM_MECHANISM}=[password={self.password()}]"

    def credentials_digest(self) -> str:
        return hashlib.sha256(self.scram_argument().encode()).hexdigest()

    def credentials_applied(self) -> bool:
        try:
            recorded = self.applied_file.read_text(encoding="ascii").strip()
        except OSError:
            return False
        return recorded == self.credentials_digest()

    def mark_applied(self) -> None:
        atomic_write(self.applied_file, self.credentials_digest() + "\n")

    def client_security(self) -> KafkaSecurity:
        """How a kafka-python client connects here."""
        return KafkaSecurity(
            protocol=LISTENER,
            ca_file=self.ca_file,
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=SCRAM_USER,
            sasl_password=SecretStr(self.password()),
        )

    def client_settings(self) -> dict[str, str]:
        """The environment a client sets to connect here (the password by its file)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DISCLOSURE_LEDGER_KAFKA_SECURITY_PROTOCOL": LISTENER,
            "DISCLOSURE_LEDGER_KAFKA_SSL_CA_FILE": str(self.ca_file),
            "DISCLOSURE_LEDGER_KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
            "DISCLOSURE_LEDGER_KAFKA_SASL_USERNAME": SCRAM_USER,
            "DISCLOSURE_LEDGER_KAFKA_SASL_PASSWORD_FILE": str(self.password_file),
        }


def _expiring(server_file: Path) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(server_file.read_bytes())
    except (OSError, ValueError):
        return True
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < _RENEW_BEFORE


def _make_certificates() -> tuple[str, str]:
    """A CA (PEM) and the server's certificate and PKCS#8 key signed by it (one PEM)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=_VALID_DAYS)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "disclosure-ledger local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    server_pem = server.public_bytes(serialization.Encoding.PEM).decode("ascii")
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return ca_pem, key_pem + server_pem
