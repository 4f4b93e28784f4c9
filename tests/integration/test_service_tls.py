"""``serve`` with a certificate: a real service process speaks HTTPS only, and its session
cookie is ``Secure``.

The certificate is self-signed, made here with ``cryptography``; the client trusts it
alone. No broker: the service serves a ledger built in process (``--no-ingest``).
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.integration.reliability_support import CLI, LIVE_PROCESSES
from tests.service.conftest import PASSWORD, build_ledger

pytestmark = pytest.mark.integration


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "disclosure-ledger test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def https(port: int, context: ssl.SSLContext) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)


def wait_until_serving(
    process: subprocess.Popen[bytes], port: int, context: ssl.SSLContext, log: Path
) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited ({process.returncode}):\n{log.read_text()}")
        connection = https(port, context)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
        finally:
            connection.close()
    raise AssertionError(f"serve did not answer over HTTPS in 90 s:\n{log.read_text()}")


def test_the_service_serves_tls_only_with_a_secure_session_cookie(
    tmp_path: Path, reference: ReferenceData
) -> None:
    ledger = build_ledger(tmp_path / "ledger.duckdb", reference)
    AccountStore(default_account_store(ledger)).add_user("officer", Role.compliance, PASSWORD)
    cert, key = self_signed(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                str(CLI),
                "serve",
                "--ledger",
                str(ledger),
                "--no-ingest",
                "--listen",
                f"127.0.0.1:{port}",
                "--tls-cert",
                str(cert),
                "--tls-key",
                str(key),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": TEST_SECRET.decode()},
        )
    LIVE_PROCESSES.append(process)
    context = ssl.create_default_context(cafile=str(cert))
    wait_until_serving(process, port, context, log)

    # Signing in over HTTPS: the cookie is Secure, HttpOnly and SameSite=Strict.
    connection = https(port, context)
    connection.request(
        "POST",
        "/api/v1/session",
        body=json.dumps({"name": "officer", "password": PASSWORD}),
        headers={"Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    body = answer.read()
    assert answer.status == 200, body
    cookie = answer.getheader("set-cookie") or ""
    connection.close()
    assert cookie.startswith("dl_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite"} <= attributes
    assert "samesite=strict" in cookie.lower()

    # The session works over HTTPS.
    connection = https(port, context)
    connection.request("GET", "/api/v1/status", headers={"Cookie": cookie.split(";")[0]})
    assert connection.getresponse().status == 200
    connection.close()

    # Plain HTTP on the same port gets no HTTP answer.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        try:
            while chunk := plain.recv(4096):
                received += chunk
        except OSError:
            pass  # reset by the TLS server: no answer, as it should be
    assert not received.startswith(b"HTTP/")
    assert b"ok" not in received

    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)  # (its exit status on SIGTERM is tested with `serve` itself)
