"""Local accounts, API tokens and sessions, in a SQLite file beside the ledger.

- **Users** have one role and a password hashed with argon2id (``argon2-cffi``). A
  disabled user can neither sign in nor use a session opened before.
- **API tokens** are random (``secrets.token_urlsafe``), shown once, stored as their
  SHA-256 (a token is 256 random bits, so a fast hash is enough: nothing to guess), scoped
  to one role, revocable; each records when it was last used (to the minute).
- **Sessions** are random ids, stored as their SHA-256, each with its own CSRF token. A
  session ends :data:`SESSION_LIFETIME` after sign-in, or after :data:`SESSION_IDLE_TIMEOUT`
  without a request, whichever comes first; a password reset or a disabled account ends
  every session of that user.

The store is SQLite, not the DuckDB ledger, so ``disclosure-ledger users ...`` works while
the service holds the ledger, and the service sees the change at the next request (nothing
is cached). The file holds password hashes: it is created readable by its owner only.
Beside a DuckLake, the same tables live in the lake's PostgreSQL database
(:mod:`ledger.state_db`), so a user or token made through one instance signs in on all.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from disclosure_ledger.service.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    AccountError,
    check_password,
    check_user_name,
)
from disclosure_ledger.service.auth.roles import Role
from ledger.state_db import (
    STATE_INTEGRITY_ERRORS,
    STATE_OPERATIONAL_ERRORS,
    StateConnection,
    StateLocation,
    connect_state,
    state_location,
)

if TYPE_CHECKING:
    from ledger.lake import LakeLocation

__all__ = [
    "SESSION_IDLE_TIMEOUT",
    "SESSION_LIFETIME",
    "AccountError",
    "AccountStore",
    "Actor",
    "IssuedToken",
    "TokenInfo",
    "UserInfo",
    "default_account_store",
]

SESSION_LIFETIME = timedelta(hours=8)
"""A session ends this long after sign-in, however busy (a working day)."""
SESSION_IDLE_TIMEOUT = timedelta(minutes=30)
"""...or this long after its last request: a console left open on an unattended desk
stops showing personal data (OWASP's 15-30 minutes for high-value applications)."""
_ACTIVITY_RESOLUTION = timedelta(minutes=1)
"""A session's last request and a token's last use are written at most once a minute, so
reads do not take SQLite's write lock on every request."""


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
# Columns added after the first release of the store, each with its ALTER TABLE.
_ADDED_COLUMNS = {
    ("tokens", "last_used_at"): "ALTER TABLE tokens ADD COLUMN last_used_at TEXT",
    ("sessions", "last_seen_at"): "ALTER TABLE sessions ADD COLUMN last_seen_at TEXT",
}


@dataclass(frozen=True)
class Actor:
    """Who makes a request: a signed-in user or an API token, with its one role."""

    name: str  # the user's name, or "token:<token_id>"
    role: Role
    kind: Literal["user", "token"]
    session_csrf: str | None = None  # a session's CSRF token; None for API tokens


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    token: str  # shown once
    role: Role


@dataclass(frozen=True)
class UserInfo:
    name: str
    role: Role
    disabled: bool
    created_at: str
    live_sessions: int


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its secret."""

    token_id: str
    role: Role
    label: str
    created_by: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


def default_account_store(ledger: Path | LakeLocation) -> StateLocation:
    """``LEDGER.users.sqlite`` beside a file; beside a lake, the lake's PostgreSQL database
    (:mod:`ledger.state_db`), so every instance knows the same users and tokens."""
    return state_location(ledger, ".users.sqlite", "users")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    """One text form for every time stored, so SQLite compares them as text correctly."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class AccountStore:
    """Users, tokens and sessions of one ledger (``LEDGER.users.sqlite``).

    ``clock`` gives the current UTC time (tests pass their own to let sessions expire);
    ``hasher`` is argon2id with the library's current parameters (RFC 9106's low-memory
    profile) unless given (tests give a cheaper one).
    """

    def __init__(
        self,
        path: StateLocation,
        *,
        clock: Callable[[], datetime] = _utc_now,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self.path = path
        self._clock = clock
        self._hasher = hasher or PasswordHasher()
        if isinstance(path, Path):
            self._create_private_file(path)
        with self._db() as db:
            db.executescript(_DDL)
            for (table, column), alter in _ADDED_COLUMNS.items():
                if column not in db.columns(table):
                    db.execute(alter)

    @staticmethod
    def _create_private_file(path: Path) -> None:
        if not path.parent.is_dir():
            raise AccountError(
                f"cannot create the account store {path}: the directory "
                f"{path.parent} does not exist (check --ledger)"
            )
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except OSError as exc:
            raise AccountError(f"cannot open the account store {path}: {exc}") from exc

    @contextmanager
    def _db(self) -> Iterator[StateConnection]:
        """One transaction, committed at the end of the block (a connection per call)."""
        try:
            with closing(connect_state(self.path, autocommit=False, timeout=10)) as db, db:
                yield db
        except STATE_OPERATIONAL_ERRORS as exc:
            raise AccountError(f"the account store {self.path}: {exc}") from exc

    def _now(self) -> datetime:
        return self._clock()

    # -- users -------------------------------------------------------------------------
    def add_user(self, name: str, role: Role, password: str) -> None:
        check_user_name(name)
        check_password(name, password)
        try:
            with self._db() as db:
                db.execute(
                    "INSERT INTO users VALUES (?, ?, ?, 0, ?)",
                    [name, role.value, self._hasher.hash(password), _iso(self._now())],
                )
        except STATE_INTEGRITY_ERRORS as exc:
            raise AccountError(
                f"user {name!r} exists already; use `users reset-password {name}` to change "
                "the password"
            ) from exc

    def set_password(self, name: str, password: str) -> None:
        """A new password; every session of the user ends."""
        check_password(name, password)
        with self._db() as db:
            done = db.execute(
                "UPDATE users SET password_hash = ? WHERE name = ?",
                [self._hasher.hash(password), name],
            ).rowcount
            if not done:
                raise self._unknown_user(name)
            db.execute("DELETE FROM sessions WHERE user_name = ?", [name])

    def set_disabled(self, name: str, disabled: bool) -> None:
        """Disable (every session ends) or enable a user."""
        with self._db() as db:
            done = db.execute(
                "UPDATE users SET disabled = ? WHERE name = ?", [int(disabled), name]
            ).rowcount
            if not done:
                raise self._unknown_user(name)
            if disabled:
                db.execute("DELETE FROM sessions WHERE user_name = ?", [name])

    def users(self) -> list[UserInfo]:
        now = self._now()
        with self._db() as db:
            rows = db.execute(
                "SELECT u.name, u.role, u.disabled, u.created_at, "
                "(SELECT count(*) FROM sessions s WHERE s.user_name = u.name "
                " AND s.expires_at > ? AND coalesce(s.last_seen_at, s.created_at) > ?) "
                "FROM users u ORDER BY u.name",
                [_iso(now), _iso(now - SESSION_IDLE_TIMEOUT)],
            ).fetchall()
        return [UserInfo(r[0], Role(r[1]), bool(r[2]), r[3], int(r[4])) for r in rows]

    @staticmethod
    def _unknown_user(name: str) -> AccountError:
        return AccountError(f"no user {name!r}; `users list` names them, `users add` adds one")

    def authenticate(self, name: str, password: str) -> Actor | None:
        """The user's actor if ``password`` is theirs and they are not disabled, else None.

        An unknown name costs the same argon2 work as a wrong password: no timing oracle
        for which names exist.
        """
        if len(name) > 64 or len(password) > MAX_PASSWORD_LENGTH:  # no such user
            self._hasher.hash(password[:MAX_PASSWORD_LENGTH])
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT role, password_hash, disabled FROM users WHERE name = ?", [name]
            ).fetchone()
        if row is None:
            self._hasher.hash(password)
            return None
        try:
            self._hasher.verify(row[1], password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row[2]:
            return None
        if self._hasher.check_needs_rehash(row[1]):  # the library's parameters grew
            with self._db() as db:
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE name = ?",
                    [self._hasher.hash(password), name],
                )
        return Actor(name=name, role=Role(row[0]), kind="user")

    # -- tokens ------------------------------------------------------------------------
    def issue_token(self, role: Role, *, label: str, created_by: str) -> IssuedToken:
        label = label.strip()
        if not label or not label.isprintable() or len(label) > 200:
            raise AccountError(
                f"token label {label!r}: give 1 to 200 printable characters saying who uses "
                "it, e.g. --label 'nightly CCPA export'"
            )
        token_id = secrets.token_hex(6)
        token = f"dl_{token_id}_{secrets.token_urlsafe(32)}"
        with self._db() as db:
            db.execute(
                "INSERT INTO tokens (token_id, token_hash, role, label, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [token_id, _digest(token), role.value, label, created_by, _iso(self._now())],
            )
        return IssuedToken(token_id, token, role)

    def token_actor(self, token: str) -> Actor | None:
        """The token's actor if it is live (revocation counts from the next request)."""
        with self._db() as db:
            row = db.execute(
                "SELECT token_id, role, last_used_at FROM tokens "
                "WHERE token_hash = ? AND revoked_at IS NULL",
                [_digest(token)],
            ).fetchone()
            if row is None:
                return None
            now = self._now()
            if row[2] is None or datetime.fromisoformat(row[2]) <= now - _ACTIVITY_RESOLUTION:
                db.execute(
                    "UPDATE tokens SET last_used_at = ? WHERE token_id = ?",
                    [_iso(now), row[0]],
                )
        return Actor(name=f"token:{row[0]}", role=Role(row[1]), kind="token")

    def revoke_token(self, token_id: str) -> None:
        with self._db() as db:
            done = db.execute(
                "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
                [_iso(self._now()), token_id],
            ).rowcount
        if not done:
            raise AccountError(f"no live token {token_id!r}; `users tokens` lists them")

    def tokens(self) -> list[TokenInfo]:
        with self._db() as db:
            rows = db.execute(
                "SELECT token_id, role, label, created_by, created_at, last_used_at, "
                "revoked_at FROM tokens ORDER BY created_at, token_id"
            ).fetchall()
        return [TokenInfo(r[0], Role(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]

    # -- sessions ----------------------------------------------------------------------
    def open_session(self, actor: Actor) -> tuple[str, str]:
        """A new session for a signed-in user: ``(session_id, csrf_token)``. Sessions that
        have ended are deleted on the way."""
        if actor.kind != "user":
            raise AccountError("only a signed-in user has a session; API tokens need none")
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self._now()
        with self._db() as db:
            db.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                [_iso(now), _iso(now - SESSION_IDLE_TIMEOUT)],
            )
            db.execute(
                "INSERT INTO sessions (session_hash, user_name, csrf_token, created_at, "
                "expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    _digest(session_id),
                    actor.name,
                    csrf,
                    _iso(now),
                    _iso(now + SESSION_LIFETIME),
                    _iso(now),
                ],
            )
        return session_id, csrf

    def session_actor(self, session_id: str) -> Actor | None:
        """The session's user, if the session is live and the user enabled; a request
        counts as activity (the idle timeout starts again)."""
        key = _digest(session_id)
        now = self._now()
        with self._db() as db:
            row = db.execute(
                "SELECT s.user_name, u.role, s.csrf_token, s.expires_at, "
                "coalesce(s.last_seen_at, s.created_at) FROM sessions s "
                "JOIN users u ON u.name = s.user_name "
                "WHERE s.session_hash = ? AND u.disabled = 0",
                [key],
            ).fetchone()
            if row is None:
                return None
            last_seen = datetime.fromisoformat(row[4])
            if datetime.fromisoformat(row[3]) <= now or last_seen <= now - SESSION_IDLE_TIMEOUT:
                db.execute("DELETE FROM sessions WHERE session_hash = ?", [key])
                return None
            if last_seen <= now - _ACTIVITY_RESOLUTION:
                db.execute(
                    "UPDATE sessions SET last_seen_at = ? WHERE session_hash = ?",
                    [_iso(now), key],
                )
        return Actor(name=row[0], role=Role(row[1]), kind="user", session_csrf=row[2])

    def close_session(self, session_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE session_hash = ?", [_digest(session_id)])
