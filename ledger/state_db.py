"""Where the state kept beside a ledger lives, and one connection to it, SQLite or PostgreSQL.

Beside a one-file ledger, the subject key store, the request log (and register), users and
tokens, and approvals are SQLite files (``LEDGER.keys.sqlite``, ...). Beside a DuckLake,
which several ledger services share, each lives in the lake's own PostgreSQL database (the
one ``LakeLocation.catalog`` names), in the schema :data:`SCHEMA`, never among DuckLake's
catalog tables: :func:`state_location` says which.

Each store keeps one implementation: its SQL is SQLite's, and :class:`StateConnection` runs
it on either. On PostgreSQL it translates what differs, once per statement text:

* ``?`` placeholders become ``%s`` (a literal ``%`` is doubled);
* ``INSERT OR IGNORE INTO`` becomes ``INSERT INTO ... ON CONFLICT DO NOTHING``;
* in DDL, ``BLOB`` is ``BYTEA``, ``INTEGER`` is ``BIGINT``, ``WITHOUT ROWID`` is dropped;
* ``BEGIN IMMEDIATE`` (SQLite's "take the write lock now") is ``BEGIN`` and a transaction
  advisory lock on the store's name (:func:`pg_advisory_xact_lock`): writers of one store
  queue as they do on the SQLite file, across every instance;
* ``PRAGMA`` statements (SQLite's file settings) are skipped.

The stores write conflicts so that two instances cannot lose a write: ``INSERT ... ON
CONFLICT DO NOTHING`` then a read back, inside transactions (PostgreSQL's default READ
COMMITTED isolation).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ledger.errors import LedgerError

if TYPE_CHECKING:
    from ledger.lake import LakeLocation

__all__ = [
    "SCHEMA",
    "STATE_ERRORS",
    "STATE_INTEGRITY_ERRORS",
    "STATE_OPERATIONAL_ERRORS",
    "SharedState",
    "StateConnection",
    "StateLocation",
    "connect_state",
    "state_location",
]

SCHEMA = "ledger_state"
"""The PostgreSQL schema of a lake's shared state, beside DuckLake's catalog tables."""


@dataclass(frozen=True)
class SharedState:
    """One store's home in a lake's PostgreSQL database: ``catalog`` is the lake's libpq
    connection string, ``store`` the store's first table (``subject_keys``, ``requests``,
    ``users``, ``approvals``), which also names its write lock."""

    catalog: str
    store: str

    def exists(self) -> bool:
        """Whether the store's tables were created (as a file's ``exists()``)."""
        db = connect_state(self)
        try:
            return db.has_table(self.store)
        finally:
            db.close()

    def __str__(self) -> str:
        """How messages name it (any password in the connection string masked)."""
        from ledger.lake import LakeLocation

        return f"{SCHEMA}.{self.store} in the database of {LakeLocation(self.catalog)}"


StateLocation = Path | SharedState
"""Where one store lives: a SQLite file, or the lake's PostgreSQL database."""


def state_location(ledger: Path | LakeLocation, suffix: str, store: str) -> StateLocation:
    """The store beside ``ledger``: ``LEDGER<suffix>`` for a file (``.keys.sqlite``), the
    lake's PostgreSQL database for a lake."""
    if isinstance(ledger, Path):
        return ledger.with_name(ledger.name + suffix)
    return SharedState(ledger.catalog, store)


def _errors(name: str) -> tuple[type[Exception], ...]:
    """PEP 249's exception ``name`` of sqlite3, and of psycopg when it is installed."""
    found: tuple[type[Exception], ...] = (getattr(sqlite3, name),)
    try:
        import psycopg
    except ImportError:  # the ducklake extra is not installed: no PostgreSQL state
        return found
    return (*found, getattr(psycopg, name))


STATE_ERRORS = _errors("Error")
"""What a store's database can raise, on either backend (PEP 249's ``Error``)."""
STATE_INTEGRITY_ERRORS = _errors("IntegrityError")
"""A constraint refused the write (a duplicate key), on either backend."""
STATE_OPERATIONAL_ERRORS = _errors("OperationalError")
"""The database could not do it (locked, unreachable), on either backend."""


class _Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


_INSERT_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_DDL = re.compile(r"^\s*(CREATE|ALTER)\b", re.IGNORECASE)


@lru_cache(maxsize=512)
def postgres_sql(sql: str) -> str:
    """A statement of the stores' SQLite SQL as PostgreSQL takes it (see the module)."""
    if _DDL.match(sql):
        sql = re.sub(r"\bWITHOUT\s+ROWID\b", "", sql, flags=re.IGNORECASE)
        sql = re.sub(r"\bBLOB\b", "BYTEA", sql)
        sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    if _INSERT_OR_IGNORE.match(sql):
        sql = _INSERT_OR_IGNORE.sub("INSERT INTO", sql) + " ON CONFLICT DO NOTHING"
    return sql.replace("%", "%%").replace("?", "%s")


def _statements(script: str) -> list[str]:
    """The statements of a DDL script (the stores' scripts hold no ``;`` in a literal)."""
    return [s.strip() for s in script.split(";") if s.strip()]


