"""The subject key store's key-check value: how a wrong secret is told from "no data".

Every lookup in the key store is ``HMAC-SHA-256(subject secret, type 0x00 id)``, so under
a different secret every subject simply looks unknown, which a report would take for "no
data held". A key store therefore records, when it is created, a key-check value:
``HMAC-SHA-256(subject secret, "disclosure-ledger/key-check/v1")``, a label used for
nothing else (the quarantine key is an HMAC of its own label). Every opening compares the
secret's value with it first (:func:`hmac.compare_digest`) and refuses a mismatch with
:class:`~ledger.errors.WrongSecretError` before anything is read or written.

The value tells nothing about any subject: HMAC outputs under one key are independent of
one another, so it does not help compute a lookup, a pseudonym or the quarantine key. What
it does allow is testing a candidate secret offline, which a known subject id and its lookup
row allowed before; the secret is 32 random bytes, not a password.

A key store created before this check has no value. It is recorded then as follows:

* an empty store (no subject key yet) records the value of the secret in use: no subject
  can have been keyed under another;
* otherwise the ledger's quarantine is asked (:func:`ledger.quarantine.secret_opens_quarantine`):
  a sealed message that opens proves the secret, one that does not proves it wrong;
* if nothing can prove it, the store is opened to derive (``consume``, ``demo``): the
  secret the consumer runs with is the one that keys its subjects, so its value is recorded
  and pins the secret from then on, said in a warning; readers and ``erase-subject`` refuse
  until then, rather than answer "no key held" under a secret nobody checked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from ledger.errors import LedgerError, WrongSecretError
from ledger.state_db import StateConnection, StateLocation

if TYPE_CHECKING:
    from ledger.store import Ledger

__all__ = ["KEY_CHECK_LABEL", "KeyStoreAccess", "check_secret", "key_check_value"]

log = logging.getLogger(__name__)

KEY_CHECK_LABEL = b"disclosure-ledger/key-check/v1"

META_DDL = (
    "CREATE TABLE IF NOT EXISTS key_store_meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) "
    "WITHOUT ROWID"
)
"""``value BLOB`` is SQLite's "no type" (BLOB affinity, what older stores declared), and
``BYTEA`` on PostgreSQL (:mod:`ledger.state_db`)."""


class KeyStoreAccess(StrEnum):
    """What a command does with the subject key store; it decides how the store opens."""

    derive = "derive"
    """``consume``, ``demo``: creates the store and keys for new subjects."""
    erase = "erase"
    """``erase-subject``: deletes keys from a store that exists."""
    read = "read"
    """Reports and queries: reads a store that exists, opened read-only."""


def key_check_value(secret: bytes) -> bytes:
    """The value a key store keeps to recognise its secret."""
    return hmac.new(secret, KEY_CHECK_LABEL, hashlib.sha256).digest()


def wrong_secret(path: StateLocation, why: str) -> WrongSecretError:
    return WrongSecretError(
        f"the subject secret does not match the one the subject key store {path} was created "
        f"with ({why}); nothing was recorded. Use the secret this ledger was created "
        "with (DISCLOSURE_LEDGER_SUBJECT_SECRET or DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE); "
        "never generate a new one for an existing ledger: under another secret none of its "
        "subjects can be found"
    )


def check_secret(
    db: StateConnection,
    path: StateLocation,
    secret: bytes,
    access: KeyStoreAccess,
    ledger: Ledger | None,
) -> None:
    """Compare the secret with the store's key-check value, recording one if there is none.

    For ``derive`` and ``erase`` the caller has begun a write transaction (``BEGIN
    IMMEDIATE``), so two processes opening an old store cannot record different values.
    """
    expected = key_check_value(secret)
    stored = _stored_value(db)
    if stored is not None:
        if not hmac.compare_digest(stored, expected):
            raise wrong_secret(path, "its key-check value differs")
        return
    if not _has_keys(db):
        if access is not KeyStoreAccess.read:
            new = not _has_table(db, "subject_keys")
            _record(db, expected, "created" if new else "no subject key yet")
        return
    proof = _quarantine_proof(ledger, secret)
    if proof is False:
        raise wrong_secret(path, "the ledger's sealed quarantine does not open under it")
    if proof:
        if access is not KeyStoreAccess.read:
            _record(db, expected, "the ledger's quarantine opens under it")
            log.info("subject key store %s: key-check value recorded (secret proven)", path)
        return
    if access is not KeyStoreAccess.derive:
        raise LedgerError(
            f"the subject key store {path} was created before key stores kept a key-check "
            "value, and nothing here can prove the subject secret is the one it was created "
            "with; under another secret every subject would look unknown. Run `disclosure-"
            "ledger consume` once with the ledger's secret: it records the check value, and "
            "from then on every command checks the secret"
        )
    _record(db, expected, "adopted unverified: the secret the consumer opened it with")
    log.warning(
        "subject key store %s had no key-check value and nothing could prove the subject "
        "secret; recorded the value of the secret in use now, which pins it: from now on "
        "only this secret opens the store",
        path,
    )


def _stored_value(db: StateConnection) -> bytes | None:
    if not _has_table(db, "key_store_meta"):
        return None
    found = db.execute("SELECT value FROM key_store_meta WHERE name = 'key_check'").fetchone()
    return None if found is None else bytes(found[0])


def _has_table(db: StateConnection, name: str) -> bool:
    return db.has_table(name)


def _has_keys(db: StateConnection) -> bool:
    if not _has_table(db, "subject_keys"):
        return False
    return db.execute("SELECT 1 FROM subject_keys LIMIT 1").fetchone() is not None


def _quarantine_proof(ledger: Ledger | None, secret: bytes) -> bool | None:
    if ledger is None:
        return None
    from ledger.quarantine import secret_opens_quarantine

    return secret_opens_quarantine(ledger, secret)


def _record(db: StateConnection, value: bytes, how: str) -> None:
    """Record the key-check value, and how and when it came to be recorded (as text in
    SQLite, as its UTF-8 bytes in PostgreSQL's ``BYTEA``)."""
    db.execute(META_DDL)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    db.executemany(
        "INSERT INTO key_store_meta (name, value) VALUES (?, ?)",
        [
            ("key_check", value),
            ("key_check_recorded", how.encode() if db.postgres else how),
            ("key_check_recorded_at", at.encode() if db.postgres else at),
        ],
    )
