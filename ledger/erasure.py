"""Erasure: crypto-shredding one subject, and the journal that keeps every erasure.

:func:`erase_subject` destroys the subject's key in the key store (and lists the subject
on the suppression list there, :meth:`ledger.pseudonyms.SubjectKeyStore.erase`) and
records the erasure in the ledger's **erasure journal**, the ``erasures`` table, in one
DuckDB transaction that is open while the key is destroyed: a failure to destroy the key
leaves no record claiming it was.

A journal entry holds: its id, when, who asked (``actor``) and who approved
(``approved_by``: a second person, :mod:`disclosure_ledger.service.approvals`), the
subject type, the pseudonym the key produced and how many ledger rows it covered, and the
**key id** (random, made with the key: :data:`ledger.pseudonyms.KEY_ID_BYTES`). Never the
subject id, and nothing that someone holding the deployment's subject secret could
compute from a candidate id: once
the key is gone, the entry cannot be matched to a person by anyone. The key id is what a
restore needs: a key store restored from a backup still holds the erased key under that
id, and :func:`reapply_erasures` deletes it again before anything reads the store.

Beside each entry, ``erasure_recipients`` lists who received the subject's data (from
the ledger, read before the key is destroyed): the GDPR Art. 19 notices due. Notices sent
are recorded in ``erasure_notices``. Both hold recipients, never the subject.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import duckdb

from ledger.errors import LedgerError

if TYPE_CHECKING:  # ledger.store creates these tables through this module
    from ledger.pseudonyms import SubjectKeyStore
    from ledger.store import Ledger

AFTER_ERASURE_FLAG = "after_erasure"
"""The flag of a disclosure recorded for a subject on the suppression list: an event that
arrived after that subject's erasure. Still recorded (it is evidence), under a fresh key."""

ERASURES_DDL = """
CREATE TABLE IF NOT EXISTS erasures (
    erased_at TIMESTAMP NOT NULL, actor VARCHAR NOT NULL, subject_type VARCHAR NOT NULL,
    subject_pseudonym VARCHAR NOT NULL, ledger_rows BIGINT NOT NULL,
    erasure_id VARCHAR, approved_by VARCHAR, key_id VARCHAR
);
CREATE TABLE IF NOT EXISTS erasure_recipients (
    erasure_id VARCHAR NOT NULL, recipient_id VARCHAR NOT NULL,
    recipient_category VARCHAR NOT NULL, ledger_rows BIGINT NOT NULL,
    last_disclosed_at TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS erasure_notices (
    erasure_id VARCHAR NOT NULL, recipient_id VARCHAR NOT NULL, sent_on DATE NOT NULL,
    recorded_at TIMESTAMP NOT NULL, recorded_by VARCHAR NOT NULL, note VARCHAR
);
"""
"""The journal and its notices. Created by every writer (:class:`ledger.store.Ledger`)."""

_ADDED = {"erasure_id": "VARCHAR", "approved_by": "VARCHAR", "key_id": "VARCHAR"}


