"""Keyed pseudonyms for subjects, with per-subject keys kept outside the ledger.

The ledger stores ``HMAC-SHA-256(k_s, type 0x00 id)`` where ``k_s`` is a random key for
that subject. The keys live in a separate SQLite file with ``secure_delete`` on, looked up
by ``HMAC-SHA-256(deployment secret, type 0x00 id)``. The same key also encrypts the
subject's context values (:mod:`ledger.context_crypto`).

Destroying a subject's key (:func:`erase_subject`, crypto-shredding) leaves no way to link
ledger rows to that person or to read their context values, while every hash in the
ledger still verifies because it covers the pseudonym and the ciphertext, not the id. The
erasure itself is recorded in the ledger's ``erasures`` table: when, by whom, and which
pseudonym, never the id.
"""

from __future__ import annotations

import hmac
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ledger.context_crypto import context_key, decrypt_context
from ledger.store import Ledger
from schemas.errors import LedgerError

KEY_BYTES = 32

ERASURES_DDL = """
CREATE TABLE IF NOT EXISTS erasures (
    erased_at TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, subject_type VARCHAR NOT NULL,
    subject_pseudonym VARCHAR NOT NULL, ledger_rows BIGINT NOT NULL
);
"""


def _subject_bytes(subject_type: str, subject_id: str) -> bytes:
    return subject_type.encode() + b"\x00" + subject_id.encode()


@dataclass(frozen=True)
class SubjectSecrets:
    """What the consumer derives from one subject's key: never the key itself."""

    pseudonym: str
    context_key: bytes


class SubjectKeyStore:
    """The per-subject key table (one SQLite file, beside but outside the ledger)."""

    def __init__(self, path: Path, secret: bytes) -> None:
        if len(secret) < 16:
            raise LedgerError(
                "the subject secret is shorter than 16 bytes; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        self.path = path
        self._secret = secret
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
            # Deleted rows are overwritten with zeros, the rollback journal is a file that is
            # deleted at commit, and VACUUM's scratch copy stays in memory, never on disk.
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA journal_mode = DELETE")
            self._db.execute("PRAGMA temp_store = MEMORY")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS subject_keys "
                "(lookup BLOB PRIMARY KEY, subject_key BLOB NOT NULL) WITHOUT ROWID"
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the subject key store {path}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SubjectKeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def quarantine_key(self) -> bytes:
        """The key that seals quarantined bytes (derived from the deployment secret)."""
        from ledger.quarantine import quarantine_key

        return quarantine_key(self._secret)

    def _lookup(self, subject: bytes) -> bytes:
        return hmac.digest(self._secret, subject, "sha256")

    def _key(self, subject_type: str, subject_id: str) -> bytes | None:
        found = self._db.execute(
            "SELECT subject_key FROM subject_keys WHERE lookup = ?",
            (self._lookup(_subject_bytes(subject_type, subject_id)),),
        ).fetchone()
        return None if found is None else bytes(found[0])

    def derive(self, subjects: Sequence[tuple[str, str]]) -> list[SubjectSecrets]:
        """Pseudonym and context key for (type, id) pairs, creating keys for new subjects."""
        raw = {pair: _subject_bytes(*pair) for pair in set(subjects)}
        lookups = {pair: self._lookup(data) for pair, data in raw.items()}
        keys: dict[bytes, bytes] = {}
        wanted = list(lookups.values())
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for lookup, key in self._db.execute(
                f"SELECT lookup, subject_key FROM subject_keys WHERE lookup IN ({marks})", chunk
            ):
                keys[lookup] = key
        missing = [lk for lk in wanted if lk not in keys]
        if missing:
            fresh = {lk: os.urandom(KEY_BYTES) for lk in missing}
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO subject_keys (lookup, subject_key) VALUES (?, ?)", fresh.items()
            )
            self._db.execute("COMMIT")
            keys.update(fresh)
        derived = {
            pair: SubjectSecrets(
                hmac.digest(keys[lookups[pair]], raw[pair], "sha256").hex(),
                context_key(keys[lookups[pair]]),
            )
            for pair in raw
        }
        return [derived[pair] for pair in subjects]

    def pseudonyms(self, subjects: Sequence[tuple[str, str]]) -> list[str]:
        """Pseudonyms (hex) for (type, id) pairs, creating keys for new subjects."""
        return [secrets.pseudonym for secrets in self.derive(subjects)]

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None:
        """The subject's pseudonym, or None if the store holds no key (never seen, or erased)."""
        key = self._key(subject_type, subject_id)
        if key is None:
            return None
        return hmac.digest(key, _subject_bytes(subject_type, subject_id), "sha256").hex()

    def context_key(self, subject_type: str, subject_id: str) -> bytes | None:
        """The key of the subject's context values, or None if the store holds no key."""
        key = self._key(subject_type, subject_id)
        return None if key is None else context_key(key)

    def erase(self, subject_type: str, subject_id: str) -> str | None:
        """Destroy the subject's key; returns the pseudonym it produced, or None."""
        pseudonym = self.pseudonym(subject_type, subject_id)
        if pseudonym is not None:
            data = _subject_bytes(subject_type, subject_id)
            self._db.execute("DELETE FROM subject_keys WHERE lookup = ?", (self._lookup(data),))
            self._db.execute("VACUUM")
        return pseudonym


def decrypt_subject_context(
    keys: SubjectKeyStore, subject_type: str, subject_id: str, event_id: str, stored: str
) -> dict[str, str] | None:
    """For investigators: the context of one of this subject's rows, or None once erased."""
    key = keys.context_key(subject_type, subject_id)
    return None if key is None else decrypt_context(key, event_id, stored)


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase_subject` did. ``erased`` is False if no key was held."""

    erased: bool
    erased_at: datetime
    ledger_rows: int


def erase_subject(
    ledger: Ledger,
    keys: SubjectKeyStore,
    subject_type: str,
    subject_id: str,
    *,
    actor: str,
    now: datetime | None = None,
) -> Erasure:
    """Crypto-shred one subject: destroy its key and record the erasure in the ledger.

    The record (``erasures``: when, by whom, the subject type and pseudonym, how many ledger
    rows it covered) commits in the same DuckDB transaction that is open while the key is
    destroyed, so a failure to destroy the key leaves no record claiming it was.
    """
    if ledger.read_only:
        raise LedgerError(f"ledger {ledger.path} is open read-only; an erasure must be recorded")
    if not actor.strip():
        raise LedgerError("an erasure needs an actor: who asked for it (--actor)")
    erased_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    pseudonym = keys.pseudonym(subject_type, subject_id)
    if pseudonym is None:
        return Erasure(False, erased_at, 0)
    con = ledger.con
    con.execute(ERASURES_DDL)
    rows = int(
        con.execute(
            "SELECT count(*) FROM disclosures WHERE subject_pseudonym = ?", [pseudonym]
        ).fetchall()[0][0]
    )
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO erasures VALUES (?, ?, ?, ?, ?)",
            [erased_at, actor, subject_type, pseudonym, rows],
        )
        keys.erase(subject_type, subject_id)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return Erasure(True, erased_at, rows)
