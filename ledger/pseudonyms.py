"""Keyed pseudonyms for subjects, with per-subject keys kept outside the ledger.

The ledger stores ``HMAC-SHA-256(k_s, type 0x00 id)`` where ``k_s`` is a random key for
that subject. The keys live in a separate SQLite file with ``secure_delete`` on (beside a
DuckLake: in the lake's PostgreSQL database, :mod:`ledger.state_db`), looked up by
``HMAC-SHA-256(deployment secret, type 0x00 id)``. The same key also encrypts the
subject's context values (:mod:`ledger.context_crypto`).

Destroying a subject's key (:func:`ledger.erasure.erase_subject`, crypto-shredding) leaves
no way to link ledger rows to that person or to read their context values, while every hash
in the ledger still verifies because it covers the pseudonym and the ciphertext, not the id.
The erasure itself is recorded in the ledger's erasure journal (:mod:`ledger.erasure`), and
the subject put on the suppression list kept in this file: a later event for them gets a
fresh key marked ``after_erasure``.

:meth:`SubjectKeyStore.derive` keeps what it derived in a bounded in-process cache, which
erasure clears: through the same store directly, from any other connection (the
``erase-subject`` CLI, another instance) through SQLite's ``PRAGMA data_version``, or on
PostgreSQL the erasure counter every erasure increments in its own transaction.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice

from ledger.context_crypto import context_key, context_keys, decrypt_context
from ledger.errors import LedgerError
from ledger.hmacs import hmac_sha256_many
from ledger.key_check import KeyStoreAccess, check_secret
from ledger.state_db import (
    STATE_ERRORS,
    SharedState,
    StateConnection,
    StateLocation,
    connect_state,
)
from ledger.store import Ledger

KEY_BYTES = 32
DEFAULT_CACHE_ENTRIES = 20_000

_SUPPRESSION_LABEL = b"disclosure-ledger/suppression/v1\x00"
KEY_ID_BYTES = 16
"""A key's id: random bytes made with the key and kept beside it in the key store (hex
outside it). It names the key (the erasure journal and a quarantined message sealed under
it record it) and says nothing of the subject; once the key is erased it names nothing."""


_ERASURE_COUNTER_DDL = "CREATE TABLE IF NOT EXISTS key_store_erasures (erasures BIGINT NOT NULL)"
"""PostgreSQL only: a one-row counter every erasure increments in its own transaction, which
other instances read to empty their caches (SQLite has ``PRAGMA data_version`` instead)."""


def _add_key_columns(db: StateConnection) -> None:
    """Columns added to ``subject_keys`` after stores were first written: each key's id
    (random, :data:`KEY_ID_BYTES`, made with the key and indexed: a sealed quarantined
    message and the erasure journal name the key by it) and whether it was made after the
    subject's erasure; ids of older keys are filled in."""
    present = db.columns("subject_keys")
    if "key_id" not in present:
        db.execute("ALTER TABLE subject_keys ADD COLUMN key_id BLOB")
    if "after_erasure" not in present:
        db.execute("ALTER TABLE subject_keys ADD COLUMN after_erasure INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX IF NOT EXISTS subject_keys_by_id ON subject_keys (key_id)")
    old = db.execute("SELECT lookup, subject_key FROM subject_keys WHERE key_id IS NULL").fetchall()
    db.executemany(
        "UPDATE subject_keys SET key_id = ? WHERE lookup = ?",
        [(os.urandom(KEY_ID_BYTES), lookup) for lookup, _ in old],
    )


def _subject_bytes(subject_type: str, subject_id: str) -> bytes:
    return subject_type.encode() + b"\x00" + subject_id.encode()


def _pseudonyms(subject_keys: Sequence[bytes], subjects: Sequence[bytes]) -> list[str]:
    """The pseudonym of each subject: HMAC-SHA-256 under its own key, in hex."""
    return [digest.hex() for digest in hmac_sha256_many(subject_keys, subjects)]


