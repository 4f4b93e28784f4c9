"""The account store: what it refuses, what it keeps private, and what it migrates."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from disclosure_ledger.service.auth.accounts import AccountError, AccountStore
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.auth.throttle import LoginThrottle

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery staple"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> AccountStore:
    return AccountStore(tmp_path / "ledger.duckdb.users.sqlite", clock=clock, hasher=CHEAP)


def test_the_store_is_readable_by_its_owner_only(store: AccountStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("name", "password", "says"),
    [
        ("alice", "short", "too short"),
        ("alice", "x" * 1025, "longer than 1024"),
        ("alice", "alice-in-wonderland", "too easy"),
        ("alice", "a" * 20, "too easy"),
        ("token:abc", PASSWORD, "user name"),
        ("", PASSWORD, "user name"),
        ("al ice", PASSWORD, "user name"),
        ("x" * 65, PASSWORD, "user name"),
    ],
)
def test_weak_passwords_and_odd_names_are_refused(
    store: AccountStore, name: str, password: str, says: str
) -> None:
    with pytest.raises(AccountError, match=says):
        store.add_user(name, Role.admin, password)
    assert store.users() == []


def test_a_duplicate_user_is_refused_naming_the_fix(store: AccountStore) -> None:
    store.add_user("alice", Role.admin, PASSWORD)
    with pytest.raises(AccountError, match="exists already; use `users reset-password alice`"):
        store.add_user("alice", Role.compliance, PASSWORD)
    assert [(u.name, u.role) for u in store.users()] == [("alice", Role.admin)]


def test_changing_an_unknown_user_names_it(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="no user 'bob'"):
        store.set_disabled("bob", True)
    with pytest.raises(AccountError, match="no user 'bob'"):
        store.set_password("bob", PASSWORD)


def test_the_password_is_kept_as_an_argon2id_hash(store: AccountStore) -> None:
    store.add_user("alice", Role.admin, PASSWORD)
    with sqlite3.connect(store.path) as db:
        (stored,) = db.execute("SELECT password_hash FROM users").fetchone()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


def test_a_disabled_user_cannot_authenticate_nor_keep_a_session(store: AccountStore) -> None:
    store.add_user("alice", Role.admin, PASSWORD)
    actor = store.authenticate("alice", PASSWORD)
    assert actor is not None
    session_id, _csrf = store.open_session(actor)
    store.set_disabled("alice", True)
    assert store.authenticate("alice", PASSWORD) is None
    assert store.session_actor(session_id) is None
    store.set_disabled("alice", False)
    assert store.authenticate("alice", PASSWORD) is not None
    assert store.session_actor(session_id) is None  # closed, not merely hidden


def test_tokens_are_hashed_listed_without_secrets_and_revoked_at_once(
    store: AccountStore, clock: Clock
) -> None:
    issued = store.issue_token(Role.auditor, label="nightly export", created_by="cli:ops")
    with sqlite3.connect(store.path) as db:
        dump = "\n".join(db.iterdump())
    assert issued.token not in dump
    [listed] = store.tokens()
    assert listed.last_used_at is None
    assert issued.token not in repr(listed)

    actor = store.token_actor(issued.token)
    assert actor is not None
    assert (actor.name, actor.role, actor.kind) == (
        f"token:{issued.token_id}",
        Role.auditor,
        "token",
    )
    assert store.tokens()[0].last_used_at == clock.now.isoformat(timespec="microseconds")

    store.revoke_token(issued.token_id)
    assert store.token_actor(issued.token) is None
    assert store.tokens()[0].revoked_at is not None
    with pytest.raises(AccountError, match="no live token"):
        store.revoke_token(issued.token_id)


def test_a_token_needs_a_label(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="token label"):
        store.issue_token(Role.auditor, label="  ", created_by="cli")


def test_sessions_end_after_idle_time_and_after_their_lifetime(
    store: AccountStore, clock: Clock
) -> None:
    store.add_user("alice", Role.compliance, PASSWORD)
    actor = store.authenticate("alice", PASSWORD)
    assert actor is not None
    idle_id, _ = store.open_session(actor)
    busy_id, _ = store.open_session(actor)
    for _ in range(15):  # 7.5 hours of a request every 30 minutes less a second
        clock.now += timedelta(minutes=30) - timedelta(seconds=1)
        assert store.session_actor(busy_id) is not None
    assert store.session_actor(idle_id) is None
    clock.now += timedelta(minutes=29)
    assert store.session_actor(busy_id) is not None
    clock.now += timedelta(minutes=29)  # past 8 hours after sign-in
    assert store.session_actor(busy_id) is None


def test_a_store_from_before_the_activity_columns_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.users.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
            "password_hash TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0, "
            "created_at TEXT NOT NULL);"
            "CREATE TABLE tokens (token_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, "
            "role TEXT NOT NULL, label TEXT NOT NULL, created_by TEXT NOT NULL, "
            "created_at TEXT NOT NULL, revoked_at TEXT);"
            "CREATE TABLE sessions (session_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, "
            "csrf_token TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL);"
        )
    store = AccountStore(path, hasher=CHEAP)
    issued = store.issue_token(Role.admin, label="x", created_by="cli")
    assert store.token_actor(issued.token) is not None
    assert store.tokens()[0].last_used_at is not None


# -- the sign-in throttle ---------------------------------------------------------------


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_waits_after_the_free_failures_doubling_up_to_its_ceiling() -> None:
    seconds = Seconds()
    throttle = LoginThrottle(free_failures=3, first_wait=1, max_wait=4, clock=seconds)
    assert [throttle.attempt("user:a") for _ in range(3)] == [0, 0, 0]
    waits = []
    for _ in range(4):
        waits.append(throttle.attempt("user:a"))
        seconds.now += waits[-1]
        assert throttle.attempt("user:a") == 0  # counted as a failure
    assert waits == [1, 2, 4, 4]


def test_a_success_forgets_the_failures_and_time_forgets_them_too() -> None:
    seconds = Seconds()
    throttle = LoginThrottle(free_failures=2, first_wait=10, forget_after=60, clock=seconds)
    throttle.attempt("user:a", "client:x")
    throttle.attempt("user:a", "client:x")
    assert throttle.retry_after("user:a") == 10
    assert throttle.retry_after("client:x") == 10
    throttle.succeeded("user:a")
    assert throttle.retry_after("user:a") == 0
    seconds.now += 60
    assert throttle.retry_after("client:x") == 0


def test_a_waiting_key_holds_back_every_attempt_that_names_it() -> None:
    seconds = Seconds()
    throttle = LoginThrottle(free_failures=1, first_wait=5, clock=seconds)
    throttle.attempt("user:a", "client:x")
    assert throttle.attempt("user:b", "client:x") == 5  # another name, the same client
    assert throttle.attempt("user:b", "client:y") == 0


def test_the_throttle_keeps_a_bounded_number_of_keys() -> None:
    seconds = Seconds()
    throttle = LoginThrottle(max_keys=100, clock=seconds)
    for i in range(1000):
        seconds.now += 0.001
        throttle.failed(f"user:made-up-{i}")
    assert len(throttle._failures) <= 100
    assert "user:made-up-999" in throttle._failures


def test_a_name_or_password_longer_than_any_allowed_is_refused(store: AccountStore) -> None:
    store.add_user("alice", Role.admin, PASSWORD)
    assert store.authenticate("alice" * 20, PASSWORD) is None
    assert store.authenticate("alice", PASSWORD + "x" * 2000) is None
    assert store.authenticate("alice", PASSWORD) is not None
