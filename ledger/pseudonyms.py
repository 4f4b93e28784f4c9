"""Keyed pseudonyms for subjects, with per-subject keys kept outside the ledger.

The ledger stores ``HMAC-SHA-256(k_s, type 0x00 id)`` where ``k_s`` is a random key for
that subject. The keys live in a separate SQLite file with ``secure_delete`` on, looked up
by ``HMAC-SHA-256(deployment secret, type 0x00 id)``. Destroying a subject's key
(:meth:`SubjectKeyStore.erase`) leaves no way to link ledger rows to that person, while
every hash in the ledger still verifies because it covers the pseudonym, not the id.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from schemas.errors import LedgerError

KEY_BYTES = 32


def _subject_bytes(subject_type: str, subject_id: str) -> bytes:
    return subject_type.encode() + b"\x00" + subject_id.encode()


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
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.execute("PRAGMA journal_mode = DELETE")
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

    def _lookup(self, subject: bytes) -> bytes:
        return hmac.new(self._secret, subject, hashlib.sha256).digest()

    def pseudonyms(self, subjects: Sequence[tuple[str, str]]) -> list[str]:
        """Pseudonyms (hex) for (type, id) pairs, creating keys for new subjects."""
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
            pair: hmac.new(keys[lookups[pair]], raw[pair], hashlib.sha256).hexdigest()
            for pair in raw
        }
        return [derived[pair] for pair in subjects]

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None:
        """The subject's pseudonym, or None if the store holds no key (never seen, or erased)."""
        data = _subject_bytes(subject_type, subject_id)
        found = self._db.execute(
            "SELECT subject_key FROM subject_keys WHERE lookup = ?", (self._lookup(data),)
        ).fetchone()
        if found is None:
            return None
        return hmac.new(found[0], data, hashlib.sha256).hexdigest()

    def erase(self, subject_type: str, subject_id: str) -> str | None:
        """Destroy the subject's key; returns the pseudonym it produced, or None."""
        pseudonym = self.pseudonym(subject_type, subject_id)
        if pseudonym is not None:
            data = _subject_bytes(subject_type, subject_id)
            self._db.execute("DELETE FROM subject_keys WHERE lookup = ?", (self._lookup(data),))
            self._db.execute("VACUUM")
        return pseudonym
