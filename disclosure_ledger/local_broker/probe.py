"""Asking a Kafka broker whether it answers: a raw ApiVersions probe, then an admin client.

kafka-python is imported only when :func:`list_topics` is called.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import warnings
from typing import TYPE_CHECKING, Any

from disclosure_ledger.local_broker.processes import HOST

if TYPE_CHECKING:
    from disclosure_ledger.kafka_security import KafkaSecurity

__all__ = ["kafka_answers", "list_topics"]

# kafka-python 3.0.12 reads its protocol schemas with importlib.resources.read_text and
# open_text, both deprecated on Python 3.11; silenced only around our own import of it.
_KAFKA_IMPORT_WARNINGS = r"(read_text|open_text) is deprecated"


def kafka_answers(port: int, timeout: float) -> bool:
    """Whether a Kafka broker on ``127.0.0.1:port`` answers an ApiVersions request.

    A raw request on a plain socket: cheap, and unlike a kafka-python client it leaves
    no background thread or unclosed socket behind when nothing listens yet.
    """
    client_id = b"disclosure-ledger-probe"
    correlation_id = 0x5EED
    # ApiVersions (key 18) v0: request header v1 and an empty body.
    body = struct.pack(">hhih", 18, 0, correlation_id, len(client_id)) + client_id
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            if sock.getsockname() == sock.getpeername():  # TCP self-connect, no listener
                return False
            sock.sendall(struct.pack(">i", len(body)) + body)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            if not 6 <= size <= 1 << 20:
                return False
            reply_id, error_code = struct.unpack(">ih", _recv_exactly(sock, size)[:6])
    except (OSError, struct.error):
        return False
    return bool(reply_id == correlation_id and error_code == 0)


def _recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return bytes(data)


def _kafka_admin_class() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _KAFKA_IMPORT_WARNINGS, DeprecationWarning)
        from kafka import KafkaAdminClient

    return KafkaAdminClient


def list_topics(bootstrap: str, timeout: float, security: KafkaSecurity | None = None) -> list[str]:
    """Topic names from a kafka-python admin client; closed on every path.

    ``security``: how to connect (default PLAINTEXT, the local broker's own listener;
    the SASL_SSL listener is probed with its CA and SCRAM user).
    """
    from disclosure_ledger.kafka_security import KafkaSecurity, kafka_python_config

    admin_class = _kafka_admin_class()
    timeout_ms = max(500, int(timeout * 1000))
    admin = admin_class.__new__(admin_class)
    try:
        # KafkaAdminClient connects in __init__ and, when that fails, leaves its IO
        # thread running; constructing in two steps lets us close it on that path too.
        admin.__init__(
            bootstrap_servers=bootstrap,
            client_id="disclosure-ledger-local-broker",
            bootstrap_timeout_ms=timeout_ms,
            request_timeout_ms=timeout_ms,
            **kafka_python_config(security or KafkaSecurity()),
        )
    except BaseException:
        with contextlib.suppress(Exception):
            admin._closed = False
            admin.close()
        raise
    try:
        return [str(name) for name in admin.list_topics()]
    finally:
        admin.close()
