"""How Kafka clients connect: security.protocol, TLS files and SASL credentials.

The settings live in :class:`~disclosure_ledger.settings.Settings` (``DISCLOSURE_LEDGER_KAFKA_*``).
:class:`KafkaSecurity` is their resolved form (a password file read, files checked), and
:func:`connection_config` is the one function that checks them and maps them to connection
arguments under kafka-python's names, for either client: kafka-python takes them as they are
(:func:`kafka_python_config`, spread into its constructors), and the confluent-kafka client
maps them to librdkafka's names in :func:`kafka_transport.confluent.connection_config`
(:data:`LIBRDKAFKA_NAMES`, docs/kafka-security.md). OAUTHBEARER has no kafka-python form: its
librdkafka settings (``DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER``) pass through under their own
dotted names, for the confluent-kafka client only.

:func:`connection_hint` turns a failed connection into a sentence naming the setting to fix
(wrong credentials, an untrusted certificate, a protocol the listener does not speak), from
kafka-python's errors or librdkafka's.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from disclosure_ledger.errors import KafkaSecurityError

if TYPE_CHECKING:
    from disclosure_ledger.settings import Settings

__all__ = [
    "ENV",
    "LIBRDKAFKA_NAMES",
    "KafkaSecurity",
    "connection_config",
    "connection_hint",
    "kafka_python_config",
]

_PREFIX = "DISCLOSURE_LEDGER_KAFKA_"
# The environment variable of each setting, for messages that name the one to fix.
ENV = {
    "protocol": _PREFIX + "SECURITY_PROTOCOL",
    "ca_file": _PREFIX + "SSL_CA_FILE",
    "cert_file": _PREFIX + "SSL_CERT_FILE",
    "key_file": _PREFIX + "SSL_KEY_FILE",
    "key_password": _PREFIX + "SSL_KEY_PASSWORD",
    "check_hostname": _PREFIX + "SSL_CHECK_HOSTNAME",
    "mechanism": _PREFIX + "SASL_MECHANISM",
    "username": _PREFIX + "SASL_USERNAME",
    "password": _PREFIX + "SASL_PASSWORD",
    "password_file": _PREFIX + "SASL_PASSWORD_FILE",
    "oauthbearer": _PREFIX + "SASL_OAUTHBEARER",
    "client": _PREFIX + "CLIENT",
}
# Each setting's name in librdkafka's configuration (confluent-kafka), for its client.
LIBRDKAFKA_NAMES = {
    "protocol": "security.protocol",
    "ca_file": "ssl.ca.location",
    "cert_file": "ssl.certificate.location",
    "key_file": "ssl.key.location",
    "key_password": "ssl.key.password",
    "check_hostname": "ssl.endpoint.identification.algorithm (https, or none)",
    "mechanism": "sasl.mechanism",
    "username": "sasl.username",
    "password": "sasl.password",
    "oauthbearer": "sasl.oauthbearer.* (each key of the JSON object)",
}
_OAUTHBEARER_PREFIX = "sasl.oauthbearer."

_TLS = ("SSL", "SASL_SSL")
_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_PROBE_TIMEOUT_S = 3.0
# kafka-python's errors for "no broker got through" (a refused login or handshake among them).
_UNREACHABLE = ("Timeout", "NoBrokersAvailable", "Connection", "NodeNotReady")
# librdkafka's (confluent-kafka): its error codes, as KafkaError{code=...} or "_CODE: ..."
_LIBRDKAFKA_UNREACHABLE = re.compile(r"(?<![A-Z])_(TRANSPORT|SSL|TIMED_OUT|ALL_BROKERS_DOWN)\b")


@dataclass(frozen=True)
class KafkaSecurity:
    """Resolved connection settings; the default is PLAINTEXT with nothing else."""

    protocol: str = "PLAINTEXT"
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # librdkafka's sasl.oauthbearer.* settings, full names, for OAUTHBEARER (confluent-kafka)
    sasl_oauthbearer: tuple[tuple[str, SecretStr], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> KafkaSecurity:
        """From the settings object (the environment when none is given)."""
        if settings is None:
            from disclosure_ledger.settings import load_settings

            settings = load_settings()
        password = settings.kafka_sasl_password
        if password is None and settings.kafka_sasl_password_file is not None:
            path = settings.kafka_sasl_password_file
            try:
                password = SecretStr(path.read_text(encoding="utf-8").strip())
            except OSError as exc:
                raise KafkaSecurityError(
                    f"cannot read {ENV['password_file']}={path}: {exc.strerror or exc}; "
                    "point it at a readable file holding the SASL password"
                ) from exc
        return cls(
            protocol=settings.kafka_security_protocol,
            ca_file=settings.kafka_ssl_ca_file,
            cert_file=settings.kafka_ssl_cert_file,
            key_file=settings.kafka_ssl_key_file,
            key_password=settings.kafka_ssl_key_password,
            check_hostname=settings.kafka_ssl_check_hostname,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_username=settings.kafka_sasl_username,
            sasl_password=password,
            sasl_oauthbearer=_oauthbearer(settings.kafka_sasl_oauthbearer),
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in _TLS

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in _SASL

    def describe(self) -> str:
        """A one-line summary without secrets, for logs and messages."""
        parts = [f"security.protocol={self.protocol}"]
        if self.uses_sasl and self.sasl_mechanism == "OAUTHBEARER":
            parts.append("sasl.mechanism=OAUTHBEARER")
        elif self.uses_sasl:
            parts.append(f"sasl.mechanism={self.sasl_mechanism} user={self.sasl_username}")
        if self.uses_tls:
            parts.append(f"CA={self.ca_file or 'system default'}")
        return ", ".join(parts)


def _oauthbearer(raw: SecretStr | None) -> tuple[tuple[str, SecretStr], ...]:
    """``DISCLOSURE_LEDGER_KAFKA_SASL_OAUTHBEARER``, a JSON object, as librdkafka settings:
    each key gets the ``sasl.oauthbearer.`` prefix unless it has it. Never echoes the value."""
    if raw is None:
        return ()
    example = '{"method": "oidc", "client.id": "...", "token.endpoint.url": "https://..."}'
    try:
        parsed = json.loads(raw.get_secret_value())
    except json.JSONDecodeError as exc:
        raise KafkaSecurityError(
            f"{ENV['oauthbearer']} is not JSON ({exc.msg} at character {exc.pos}): set it to "
            f"a JSON object of librdkafka's sasl.oauthbearer.* settings, e.g. {example}"
        ) from None
    if not isinstance(parsed, dict):
        raise KafkaSecurityError(
            f"{ENV['oauthbearer']} must be a JSON object of librdkafka's sasl.oauthbearer.* "
            f"settings, e.g. {example}"
        )
    settings = []
    for key, value in parsed.items():
        name = key if key.startswith(_OAUTHBEARER_PREFIX) else _OAUTHBEARER_PREFIX + key
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif not isinstance(value, str | int | float):
            raise KafkaSecurityError(
                f"{ENV['oauthbearer']}: the value of {key!r} must be a string or a number"
            )
        settings.append((name, SecretStr(str(value))))
    return tuple(settings)


def kafka_python_config(security: KafkaSecurity | None = None) -> dict[str, Any]:
    """kafka-python keyword arguments for ``security`` (the settings' when None).

    Raises :class:`KafkaSecurityError`, naming the variable to set, when the settings are
    incomplete: SASL without a mechanism, username or password; a TLS file that does not
    exist; a certificate without its key; OAUTHBEARER (which needs the confluent-kafka
    client, ``DISCLOSURE_LEDGER_KAFKA_CLIENT=confluent-kafka``).
    """
    return connection_config("kafka-python", security)


def connection_config(client: str, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """The connection arguments of ``client`` (``kafka-python`` or ``confluent-kafka``) for
    ``security`` (the settings' when None), under kafka-python's names: the form
    ``kafka_transport`` takes for either client. For confluent-kafka, OAUTHBEARER adds
    librdkafka's ``sasl.oauthbearer.*`` settings under their own dotted names.

    Raises :class:`KafkaSecurityError`, naming the variable to set, when the settings cannot
    work (see :func:`kafka_python_config`); the same settings are refused for both clients,
    except OAUTHBEARER, which kafka-python refuses.
    """
    security = security if security is not None else KafkaSecurity.from_settings()
    protocol = security.protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    if security.uses_tls:
        _check_file(security.ca_file, "ca_file")
        _check_file(security.cert_file, "cert_file")
        _check_file(security.key_file, "key_file")
        if (security.cert_file is None) != (security.key_file is None):
            raise KafkaSecurityError(
                f"mutual TLS needs both {ENV['cert_file']} and {ENV['key_file']}; "
                "set the one missing, or neither"
            )
        config["ssl_check_hostname"] = security.check_hostname
        if security.ca_file is not None:
            config["ssl_cafile"] = str(security.ca_file)
        if security.cert_file is not None:
            config["ssl_certfile"] = str(security.cert_file)
            config["ssl_keyfile"] = str(security.key_file)
        if security.key_password is not None:
            config["ssl_password"] = security.key_password.get_secret_value()
    elif security.ca_file or security.cert_file or security.key_file:
        raise KafkaSecurityError(
            f"{ENV['protocol']}={protocol} uses no TLS, yet TLS files are set: "
            "set it to SSL or SASL_SSL, or unset the DISCLOSURE_LEDGER_KAFKA_SSL_* files"
        )
    if security.uses_sasl:
        mechanism = security.sasl_mechanism
        if mechanism is None:
            raise KafkaSecurityError(
                f"{ENV['protocol']}={protocol} needs {ENV['mechanism']} "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if mechanism == "OAUTHBEARER":
            return _oauthbearer_config(config, security, client)
        if not security.sasl_username:
            raise KafkaSecurityError(f"{ENV['mechanism']}={mechanism} needs {ENV['username']}")
        if security.sasl_password is None:
            raise KafkaSecurityError(
                f"{ENV['mechanism']}={mechanism} needs {ENV['password']} "
                f"(or {ENV['password_file']})"
            )
        config["sasl_mechanism"] = mechanism
        config["sasl_plain_username"] = security.sasl_username
        config["sasl_plain_password"] = security.sasl_password.get_secret_value()
    elif security.sasl_mechanism is not None:
        raise KafkaSecurityError(
            f"{ENV['mechanism']}={security.sasl_mechanism} is set but "
            f"{ENV['protocol']}={protocol} uses no SASL: set it to SASL_SSL or SASL_PLAINTEXT"
        )
    if security.sasl_oauthbearer:
        raise KafkaSecurityError(
            f"{ENV['oauthbearer']} is set but {ENV['mechanism']} is not OAUTHBEARER: set "
            f"{ENV['mechanism']}=OAUTHBEARER (and {ENV['protocol']}=SASL_SSL), or unset it"
        )
    return config


def _oauthbearer_config(
    config: dict[str, Any], security: KafkaSecurity, client: str
) -> dict[str, Any]:
    if client != "confluent-kafka":
        raise KafkaSecurityError(
            f"{ENV['mechanism']}=OAUTHBEARER is passed through to librdkafka, which "
            f"kafka-python is not: set {ENV['client']}=confluent-kafka (installed with "
            "`pip install 'disclosure-ledger[librdkafka]'`; docs/kafka-security.md), or use "
            "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
        )
    config["sasl_mechanism"] = "OAUTHBEARER"
    for name, value in security.sasl_oauthbearer:
        config[name] = value.get_secret_value()
    return config


def _check_file(path: Path | None, field: str) -> None:
    if path is not None and not path.is_file():
        raise KafkaSecurityError(f"{ENV[field]}={path}: no such file; point it at a PEM file")


def connection_hint(
    bootstrap_servers: str, error: BaseException, security: KafkaSecurity | None = None
) -> str:
    """A sentence naming the setting to fix after ``error`` connecting, or "" if none applies.

    Understands kafka-python's errors and librdkafka's (confluent-kafka's, whose transport
    error carries the reason librdkafka reported). Wrong SASL credentials show in either
    client's error; an untrusted certificate or a protocol the listener does not speak
    often show only as "no broker answered", so the first bootstrap address is then probed
    once with the standard library's TLS to tell which.
    """
    try:
        security = security if security is not None else KafkaSecurity.from_settings()
    except KafkaSecurityError as exc:
        return str(exc)
    name = type(error).__name__
    text = str(error)
    if "SaslAuthenticationFailed" in name or "Authentication failed" in text:
        if security.sasl_mechanism == "OAUTHBEARER":
            return (
                "the broker refused the OAUTHBEARER token: check the sasl.oauthbearer.* "
                f"settings in {ENV['oauthbearer']}"
            )
        return (
            f"the broker refused the SASL credentials of user {security.sasl_username!r} "
            f"({security.sasl_mechanism}): check {ENV['username']} and {ENV['password']}"
        )
    if "UnsupportedSaslMechanism" in name or "mechanism handshake failed" in text:
        return (
            f"the broker does not accept SASL mechanism {security.sasl_mechanism} there: "
            f"check {ENV['mechanism']}, or {ENV['protocol']} if that listener uses no SASL"
        )
    if not (any(word in name for word in _UNREACHABLE) or _LIBRDKAFKA_UNREACHABLE.search(text)):
        return ""  # the broker answered: TLS and SASL got through
    host, port = _first_address(bootstrap_servers)
    if port is None:
        return ""
    tls = _probe_tls(host, port, security)
    if "certificate verify failed" in text and tls != "hostname" and security.uses_tls:
        tls = "untrusted"  # librdkafka's own trust store said so, whatever Python's says
    if tls in ("untrusted", "hostname", "speaks-tls") and not security.uses_tls:
        return (
            f"{host}:{port} is a TLS listener but {ENV['protocol']}={security.protocol}: "
            "set it to SSL or SASL_SSL (and the CA file)"
        )
    if tls == "no-tls" and security.uses_tls:
        return (
            f"{host}:{port} does not speak TLS but {ENV['protocol']}={security.protocol}: "
            "set it to PLAINTEXT or SASL_PLAINTEXT, or use the broker's TLS port"
        )
    if security.uses_sasl and tls in ("speaks-tls", "no-tls"):
        # The listener speaks what the settings say; what is left is the login itself.
        return (
            f"{host}:{port} answers {security.protocol} but the connection did not get "
            f"through: most likely the broker refused the SASL login of user "
            f"{security.sasl_username!r} ({security.sasl_mechanism}); check "
            f"{ENV['username']}, {ENV['password']} and {ENV['mechanism']}"
        )
    if tls == "untrusted":
        return (
            f"the broker's TLS certificate at {host}:{port} is not trusted by "
            f"{security.ca_file or 'the system CAs'}: set {ENV['ca_file']} to the CA that "
            "signed it"
        )
    if tls == "hostname":
        return (
            f"the broker's TLS certificate does not name {host}: connect by a name it holds, "
            f"or set {ENV['check_hostname']}=false"
        )
    return ""


def _first_address(bootstrap_servers: str) -> tuple[str, int | None]:
    first = bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        return host.strip("[]") or "localhost", int(port)
    except ValueError:
        return first, None


def _probe_tls(host: str, port: int, security: KafkaSecurity) -> str:
    """``untrusted``, ``hostname``, ``speaks-tls``, ``no-tls`` or ``unknown``."""
    try:
        with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S) as raw:
            context = ssl.create_default_context(
                cafile=str(security.ca_file) if security.ca_file else None
            )
            context.check_hostname = security.check_hostname
            try:
                with context.wrap_socket(raw, server_hostname=host):
                    return "speaks-tls"
            except ssl.SSLCertVerificationError as exc:
                if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
                    return "hostname"
                return "untrusted"
            except ssl.SSLError:
                return "no-tls"
    except OSError:
        return "unknown"
