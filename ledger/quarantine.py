"""Quarantined messages, kept whole but sealed.

A message the consumer cannot accept is kept with its raw key and value bytes, so nothing
is lost and it can be replayed. Those bytes usually name the person (the Kafka key is the
subject id, and the Avro body carries it too), and the ledger holds no raw subject id in
clear. So the quarantine stores them sealed: ``qaesgcm1:`` + nonce (12 bytes) + AES-256-GCM
ciphertext and tag, under ``HMAC-SHA-256(subject secret, "disclosure-ledger/quarantine-key/v1")``
with the associated data ``"disclosure-ledger/quarantine/v1" 0x00 topic 0x00 partition 0x00
offset 0x00 ("key" | "value")``, so a sealed value moved to another row does not open.

Erasing a subject cannot reach these (an undecodable message's subject cannot be known);
they are readable by whoever holds the deployment's subject secret, and by no one else.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import datetime

import duckdb
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import LedgerError
from ledger.store import Ledger

SEALED_PREFIX = b"qaesgcm1:"
_KEY_LABEL = b"disclosure-ledger/quarantine-key/v1"
_AAD_LABEL = b"disclosure-ledger/quarantine/v1\x00"
_NONCE_BYTES = 12


def quarantine_key(secret: bytes) -> bytes:
    """The AES-256 key that seals quarantined bytes, derived from the subject secret."""
    return hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()


def _aad(topic: str, partition: int, offset: int, part: str) -> bytes:
    return _AAD_LABEL + b"\x00".join(
        (topic.encode(), str(partition).encode(), str(offset).encode(), part.encode())
    )


def seal(
    key: bytes, topic: str, partition: int, offset: int, part: str, data: bytes | None
) -> bytes | None:
    """Sealed bytes of a quarantined message's ``part`` ("key" or "value"); None stays None."""
    if data is None:
        return None
    nonce = os.urandom(_NONCE_BYTES)
    return (
        SEALED_PREFIX
        + nonce
        + AESGCM(key).encrypt(nonce, data, _aad(topic, partition, offset, part))
    )


def unseal(
    key: bytes, topic: str, partition: int, offset: int, part: str, sealed: bytes | None
) -> bytes | None:
    """The original bytes; :class:`LedgerError` if they do not open under this key."""
    if sealed is None:
        return None
    if not sealed.startswith(SEALED_PREFIX):
        raise LedgerError(
            f"quarantined {part} at {topic}/{partition} offset {offset} is not sealed "
            f"({SEALED_PREFIX.decode()}); it was not written by this version of the consumer"
        )
    body = sealed[len(SEALED_PREFIX) :]
    try:
        return AESGCM(key).decrypt(
            body[:_NONCE_BYTES], body[_NONCE_BYTES:], _aad(topic, partition, offset, part)
        )
    except InvalidTag as exc:
        raise LedgerError(
            f"quarantined {part} at {topic}/{partition} offset {offset} does not open: the "
            "subject secret is not the one this ledger was written with, or the row was altered"
        ) from exc


@dataclass(frozen=True)
class QuarantinedMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str
    quarantined_at: datetime


def read_quarantine(
    ledger: Ledger,
    key: bytes,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offsets: tuple[int, int] | None = None,
) -> list[QuarantinedMessage]:
    """Quarantined messages with their original bytes, in source order."""
    where: list[str] = ["true"]
    params: list[object] = []
    if topic is not None:
        where.append("topic = ?")
        params.append(topic)
    if partition is not None:
        where.append("kafka_partition = ?")
        params.append(partition)
    if offsets is not None:
        where.append("kafka_offset BETWEEN ? AND ?")
        params.extend(offsets)
    rows = ledger.con.execute(
        "SELECT topic, kafka_partition, kafka_offset, message_key, message_value, error, "
        f"quarantined_at FROM quarantine WHERE {' AND '.join(where)} ORDER BY ALL",
        params,
    ).fetchall()
    found = []
    for t, p, o, k, v, error, at in rows:
        found.append(
            QuarantinedMessage(
                str(t),
                int(p),
                int(o),
                unseal(key, t, p, o, "key", None if k is None else bytes(k)),
                unseal(key, t, p, o, "value", None if v is None else bytes(v)),
                str(error),
                at,
            )
        )
    return found


def secret_opens_quarantine(ledger: Ledger, secret: bytes, *, tries: int = 3) -> bool | None:
    """Whether ``secret`` is the one the ledger's quarantine was sealed under.

    True if one of the first ``tries`` sealed values opens (AES-GCM authenticates: a wrong
    key cannot open one), False if every one tried fails to open, None if the quarantine
    holds nothing sealed to try. The subject key store uses this to check the secret of a
    store created before it kept a key-check value (:mod:`ledger.pseudonyms`).
    """
    try:
        found = ledger.con.execute(
            "SELECT topic, kafka_partition, kafka_offset, message_value FROM quarantine "
            "WHERE message_value IS NOT NULL ORDER BY ALL LIMIT 100"
        ).fetchall()
    except duckdb.Error:  # a ledger written before there was a quarantine table
        return None
    # Rows an older consumer stored unsealed prove nothing either way.
    rows = [row for row in found if bytes(row[3]).startswith(SEALED_PREFIX)][:tries]
    if not rows:
        return None
    key = quarantine_key(secret)
    for topic, partition, offset, sealed in rows:
        try:
            unseal(key, topic, partition, offset, "value", bytes(sealed))
        except LedgerError:
            continue
        return True
    return False
