"""The access log: every read of personal data, appended, hash-chained, never changed.

One row per read (a subject report, a timeline, a query, a download, quarantine bytes):
who, with which role, when, what was asked, the stated reason, and how many rows were
returned. The subject appears only as its pseudonym, so an erasure (destroying the
subject's key) unlinks the access log too. The query text is kept.

The rows form one chain, ``access_log``, hashed as the disclosures are (:mod:`ledger.chain`):
``leaf = SHA-256(0x00 || netstrings of ACCESS_FIELDS)``, ``chain_hash(n) = SHA-256(0x01 ||
chain_hash(n-1) || leaf(n))`` from 32 zero bytes. Nothing in this project updates or
deletes a row; ``verify`` recomputes the chain (:mod:`ledger.verify.access_log`), and
every signed checkpoint names its length and head as the chain ``access_log``.
The table is created with the rest of the ledger when a writer opens it
(:class:`ledger.store.Ledger`), so every reader finds it.

An entry commits in its own transaction before the read it records is answered: if it
cannot be written, the caller fails the read.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import tenacity

from ledger.chain import GENESIS, LEAF_PREFIX, encode_value, link_hash
from ledger.errors import LedgerError

ACCESS_CHAIN = "access_log"

ACCESS_FIELDS: tuple[str, ...] = (
    "seq",
    "accessed_at_ms",
    "actor",
    "role",
    "action",
    "reason",
    "subject_pseudonym",
    "query_text",
    "detail",
    "rows_returned",
)
"""Everything an entry asserts, in hashing order."""

ACCESS_LEAF_SELECT = (
    "seq, epoch_ms(accessed_at) AS accessed_at_ms, actor, role, action, reason, "
    "subject_pseudonym, query_text, detail, rows_returned"
)
"""The :data:`ACCESS_FIELDS` of ``access_log`` rows, as :func:`access_leaf` takes them."""

ACCESS_LOG_DDL = """
CREATE TABLE IF NOT EXISTS access_log (
    seq BIGINT PRIMARY KEY, accessed_at TIMESTAMP NOT NULL,
    actor VARCHAR NOT NULL, role VARCHAR NOT NULL, action VARCHAR NOT NULL,
    reason VARCHAR NOT NULL, subject_pseudonym VARCHAR, query_text VARCHAR, detail VARCHAR,
    rows_returned BIGINT NOT NULL,
    leaf_hash BLOB NOT NULL, chain_hash BLOB NOT NULL
);
"""


@dataclass(frozen=True)
class AccessEntry:
    """One read of personal data, as the caller states it."""

    actor: str
    role: str
    action: str  # e.g. "report subject", "query", "quarantine bytes"
    reason: str  # required: a case number, a ticket
    rows_returned: int
    subject_pseudonym: str | None = None
    query_text: str | None = None
    detail: str | None = None  # what else was asked: the window, the format, the preset


@dataclass(frozen=True)
class AccessRecord:
    seq: int
    accessed_at: datetime
    chain_hash: bytes


def access_leaf(fields: Mapping[str, Any]) -> bytes:
    return hashlib.sha256(
        LEAF_PREFIX + b"".join(encode_value(fields[name]) for name in ACCESS_FIELDS)
    ).digest()


def has_access_log(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ledger has the table (a ledger last opened for writing before the access
    log existed, and read read-only since, has none)."""
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'access_log'"
    ).fetchall()
    return bool(found[0][0])


def access_log_head(con: duckdb.DuckDBPyConnection) -> tuple[int, bytes] | None:
    """The access log's length (its highest seq) and head (that entry's chain hash); None
    while it holds no entry."""
    if not has_access_log(con):
        return None
    head = con.execute(
        "SELECT seq, chain_hash FROM access_log ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    return None if head is None else (int(head[0]), bytes(head[1]))


SHARED_APPEND_ATTEMPTS = 8
"""How often an append to a lake's access log is tried when another instance's append
committed first (:class:`AccessLog` with ``shared``)."""


class AccessLog:
    """Appends entries to one ledger's access log, one at a time (the chain is sequential).

    ``shared``: the ledger is a lake, where other instances append to the same log. Each
    append then updates the one-row ``access_log_fence`` in its transaction, so that of two
    instances appending at once the later commit is refused by DuckLake (both wrote that
    row), and is tried again from the new head: the chain never forks."""

    def __init__(self, *, shared: bool = False) -> None:
        self._lock = threading.Lock()
        self.shared = shared

    @contextmanager
    def appending(self) -> Iterator[None]:
        """Hold appends still (a backup copies the ledger meanwhile)."""
        with self._lock:
            yield

    def append(self, con: duckdb.DuckDBPyConnection, entry: AccessEntry) -> AccessRecord:
        """Append ``entry`` and commit, on ``con`` (a connection of the service's own, not
        one in a transaction). Raises :class:`LedgerError` if it cannot be written."""
        if not entry.reason.strip():
            raise LedgerError("a read of personal data needs a stated reason (a case number)")
        with self._lock:
            try:
                if not self.shared:
                    return self._append_once(con, entry)
                # another instance's append committed first: read the new head, link again
                retrying = tenacity.Retrying(
                    retry=tenacity.retry_if_exception_type(duckdb.TransactionException),
                    stop=tenacity.stop_after_attempt(SHARED_APPEND_ATTEMPTS),
                    wait=tenacity.wait_random_exponential(multiplier=0.02, max=0.5),
                    reraise=True,
                )
                return retrying(self._append_once, con, entry)
            except duckdb.Error as exc:
                raise LedgerError(
                    f"cannot write the access log entry for {entry.action} by {entry.actor}: "
                    f"{exc}; the read is refused"
                ) from exc

    def _append_once(self, con: duckdb.DuckDBPyConnection, entry: AccessEntry) -> AccessRecord:
        try:
            con.execute("BEGIN TRANSACTION")
            if self.shared:  # two instances' appends conflict here: one link at a time
                con.execute("UPDATE access_log_fence SET appended = appended + 1")
            head = con.execute(
                "SELECT seq, chain_hash FROM access_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, previous = (int(head[0]) + 1, bytes(head[1])) if head else (1, GENESIS)
            now = datetime.now(UTC)
            now_ms = int(now.timestamp() * 1000)
            fields = {**asdict(entry), "seq": seq, "accessed_at_ms": now_ms}
            leaf = access_leaf(fields)
            chained = link_hash(previous, leaf)
            con.execute(
                "INSERT INTO access_log VALUES (?, make_timestamp(? * 1000), ?, ?, ?, ?, ?, "
                "?, ?, ?, ?, ?)",
                [
                    seq,
                    now_ms,
                    entry.actor,
                    entry.role,
                    entry.action,
                    entry.reason,
                    entry.subject_pseudonym,
                    entry.query_text,
                    entry.detail,
                    entry.rows_returned,
                    leaf,
                    chained,
                ],
            )
            con.execute("COMMIT")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        return AccessRecord(seq, datetime.fromtimestamp(now_ms / 1000, UTC), chained)