@dataclass(frozen=True, slots=True)
class SubjectSecrets:
    """What the consumer derives from one subject's key: never the key itself.

    ``after_erasure``: the subject was erased before and has appeared again; this key was
    made after that erasure (the suppression list, :meth:`SubjectKeyStore.erase`)."""

    pseudonym: str
    context_key: bytes
    key_id: str = ""
    after_erasure: bool = False


class SubjectKeyStore:
    """The per-subject key table (one SQLite file, beside but outside the ledger; or, beside
    a DuckLake, tables in the lake's PostgreSQL database: :class:`~ledger.state_db.SharedState`).

    Opening it checks the secret against the store's key-check value and raises
    :class:`~ledger.errors.WrongSecretError` on a mismatch, before anything is read or
    written (:mod:`ledger.key_check`). ``access`` says what the caller will do: ``derive``
    (the default) creates the store if missing; ``erase`` and ``read`` need it to exist,
    and ``read`` opens it read-only. ``ledger``, if given, lets an old store without a
    check value be proven by the ledger's sealed quarantine. ``cache_entries`` caps the
    cache of :meth:`derive` (0 turns it off); see there.
    """

    def __init__(
        self,
        path: StateLocation,
        secret: bytes,
        *,
        access: KeyStoreAccess = KeyStoreAccess.derive,
        ledger: Ledger | None = None,
        cache_entries: int = DEFAULT_CACHE_ENTRIES,
    ) -> None:
        if cache_entries < 0:
            raise LedgerError(f"cache_entries must be 0 or more, not {cache_entries}")
        shared = isinstance(path, SharedState)
        if len(secret) < 16:
            raise LedgerError(
                f"the subject secret is shorter than 16 bytes, so it is not the one the subject "
                f"key store {path} was created with: supply that one"
                if shared or path.exists()
                else "the subject secret is shorter than 16 bytes; generate one with "
                "`python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        if access is not KeyStoreAccess.derive and not shared and not path.exists():
            raise LedgerError(
                f"no subject key store at {path}: `consume` creates it beside the ledger; "
                "give --key-store if it lives elsewhere"
            )
        self.path = path
        self._secret = secret
        self._cache_entries = cache_entries
        # (type, id) -> what derive() returned for it; dicts keep insertion order, the order
        # of eviction. Valid only while _data_version is SQLite's current value.
        self._cache: dict[tuple[str, str], SubjectSecrets] = {}
        self._data_version: int | None = None
        try:
            self._db = connect_state(path, read_only=access is KeyStoreAccess.read)
        except STATE_ERRORS as exc:
            raise LedgerError(f"cannot open the subject key store {path}: {exc}") from exc
        try:
            if (
                shared
                and access is not KeyStoreAccess.derive
                and not self._db.has_table("subject_keys")
            ):
                raise LedgerError(
                    f"no subject key store in {path}: `consume` creates it on the lake"
                )
            self._open(access, ledger)
        except STATE_ERRORS as exc:
            self._db.close()
            raise LedgerError(f"cannot open the subject key store {path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def _open(self, access: KeyStoreAccess, ledger: Ledger | None) -> None:
        """Settings, tables, and the secret checked (:mod:`ledger.key_check`) before use."""
        # Deleted rows are overwritten with zeros, the rollback journal is a file that is
        # deleted at commit, and VACUUM's scratch copy stays in memory, never on disk.
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA temp_store = MEMORY")
        if access is KeyStoreAccess.read:
            check_secret(self._db, self.path, self._secret, access, ledger)
            return
        self._db.execute("PRAGMA journal_mode = DELETE")
        # One write transaction: a mismatch rolls back to the file as it was, and two
        # processes opening an old store cannot record different check values.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            check_secret(self._db, self.path, self._secret, access, ledger)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS subject_keys "
                "(lookup BLOB PRIMARY KEY, subject_key BLOB NOT NULL) WITHOUT ROWID"
            )
            _add_key_columns(self._db)
            # The suppression list: one row per erased subject, HMAC-SHA-256(secret,
            # "disclosure-ledger/suppression/v1" 0x00 type 0x00 id). Lives in this file so
            # the key's deletion and the subject's suppression commit together.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS suppressed "
                "(token BLOB PRIMARY KEY, erased_on TEXT NOT NULL) WITHOUT ROWID"
            )
            if self._db.postgres:
                self._db.execute(_ERASURE_COUNTER_DDL)
                self._db.execute(
                    "INSERT INTO key_store_erasures SELECT 0 "
                    "WHERE NOT EXISTS (SELECT 1 FROM key_store_erasures)"
                )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._cache.clear()
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

    def subject_quarantine_key(self, key_id: str) -> bytes | None:
        """The key that seals a quarantined message about the subject whose key has this id
        (:data:`KEY_ID_BYTES`): ``HMAC-SHA-256(k_s, "disclosure-ledger/quarantine-key/v1")``.
        None once the subject is erased: the message can no longer be opened."""
        from ledger.quarantine import quarantine_key

        key = self.key_for_id(key_id)
        return None if key is None else quarantine_key(key)

    def _lookups(self, subjects: Sequence[bytes]) -> list[bytes]:
        """The key table's lookup values: HMAC-SHA-256 of each subject under the secret."""
        return hmac_sha256_many(self._secret, subjects)

    def _lookup(self, subject: bytes) -> bytes:
        return self._lookups([subject])[0]

    def key_lookup(self, subject_type: str, subject_id: str) -> str:
        """The key table's lookup of a subject (hex): what the erasure journal records so that
        a restored key store can have the erasure applied again (:meth:`apply_erasure`)."""
        return self._lookup(_subject_bytes(subject_type, subject_id)).hex()

    def suppression_token(self, subject_type: str, subject_id: str) -> str:
        """The subject's entry in the suppression list (hex):
        ``HMAC-SHA-256(subject secret, "disclosure-ledger/suppression/v1" 0x00 lookup)``,
        where ``lookup`` is ``HMAC-SHA-256(subject secret, type 0x00 id)``, the key table's
        own lookup. The label is used for nothing else. Keyed on the id through the lookup so
        that a restore can put a subject back on the list from its key row alone
        (:meth:`apply_erasure`), and the erasure journal need hold nothing that someone with
        the secret and a candidate id could match."""
        return self._suppression_tokens([self._lookup(_subject_bytes(subject_type, subject_id))])[
            0
        ].hex()

    def _suppression_tokens(self, lookups: Sequence[bytes]) -> list[bytes]:
        return hmac_sha256_many(self._secret, [_SUPPRESSION_LABEL + lk for lk in lookups])

    def is_suppressed(self, subject_type: str, subject_id: str) -> bool:
        """Whether this subject was erased (it is on the suppression list)."""
        token = bytes.fromhex(self.suppression_token(subject_type, subject_id))
        return (
            self._db.execute("SELECT 1 FROM suppressed WHERE token = ?", (token,)).fetchone()
            is not None
        )

    def suppressed_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM suppressed").fetchone()[0])

    def suppression_entries(self) -> list[tuple[bytes, str]]:
        """The suppression list as (token, day erased): tokens are HMACs under the one
        subject secret, so another store of the same deployment takes them as they are."""
        return [
            (bytes(token), str(day))
            for token, day in self._db.execute("SELECT token, erased_on FROM suppressed")
        ]

    def add_suppression_entries(self, entries: Sequence[tuple[bytes, str]]) -> int:
        """Entries of another store of the same deployment added to this list (a restore
        carries the list in place into the restored store); returns how many were new."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            added = self._db.executemany(
                "INSERT OR IGNORE INTO suppressed (token, erased_on) VALUES (?, ?)", entries
            ).rowcount
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return added

    def key_for_id(self, key_id: str) -> bytes | None:
        """The subject key whose id (:data:`KEY_ID_BYTES`) is ``key_id``; None once erased."""
        found = self._db.execute(
            "SELECT subject_key FROM subject_keys WHERE key_id = ?", (bytes.fromhex(key_id),)
        ).fetchone()
        return None if found is None else bytes(found[0])

    def secrets_for(self, subject_type: str, subject_id: str) -> SubjectSecrets | None:
        """What :meth:`derive` gives for a subject, without creating a key; None if none."""
        found = self._db.execute(
            "SELECT subject_key, key_id, after_erasure FROM subject_keys WHERE lookup = ?",
            (self._lookup(_subject_bytes(subject_type, subject_id)),),
        ).fetchone()
        if found is None:
            return None
        key = bytes(found[0])
        return SubjectSecrets(
            _pseudonyms([key], [_subject_bytes(subject_type, subject_id)])[0],
            context_key(key),
            bytes(found[1]).hex(),
            bool(found[2]),
        )

    def _key(self, subject_type: str, subject_id: str) -> bytes | None:
        found = self._db.execute(
            "SELECT subject_key FROM subject_keys WHERE lookup = ?",
            (self._lookup(_subject_bytes(subject_type, subject_id)),),
        ).fetchone()
        return None if found is None else bytes(found[0])

    def derive(self, subjects: Sequence[tuple[str, str]]) -> list[SubjectSecrets]:
        """Pseudonym and context key for (type, id) pairs, creating keys for new subjects.

        Subjects derived before are answered from an in-process cache, without SQLite or
        HMAC; the results are the same with or without it. Erasure invalidates it:

        * :meth:`erase` on this store drops the subject's entry;
        * every call first reads SQLite's ``PRAGMA data_version``, which changes when
          another connection (the ``erase-subject`` CLI, any process) commits to the key
          store file, and empties the whole cache if it changed; on PostgreSQL, the erasure
          counter (:data:`_ERASURE_COUNTER_DDL`), committed with every erasure.

        So a subject erased elsewhere is never answered from the cache once its erasure has
        committed before this call starts. An erasure that commits during a call, between
        that check and the ledger append, is missed for that one batch, which is the same
        window as without a cache: the key was read before the erasure then too.

        The cache holds at most ``cache_entries`` subjects (the constructor's, default
        20,000; 0 disables it); when a batch would overflow it, the oldest inserted entries
        are dropped (down to half the cap, or less to make room), without bookkeeping on
        hits. An entry takes about 375 bytes (tracemalloc, simulated 14-character ids: the
        key tuple and its id string, the 64-character hex pseudonym, the 32-byte context
        key, the :class:`SubjectSecrets` and the dict slot), about 7.5 MB at 20,000. The
        cache holds derived secrets, never a subject's key, until evicted or erased.
        """
        cap = self._cache_entries
        if cap:
            self._forget_if_changed_elsewhere()
        derived: dict[tuple[str, str], SubjectSecrets] = {}
        todo: list[tuple[str, str]] = []
        get = self._cache.get
        for pair in set(subjects):
            hit = get(pair)
            if hit is None:
                todo.append(pair)
            else:
                derived[pair] = hit
        if todo:
            fresh = self._derive_uncached(todo)
            derived.update(fresh)
            if cap:
                self._remember(fresh, cap)
        return [derived[pair] for pair in subjects]

    def _forget_if_changed_elsewhere(self) -> None:
        """Empty the cache if another connection committed to the key store since last time."""
        version = int(
            self._db.execute(
                "SELECT erasures FROM key_store_erasures"
                if self._db.postgres
                else "PRAGMA data_version"
            ).fetchone()[0]
        )
        if version != self._data_version:
            self._cache.clear()
            self._data_version = version

    def _remember(self, fresh: dict[tuple[str, str], SubjectSecrets], cap: int) -> None:
        """Add to the cache, first dropping the oldest entries if it would exceed ``cap``."""
        cache = self._cache
        if len(fresh) >= cap:
            cache.clear()
            cache.update(islice(fresh.items(), cap))
            return
        if len(cache) + len(fresh) > cap:
            keep = min(cap // 2, cap - len(fresh))
            # A new dict rather than deletions at the front: dicts keep deleted slots.
            cache = self._cache = dict(islice(cache.items(), len(cache) - keep, None))
        cache.update(fresh)

    def _derive_uncached(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], SubjectSecrets]:
        """derive() from SQLite, for distinct pairs: reads keys, creates the missing ones."""
        raw = [_subject_bytes(*pair) for pair in pairs]
        wanted = self._lookups(raw)
        keys: dict[bytes, bytes] = {}
        ids: dict[bytes, str] = {}
        after: set[bytes] = set()
        self._read_keys(wanted, keys, ids, after)
        missing = [i for i, lk in enumerate(wanted) if lk not in keys]
        if missing:
            # A subject on the suppression list gets a fresh key marked after_erasure: its
            # events are still recorded (they are evidence), and flagged. An empty list (the
            # usual case) costs one look, no HMAC.
            tokens = (
                self._suppression_tokens([wanted[i] for i in missing])
                if self._any_suppressed()
                else None
            )
            listed = set() if tokens is None else self._suppressed(tokens)
            fresh = os.urandom((KEY_BYTES + KEY_ID_BYTES) * len(missing))
            rows = []
            for n, i in enumerate(missing):
                start = n * (KEY_BYTES + KEY_ID_BYTES)
                key = fresh[start : start + KEY_BYTES]
                key_id = fresh[start + KEY_BYTES : start + KEY_BYTES + KEY_ID_BYTES]
                lookup = wanted[i]
                keys[lookup] = key
                ids[lookup] = key_id.hex()
                reappeared = tokens is not None and tokens[n] in listed
                if reappeared:
                    after.add(lookup)
                rows.append((lookup, key, key_id, int(reappeared)))
            # Another process (another instance on a lake) may key the same new subject at
            # once: the first insert wins, and every process reads back the key that won.
            self._db.execute("BEGIN")
            inserted = self._db.executemany(
                "INSERT OR IGNORE INTO subject_keys (lookup, subject_key, key_id, "
                "after_erasure) VALUES (?, ?, ?, ?)",
                rows,
            ).rowcount
            self._db.execute("COMMIT")
            if inserted != len(rows):
                self._read_keys([row[0] for row in rows], keys, ids, after)
        subject_keys = [keys[lookup] for lookup in wanted]
        key_ids = [ids[lookup] for lookup in wanted]
        return {
            pair: SubjectSecrets(pseudonym, context, kid, lookup in after)
            for pair, lookup, pseudonym, context, kid in zip(
                pairs,
                wanted,
                _pseudonyms(subject_keys, raw),
                context_keys(subject_keys),
                key_ids,
                strict=True,
            )
        }

    def _read_keys(
        self,
        lookups: Sequence[bytes],
        keys: dict[bytes, bytes],
        ids: dict[bytes, str],
        after: set[bytes],
    ) -> None:
        """The stored keys under ``lookups`` into ``keys``, their ids and after-erasure
        marks into ``ids`` and ``after`` (replacing what they held for those lookups)."""
        for start in range(0, len(lookups), 500):
            chunk = lookups[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for lookup, key, key_id, reappeared in self._db.execute(
                "SELECT lookup, subject_key, key_id, after_erasure FROM subject_keys "
                f"WHERE lookup IN ({marks})",
                chunk,
            ):
                lookup = bytes(lookup)
                keys[lookup] = bytes(key)
                ids[lookup] = bytes(key_id).hex()
                if reappeared:
                    after.add(lookup)
                else:
                    after.discard(lookup)

    def _any_suppressed(self) -> bool:
        return bool(self._db.execute("SELECT EXISTS (SELECT 1 FROM suppressed)").fetchone()[0])

    def _suppressed(self, tokens: Sequence[bytes]) -> set[bytes]:
        found: set[bytes] = set()
        for start in range(0, len(tokens), 500):
            chunk = tokens[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                bytes(row[0])
                for row in self._db.execute(
                    f"SELECT token FROM suppressed WHERE token IN ({marks})", chunk
                )
            )
        return found

    def pseudonyms(self, subjects: Sequence[tuple[str, str]]) -> list[str]:
        """Pseudonyms (hex) for (type, id) pairs, creating keys for new subjects."""
        return [secrets.pseudonym for secrets in self.derive(subjects)]

    def pseudonym(self, subject_type: str, subject_id: str) -> str | None:
        """The subject's pseudonym, or None if the store holds no key (never seen, or erased)."""
        key = self._key(subject_type, subject_id)
        if key is None:
            return None
        return _pseudonyms([key], [_subject_bytes(subject_type, subject_id)])[0]

    def subject_key(self, subject_type: str, subject_id: str) -> bytes | None:
        """The subject's own key ``k_s``, or None if the store holds none. Only for giving it
        to that person with their answer's proofs (``report subject --with-proofs``), so
        they can recompute their pseudonym: see :mod:`reports.subject.proofs`."""
        return self._key(subject_type, subject_id)

    def context_key(self, subject_type: str, subject_id: str) -> bytes | None:
        """The key of the subject's context values, or None if the store holds no key."""
        key = self._key(subject_type, subject_id)
        return None if key is None else context_key(key)

    def erase(
        self, subject_type: str, subject_id: str, *, erased_at: datetime | None = None
    ) -> SubjectSecrets | None:
        """Destroy the subject's key and put the subject on the suppression list, in one
        SQLite transaction; returns what the key produced (its pseudonym and key id, for the
        erasure journal), or None if no key was held (the subject is listed all the same).

        Also drops the subject from :meth:`derive`'s cache, first, and even if the store
        held no key (if another connection erased it, this store's cache may still have it).
        """
        self._cache.pop((subject_type, subject_id), None)
        held = self.secrets_for(subject_type, subject_id)
        lookup = self._lookup(_subject_bytes(subject_type, subject_id))
        self._erase_rows(lookup, erased_at)
        return held

    def apply_erasure(self, key_id: str, *, erased_at: datetime | None = None) -> bool:
        """An erasure made elsewhere, applied again from the erasure journal's key id (a
        restored key store gets the erasures made since its snapshot this way): the key with
        that id deleted and its subject put on the suppression list. False if this store
        holds no such key (the subject was first seen after the snapshot: no key to delete)."""
        found = self._db.execute(
            "SELECT lookup FROM subject_keys WHERE key_id = ?", (bytes.fromhex(key_id),)
        ).fetchone()
        if found is None:
            return False
        self._erase_rows(bytes(found[0]), erased_at)
        return True

    def _erase_rows(self, lookup: bytes, erased_at: datetime | None) -> None:
        """Delete the key under ``lookup`` and list its subject, in one transaction. The list
        keeps the day only: an exact time would match the journal's entry to it."""
        day = (erased_at or datetime.now(UTC)).astimezone(UTC).date().isoformat()
        token = self._suppression_tokens([lookup])[0]
        self._db.execute("BEGIN IMMEDIATE")
        try:
            gone = self._db.execute("DELETE FROM subject_keys WHERE lookup = ?", (lookup,)).rowcount
            self._db.execute(
                "INSERT OR IGNORE INTO suppressed (token, erased_on) VALUES (?, ?)", (token, day)
            )
            if self._db.postgres:  # other instances' caches: committed with the erasure
                self._db.execute("UPDATE key_store_erasures SET erasures = erasures + 1")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if gone:
            self._cache.clear()
            # The deleted key's row leaves the store's pages: SQLite's VACUUM (secure_delete
            # zeroed it already), PostgreSQL's VACUUM FULL (docs/ducklake.md says what is left).
            self._db.vacuum("subject_keys")


def decrypt_subject_context(
    keys: SubjectKeyStore, subject_type: str, subject_id: str, event_id: str, stored: str
) -> dict[str, str] | None:
    """For investigators: the context of one of this subject's rows, or None once erased."""
    key = keys.context_key(subject_type, subject_id)
    return None if key is None else decrypt_context(key, event_id, stored)
