"""The service's settings: where it listens, its limits, TLS. One frozen value, made by
``serve``'s options (:mod:`disclosure_ledger.commands.serve`)."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from disclosure_ledger.errors import DisclosureLedgerError
from ledger.lake import LakeLocation


class ServiceConfigError(DisclosureLedgerError):
    """The service cannot start with these settings (named, with what to do)."""


@dataclass(frozen=True)
class ServiceConfig:
    ledger: Path  # the ledger file, or a lake's local path (the files kept beside it)
    location: LakeLocation | None = None  # the lake, when the ledger is one
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = False
    # Queries (Datasette's sql_time_limit_ms, max_returned_rows): one query cannot take the
    # service down. The memory limit is the instance's, shared by ingest, reports and queries.
    query_time_limit: float = 10.0
    max_concurrent_queries: int = 2
    query_slot_wait: float = 5.0  # how long a query waits for a slot before a 429
    max_page_rows: int = 1_000
    memory_limit: str = "2GB"
    lake_compact_every: float = 600.0  # seconds between compactions of a lake; 0: never
    max_body_bytes: int = 1_000_000

    @property
    def ledger_location(self) -> Path | LakeLocation:
        """What the service opens: the ledger file, or the lake."""
        return self.location if self.location is not None else self.ledger

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    def check(self) -> None:
        """Refuse a non-loopback address without TLS unless ``insecure_http``, and a
        certificate and key that TLS could not use (before anything is opened)."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ServiceConfigError("give both --tls-cert and --tls-key, or neither")
        if not self.tls and not self.insecure_http and not is_loopback(self.host):
            raise ServiceConfigError(
                f"--listen {self.host}:{self.port} is not a loopback address, and the service "
                "would send passwords, tokens and personal data in clear text: give "
                "--tls-cert and --tls-key, or --insecure-http if a TLS proxy stands in front"
            )
        if self.tls_cert is not None and self.tls_key is not None:
            check_tls_files(self.tls_cert, self.tls_key)


def check_tls_files(cert: Path, key: Path) -> None:
    """The certificate and key load, and belong together (as the TLS server will load
    them); a clear error naming the file otherwise."""
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise ServiceConfigError(f"{option} {path}: no such file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        # An encrypted key would make OpenSSL prompt on the terminal: refuse it instead.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ServiceConfigError(
            f"--tls-cert {cert} with --tls-key {key} cannot serve TLS ({exc}): give a PEM "
            "certificate and the unencrypted PEM private key that belongs to it"
        ) from exc


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) into its parts; a clear error otherwise."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServiceConfigError(
            f"--listen {text!r}: give HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"
        )
    return host, int(port)