def ensure_erasure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the journal's tables, and bring a journal written before it had ids, approvals
    and key ids up to date (older entries get an id; their approver and key id stay null)."""
    con.execute(ERASURES_DDL)
    present = {
        str(r[0])
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'erasures'"
        ).fetchall()
    }
    for column, kind in _ADDED.items():
        if column not in present:
            con.execute(f"ALTER TABLE erasures ADD COLUMN {column} {kind}")
    con.execute("UPDATE erasures SET erasure_id = uuid()::VARCHAR WHERE erasure_id IS NULL")


@dataclass(frozen=True)
class ErasureRecipient:
    recipient_id: str
    recipient_category: str
    ledger_rows: int
    last_disclosed_at: datetime


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase_subject` did. ``erased`` is False if no key was held."""

    erased: bool
    erased_at: datetime
    ledger_rows: int
    pseudonym: str | None = None  # what else links to the subject must forget (request log)
    erasure_id: str | None = None
    approved_by: str | None = None
    recipients: tuple[ErasureRecipient, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class JournalEntry:
    """One erasure as the journal holds it."""

    erasure_id: str
    erased_at: datetime
    actor: str
    approved_by: str | None
    subject_type: str
    ledger_rows: int
    key_id: str | None


def erase_subject(
    ledger: Ledger,
    keys: SubjectKeyStore,
    subject_type: str,
    subject_id: str,
    *,
    actor: str,
    approved_by: str | None = None,
    now: datetime | None = None,
) -> Erasure:
    """Crypto-shred one subject: destroy its key, list it as suppressed, journal the erasure.

    The journal entry and its recipients commit in the same DuckDB transaction that is open
    while the key is destroyed. With no key held (never seen, or already erased) the
    subject is still put on the suppression list, and nothing is journalled.
    """
    if ledger.read_only:
        raise LedgerError(f"ledger {ledger.path} is open read-only; an erasure must be recorded")
    if not actor.strip():
        raise LedgerError("an erasure needs an actor: who asked for it (--actor)")
    if approved_by is not None and approved_by.strip() == actor.strip():
        raise LedgerError(
            f"{actor} cannot approve their own erasure: a second person must (--approved-by)"
        )
    erased_at = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    held = keys.secrets_for(subject_type, subject_id)
    if held is None:
        keys.erase(subject_type, subject_id, erased_at=erased_at.replace(tzinfo=UTC))
        return Erasure(False, erased_at, 0)
    con = ledger.con
    ensure_erasure_tables(con)
    recipients = tuple(
        ErasureRecipient(str(r), str(c), int(n), at)
        for r, c, n, at in con.execute(
            "SELECT recipient_id, any_value(recipient_category), count(*), max(occurred_at) "
            "FROM disclosures WHERE subject_pseudonym = ? GROUP BY recipient_id ORDER BY 1",
            [held.pseudonym],
        ).fetchall()
    )
    rows = sum(r.ledger_rows for r in recipients)
    erasure_id = str(uuid.uuid4())
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO erasures (erased_at, actor, subject_type, subject_pseudonym, "
            "ledger_rows, erasure_id, approved_by, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                erased_at,
                actor,
                subject_type,
                held.pseudonym,
                rows,
                erasure_id,
                approved_by,
                held.key_id,
            ],
        )
        if recipients:
            con.executemany(
                "INSERT INTO erasure_recipients VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        erasure_id,
                        r.recipient_id,
                        r.recipient_category,
                        r.ledger_rows,
                        r.last_disclosed_at,
                    )
                    for r in recipients
                ],
            )
        keys.erase(subject_type, subject_id, erased_at=erased_at.replace(tzinfo=UTC))
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
    return Erasure(True, erased_at, rows, held.pseudonym, erasure_id, approved_by, recipients)


def journal(ledger: Ledger, *, since: datetime | None = None) -> list[JournalEntry]:
    """The erasure journal, oldest first; only entries after ``since`` if given."""
    try:
        rows = ledger.con.execute(
            "SELECT erasure_id, erased_at, actor, approved_by, subject_type, ledger_rows, key_id "
            "FROM erasures WHERE ? IS NULL OR erased_at > ? ORDER BY erased_at, erasure_id",
            [since, since],
        ).fetchall()
    except duckdb.CatalogException:  # a ledger with no erasure yet, opened read-only
        return []
    return [
        JournalEntry(
            str(i),
            at,
            str(a),
            None if b is None else str(b),
            str(t),
            int(n),
            None if k is None else str(k),
        )
        for i, at, a, b, t, n, k in rows
    ]


def reapply_erasures(keys: SubjectKeyStore, entries: Sequence[JournalEntry]) -> int:
    """Apply journalled erasures again to a (restored) key store; returns keys deleted.
    Entries written before the journal kept key ids cannot be applied: the caller says so."""
    deleted = 0
    for entry in entries:
        if entry.key_id is not None and keys.apply_erasure(
            entry.key_id, erased_at=entry.erased_at.replace(tzinfo=UTC)
        ):
            deleted += 1
    return deleted
