"""Local accounts, API tokens and sessions, in a SQLite file beside the ledger.

- **Users** have one role and a password hashed with argon2id (``argon2-cffi``).
- **API tokens** are random (``secrets.token_urlsafe``), shown once, stored as their
  SHA-256 (a token is 256 random bits, so a fast hash is enough: nothing to guess), scoped
  to one role, revocable.
- **Sessions** are random ids, stored as their SHA-256, each with its own CSRF token and an
  expiry.

The store is SQLite, not the DuckDB ledger, so ``disclosure-ledger users ...`` works while
the service holds the ledger, and the service sees the change at the next request.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.auth.roles import Role

SESSION_LIFETIME = timedelta(hours=8)

_DDL = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
    label TEXT NOT NULL, created_by TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    session_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL, expires_at TEXT NOT NULL
);
"""


class AccountError(DisclosureLedgerError):
    """A user or token cannot be added, found or changed (named, with what to do)."""


@dataclass(frozen=True)
class Actor:
    """Who makes a request: a signed-in user or an API token, with its one role."""

    name: str  # the user's name, or "token:<token_id>"
    role: Role
    kind: str  # "user" | "token"
    session_csrf: str | None = None  # a session's CSRF token; None for API tokens


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str  # shown once
    role: Role


def default_account_store(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".users.sqlite")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class AccountStore:
    """Users, tokens and sessions of one ledger (``LEDGER.users.sqlite``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._hasher = PasswordHasher()  # argon2id with the library's current parameters
        with self._db() as db:
            db.executescript(_DDL)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    # -- users -------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password: str) -> None:
        if not name or not name.isprintable() or len(name) > 64:
            raise AccountError(f"user name {name!r}: give 1 to 64 printable characters")
        if len(password) < 12:
            raise AccountError(
                f"the password for {name!r} is too short: give 12 characters or more"
            )
        try:
            with self._db() as db:
                db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, 0, ?)",
                    [name, role.value, self._hasher.hash(password), _now().isoformat()],
                )
        except sqlite3.IntegrityError as exc:
            raise AccountError(
                f"user {name!r} exists already; use `users reset-password` to change it"
            ) from exc

    def authenticate(self, name: str, password: str) -> Actor | None:
        """The user's actor if ``password`` is theirs and they are not disabled, else None."""
        with self._db() as db:
            row = db.execute(
                "SELECT role, password_hash, disabled FROM users WHERE name = ?", [name]
            ).fetchone()
        if row is None:
            self._hasher.hash(password)  # the same work either way: no timing oracle
            return None
        try:
            self._hasher.verify(row[1], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row[2]:
            return None
        return Actor(name=name, role=Role(row[0]), kind="user")

    def user_role(self, name: str) -> Role | None:
        """The role of an enabled user, else None."""
        with self._db() as db:
            row = db.execute(
                "SELECT role FROM users WHERE name = ? AND disabled = 0", [name]
            ).fetchone()
        return Role(row[0]) if row else None

    # -- tokens ------------------------------------------------------------------------
    def issue_token(self, role: Role, *, label: str, created_by: str) -> IssuedToken:
        token_id = secrets.token_hex(4)
        token = f"dl_{token_id}_{secrets.token_urlsafe(32)}"
        with self._db() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, NULL)",
                [token_id, _digest(token), role.value, label, created_by, _now().isoformat()],
            )
        return IssuedToken(token_id, token, role)

    def token_actor(self, token: str) -> Actor | None:
        with self._db() as db:
            row = db.execute(
                "SELECT token_id, role FROM tokens WHERE token_hash = ? AND revoked_at IS NULL",
                [_digest(token)],
            ).fetchone()
        return Actor(name=f"token:{row[0]}", role=Role(row[1]), kind="token") if row else None

    def revoke_token(self, token_id: str) -> None:
        with self._db() as db:
            done = db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                [_now().isoformat(), token_id],
            ).rowcount
        if not done:
            raise AccountError(f"no live token {token_id!r}; `users tokens` lists them")

    # -- sessions ----------------------------------------------------------------------
    def open_session(self, actor: Actor) -> tuple[str, str]:
        """A new session for a signed-in user: ``(session_id, csrf_token)``."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = _now()
        with self._db() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                [
                    _digest(session_id),
                    actor.name,
                    csrf,
                    now.isoformat(),
                    (now + SESSION_LIFETIME).isoformat(),
                ],
            )
        return session_id, csrf

    def session_actor(self, session_id: str) -> Actor | None:
        """The session's user, if the session is live and the user enabled."""
        with self._db() as db:
            row = db.execute(
                "SELECT s.user_name, u.role, s.csrf_token, s.expires_at FROM sessions s "
                "JOIN users u ON u.name = s.user_name "
                "WHERE s.session_hash = ? AND u.disabled = 0",
                [_digest(session_id)],
            ).fetchone()
        if row is None or datetime.fromisoformat(row[3]) <= _now():
            return None
        return Actor(name=row[0], role=Role(row[1]), kind="user", session_csrf=row[2])

    def close_session(self, session_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE session_hash = ?", [_digest(session_id)])
