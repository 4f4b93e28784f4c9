"""Quarantined messages, kept whole but sealed, each under the key of the subject it is about
when that subject can be known, so that erasing the subject reaches it.

A message the consumer cannot accept is kept with its raw key and value bytes, so nothing
is lost and it can be replayed. Those bytes usually name the person (the Kafka key is the
subject id, and the Avro body carries it too), and the ledger holds no raw subject id in
clear. So the quarantine stores them sealed: ``qaesgcm1:`` + nonce (12 bytes) + AES-256-GCM
ciphertext and tag, with the associated data ``"disclosure-ledger/quarantine/v1" 0x00 topic
0x00 partition 0x00 offset 0x00 ("key" | "value")``, so a sealed value moved to another row
does not open. The sealing key is ``HMAC-SHA-256(k, "disclosure-ledger/quarantine-key/v1")``
where ``k`` is (column ``sealed_with`` says which):

* **the subject's own key** ``k_s`` (``sealed_with`` = its key id,
  :data:`ledger.pseudonyms.KEY_ID_BYTES`) when the consumer can tell whom the message is about
  (:func:`quarantine_subject` decides):

  - the body decodes (a reference-data failure): the record's subject type and id; a
    subject seen for the first time gets its key now, as an accepted event would;
  - the body does not decode, but the Kafka key (producers send the subject id, without
    its type) names exactly one subject the key store already holds, as a member or as a
    guest. No key is created from a Kafka key alone: its type is unknown, and a guess
    would key a person who may not exist. A key that names both a member and a guest, or
    no known subject, or is not UTF-8, leaves the subject unknown.

  Erasing that subject destroys ``k_s``: the row can no longer be opened by anyone, and
  readers say "sealed under an erased subject's key: unreadable" for it.
* **the deployment key**, from the subject secret (``sealed_with`` NULL), when the subject
  cannot be known, and for every row written before rows recorded their key (those keep
  opening). These may be about anyone, so they are kept only for a retention
  (:data:`DEFAULT_RETENTION_DAYS`, setting ``DISCLOSURE_LEDGER_QUARANTINE_RETENTION_DAYS``)
  and then purged (:func:`purge_quarantine`): the sealed bytes are set to NULL and the row
  records ``purged_at``. The row itself stays, so ``verify`` still accounts for its offset
  exactly once (as quarantined), and the error text and position remain. Rows sealed under
  a subject's key are not purged by the retention: an erasure reaches them.

What a purge cannot do: DuckDB may keep the old (sealed, encrypted) bytes in free blocks of
the ledger file until they are reused; they stay sealed under the deployment key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import duckdb
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import LedgerError
from ledger.store import Ledger

if TYPE_CHECKING:
    from ledger.pseudonyms import SubjectKeyStore, SubjectSecrets

SEALED_PREFIX = b"qaesgcm1:"
_KEY_LABEL = b"disclosure-ledger/quarantine-key/v1"
_AAD_LABEL = b"disclosure-ledger/quarantine/v1\x00"
_NONCE_BYTES = 12

DEFAULT_RETENTION_DAYS = 30
"""How long a message sealed under the deployment key (subject unknown) is kept."""


def quarantine_key(secret: bytes) -> bytes:
    """The AES-256 key that seals quarantined bytes, derived from the subject secret (the
    deployment key) or from one subject's key ``k_s``: the same derivation."""
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


UNREADABLE_ERASED = "sealed under an erased subject's key: unreadable"
"""What readers say for a message whose subject was erased (its key is gone)."""


class QuarantineKeys(Protocol):
    """Where the sealing keys come from: :class:`ledger.pseudonyms.SubjectKeyStore`."""

    @property
    def quarantine_key(self) -> bytes: ...

    def subject_quarantine_key(self, key_id: str) -> bytes | None: ...