class StateConnection:
    """One connection to a store, on SQLite or PostgreSQL, with sqlite3's interface as the
    stores use it: ``execute``, ``executemany``, ``executescript``, ``in_transaction``,
    and ``with connection:`` committing (or rolling back) an implicit transaction.

    ``autocommit``: every statement commits unless the store said ``BEGIN`` (sqlite3's
    ``isolation_level=None``); otherwise a transaction begins with the first statement and
    ends with the ``with`` block."""

    def __init__(self, location: StateLocation, raw: Any, *, postgres: bool) -> None:
        self.location = location
        self.postgres = postgres
        self._raw = raw

    @property
    def store(self) -> str:
        return self.location.store if isinstance(self.location, SharedState) else ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _Cursor:
        if not self.postgres:
            cursor: _Cursor = self._raw.execute(sql, params)
            return cursor
        if sql.lstrip().upper().startswith("PRAGMA"):
            return self._raw.execute("SELECT 1 WHERE false")  # type: ignore[no-any-return]
        if sql.strip().upper() == "BEGIN IMMEDIATE":
            self._raw.execute("BEGIN")
            return self.lock()
        return self._raw.execute(postgres_sql(sql), tuple(params))  # type: ignore[no-any-return]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Cursor:
        if not self.postgres:
            cursor: _Cursor = self._raw.executemany(sql, rows)
            return cursor
        many: Any = self._raw.cursor()
        many.executemany(postgres_sql(sql), [tuple(row) for row in rows])
        return many  # type: ignore[no-any-return]

    def executescript(self, script: str) -> None:
        """DDL: on PostgreSQL under the store's lock, so that two instances creating the
        same tables at once do not collide (PostgreSQL's ``IF NOT EXISTS`` can race)."""
        if not self.postgres:
            self._raw.executescript(script)
            return
        began = bool(self._raw.autocommit) and not self.in_transaction
        if began:
            self._raw.execute("BEGIN")
        self.lock()
        for statement in _statements(script):
            self._raw.execute(postgres_sql(statement))
        if began:
            self._raw.execute("COMMIT")

    def lock(self) -> _Cursor:
        """PostgreSQL: hold the store's write lock until the transaction ends."""
        return self._raw.execute(  # type: ignore[no-any-return]
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{SCHEMA}.{self.store}",)
        )

    @property
    def in_transaction(self) -> bool:
        if not self.postgres:
            return bool(self._raw.in_transaction)
        from psycopg.pq import TransactionStatus

        return bool(self._raw.info.transaction_status != TransactionStatus.IDLE)

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns (none if it does not exist)."""
        if not self.postgres:
            return {str(row[1]) for row in self._raw.execute(f"PRAGMA table_info({table})")}
        return {
            str(row[0])
            for row in self._raw.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s",
                (SCHEMA, table),
            )
        }

    def has_table(self, table: str) -> bool:
        return bool(self.columns(table))

    def vacuum(self, table: str) -> None:
        """Rewrite the store so deleted rows leave its pages: SQLite's ``VACUUM`` of the file
        (with ``secure_delete`` on, deleted rows were zeroed already); on PostgreSQL, ``VACUUM
        FULL`` of the table, which writes the live rows to new files and drops the old ones
        (a plain ``VACUUM`` only marks the dead rows' space free). Outside a transaction."""
        self._raw.execute("VACUUM" if not self.postgres else f"VACUUM FULL {SCHEMA}.{table}")

    def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """sqlite3's statement trace, on SQLite only (what tests count a call's statements by)."""
        if self.postgres:
            raise LedgerError(f"{self.location}: statement tracing is sqlite3's, not psycopg's")
        self._raw.set_trace_callback(callback)

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> StateConnection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit the implicit transaction, or roll it back on an error (sqlite3's ``with``
        on a connection); the connection stays open."""
        if not self.postgres:
            self._raw.__exit__(kind, exc, tb)
        elif kind is None:
            self._raw.commit()
        else:
            self._raw.rollback()


def connect_state(
    location: StateLocation,
    *,
    autocommit: bool = True,
    read_only: bool = False,
    timeout: float = 5.0,
) -> StateConnection:
    """Open a store: the SQLite file (``read_only``: opened so), or a connection to the
    lake's PostgreSQL database with the schema :data:`SCHEMA` created if missing and first
    on its search path. ``timeout``: how long SQLite waits for another writer's lock.

    Raises the backend's own error (:data:`STATE_ERRORS`) if it cannot connect."""
    if isinstance(location, Path):
        if read_only:
            raw: Any = sqlite3.connect(
                location.resolve().as_uri() + "?mode=ro",
                uri=True,
                isolation_level=None if autocommit else "DEFERRED",
                timeout=timeout,
            )
        else:
            raw = sqlite3.connect(
                location, isolation_level=None if autocommit else "DEFERRED", timeout=timeout
            )
        return StateConnection(location, raw, postgres=False)
    try:
        import psycopg
    except ImportError as exc:
        from ledger.lake import EXTRA

        raise LedgerError(
            f"{location} needs the psycopg package, which is not installed: install it with {EXTRA}"
        ) from exc
    raw = psycopg.connect(location.catalog, autocommit=True, connect_timeout=10)
    try:
        _ensure_schema(raw)
        raw.execute(f"SET search_path TO {SCHEMA}")
        if read_only:
            raw.execute("SET default_transaction_read_only = on")
        raw.autocommit = autocommit
    except BaseException:
        raw.close()
        raise
    return StateConnection(location, raw, postgres=True)


def _ensure_schema(raw: Any) -> None:
    """``CREATE SCHEMA IF NOT EXISTS`` under a lock: two instances creating it at once
    would otherwise collide on PostgreSQL's catalog (a unique violation)."""
    if raw.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone():
        return
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (SCHEMA,))
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