@dataclass(frozen=True)
class QuarantinedMessage:
    """One quarantined message. ``key`` and ``value`` are the original bytes (None: absent,
    or not readable: then ``unreadable`` says why, or ``purged_at`` says when they went)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str
    quarantined_at: datetime
    sealed_with: str | None = None  # the subject key's id; None: the deployment key
    purged_at: datetime | None = None
    unreadable: str | None = None


@dataclass(frozen=True)
class SealedMessage:
    """A quarantine row as stored: its bytes still sealed (what the dead-letter copy carries)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    error: str
    quarantined_at: datetime
    sealed_with: str | None
    purged_at: datetime | None


def quarantine_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The quarantine table's columns (a read-only older ledger lacks the newer ones)."""
    return {
        str(r[0])
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'quarantine'"
        ).fetchall()
    }


def ensure_quarantine_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Bring an older ledger's quarantine table up to date (its rows: the deployment key)."""
    present = quarantine_columns(con)
    if "sealed_with" not in present:
        con.execute("ALTER TABLE quarantine ADD COLUMN sealed_with VARCHAR")
    if "purged_at" not in present:
        con.execute("ALTER TABLE quarantine ADD COLUMN purged_at TIMESTAMP")


def sealed_quarantine(
    ledger: Ledger,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offsets: tuple[int, int] | None = None,
) -> list[SealedMessage]:
    """Quarantine rows as stored (bytes sealed), in source order."""
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
    present = quarantine_columns(ledger.con)
    sealed_with = "sealed_with" if "sealed_with" in present else "NULL::VARCHAR"
    purged_at = "purged_at" if "purged_at" in present else "NULL::TIMESTAMP"
    rows = ledger.con.execute(
        "SELECT topic, kafka_partition, kafka_offset, message_key, message_value, error, "
        f"quarantined_at, {sealed_with}, {purged_at} FROM quarantine "
        f"WHERE {' AND '.join(where)} ORDER BY topic, kafka_partition, kafka_offset",
        params,
    ).fetchall()
    return [
        SealedMessage(
            str(t),
            int(p),
            int(o),
            None if k is None else bytes(k),
            None if v is None else bytes(v),
            str(error),
            at,
            None if w is None else str(w),
            purged,
        )
        for t, p, o, k, v, error, at, w, purged in rows
    ]


def open_sealed(sealed: SealedMessage, keys: bytes | QuarantineKeys) -> QuarantinedMessage:
    """A stored row opened: under the deployment key, or under its subject's key if that is
    still held; a row whose subject was erased comes back with :data:`UNREADABLE_ERASED`."""
    t, p, o = sealed.topic, sealed.partition, sealed.offset

    def opened(key: bytes | None, value: bytes | None, why: str | None) -> QuarantinedMessage:
        return QuarantinedMessage(
            t,
            p,
            o,
            key,
            value,
            sealed.error,
            sealed.quarantined_at,
            sealed.sealed_with,
            sealed.purged_at,
            why,
        )

    if sealed.purged_at is not None:
        return opened(
            None, None, f"purged on {sealed.purged_at:%Y-%m-%d} after the quarantine retention"
        )
    if sealed.sealed_with is None:
        key: bytes | None = keys if isinstance(keys, bytes) else keys.quarantine_key
    elif isinstance(keys, bytes):
        return opened(
            None, None, "sealed under a subject's key: open it with the subject key store"
        )
    else:
        key = keys.subject_quarantine_key(sealed.sealed_with)
    if key is None:
        return opened(None, None, UNREADABLE_ERASED)
    return opened(
        unseal(key, t, p, o, "key", sealed.key), unseal(key, t, p, o, "value", sealed.value), None
    )


def read_quarantine(
    ledger: Ledger,
    keys: bytes | QuarantineKeys,
    *,
    topic: str | None = None,
    partition: int | None = None,
    offsets: tuple[int, int] | None = None,
) -> list[QuarantinedMessage]:
    """Quarantined messages with their original bytes, in source order.

    ``keys``: the key store (opens every row still readable), or the deployment key alone
    (opens only rows sealed under it; the others say so in ``unreadable``)."""
    return [
        open_sealed(sealed, keys)
        for sealed in sealed_quarantine(ledger, topic=topic, partition=partition, offsets=offsets)
    ]


@dataclass(frozen=True)
class QuarantinePurge:
    """What :func:`purge_quarantine` did."""

    purged: int
    cutoff: datetime  # rows quarantined before this were purged
    purged_at: datetime


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)


def purge_quarantine(
    ledger: Ledger, *, retention_days: int = 30, now: datetime | None = None
) -> QuarantinePurge:
    """Purge the bytes of messages sealed under the deployment key (subject unknown) that
    were quarantined more than ``retention_days`` ago: set to NULL, the row keeps its
    position and error and records ``purged_at``. Rows sealed under a subject's key are
    left alone (an erasure reaches them)."""
    if retention_days < 1:
        raise LedgerError(
            f"quarantine retention {retention_days} day(s): give at least 1 "
            "(DISCLOSURE_LEDGER_QUARANTINE_RETENTION_DAYS, --retention-days)"
        )
    if ledger.read_only:
        raise LedgerError(f"ledger {ledger.path} is open read-only; a purge must be recorded")
    at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    cutoff = retention_cutoff(at, retention_days)
    ensure_quarantine_columns(ledger.con)
    found = ledger.con.execute(
        "UPDATE quarantine SET message_key = NULL, message_value = NULL, purged_at = ? "
        "WHERE sealed_with IS NULL AND purged_at IS NULL AND quarantined_at < ?",
        [at, cutoff],
    ).fetchone()
    return QuarantinePurge(int(found[0]) if found else 0, cutoff, at)


@dataclass(frozen=True)
class DeploymentSealed:
    """Quarantined messages still held under the deployment key: about anyone."""

    count: int
    newest_quarantined_at: datetime | None
    purge_by: datetime | None  # when the last of them is purged (newest + retention)


def deployment_sealed(ledger: Ledger, *, retention_days: int) -> DeploymentSealed:
    """How many quarantined messages are held under the deployment key, not yet purged."""
    present = quarantine_columns(ledger.con)
    where = "message_key IS NOT NULL OR message_value IS NOT NULL"
    if "sealed_with" in present:
        where = f"sealed_with IS NULL AND purged_at IS NULL AND ({where})"
    count, newest = ledger.con.execute(
        f"SELECT count(*), max(quarantined_at) FROM quarantine WHERE {where}"
    ).fetchone() or (0, None)
    return DeploymentSealed(
        int(count), newest, None if newest is None else newest + timedelta(days=retention_days)
    )


def subject_of_kafka_key(keys: SubjectKeyStore, kafka_key: bytes | None) -> SubjectSecrets | None:
    """The subject an undecodable message is about, from its Kafka key alone: the one held
    subject, member or guest, with that id; None if none, both, or the key is not UTF-8.
    Never creates a key (see the module docstring)."""
    if not kafka_key:
        return None
    try:
        subject_id = kafka_key.decode("utf-8")
    except UnicodeDecodeError:
        return None
    held = [keys.secrets_for(kind, subject_id) for kind in ("member", "guest")]
    found = [h for h in held if h is not None]
    return found[0] if len(found) == 1 else None


def secret_opens_quarantine(ledger: Ledger, secret: bytes, *, tries: int = 3) -> bool | None:
    """Whether ``secret`` is the one the ledger's quarantine was sealed under.

    True if one of the first ``tries`` sealed values opens (AES-GCM authenticates: a wrong
    key cannot open one), False if every one tried fails to open, None if the quarantine
    holds nothing sealed to try. The subject key store uses this to check the secret of a
    store created before it kept a key-check value (:mod:`ledger.pseudonyms`).
    """
    try:
        # rows sealed under a subject's key say nothing of the secret
        deployment = (
            " AND sealed_with IS NULL" if "sealed_with" in quarantine_columns(ledger.con) else ""
        )
        found = ledger.con.execute(
            "SELECT topic, kafka_partition, kafka_offset, message_value FROM quarantine "
            f"WHERE message_value IS NOT NULL{deployment} ORDER BY ALL LIMIT 100"
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
