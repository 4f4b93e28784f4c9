"""Pending approvals: two people for the irreversible acts (an erasure, and unsealing a
quarantined message's bytes), kept in a SQLite file beside the ledger
(``LEDGER.approvals.sqlite``) so that they survive a restart of the service.

A request is one row: its id, the action (``erase`` or ``unseal``), who asked (name and
role), when, the stated reason, until when it may be decided, a **summary** that holds no
personal data (the subject type of an erasure; the position of a quarantined message), and
the **parameters** the act needs, sealed. An erasure's parameters hold the subject id, so
they are never stored in clear: ``aesgcm1:`` + nonce (12 bytes) + AES-256-GCM ciphertext
and tag, under ``HMAC-SHA-256(subject secret, "disclosure-ledger/approval-key/v1")`` (a
label used for nothing else), with the associated data ``"disclosure-ledger/approval/v1"
0x00 approval_id 0x00 action``, so sealed parameters moved to another row do not open.
The parameters are deleted (the column set to NULL) as soon as the request ends: executed,
rejected, withdrawn or expired. The row itself stays, as the record of the decision.

Lifecycle (``status``)::

    pending ──approve──▶ executed            (erase: the erasure ran on approval)
            ──approve──▶ approved ──read──▶ used   (unseal: the asker reads the bytes once)
                                  ──(window)──▶ expired
            ──reject───▶ rejected
            ──withdraw─▶ withdrawn           (only by the asker)
            ──(time)───▶ expired

Nobody decides their own request (:class:`SelfApprovalError`): the approver's name must
differ from the asker's, and neither may be an API token issued by the other (the caller
passes the names that stand for each, see :func:`disclosure_ledger.service.answers.approvals`).

The store knows nothing of the ledger or the access log; the service's answers
(:mod:`disclosure_ledger.service.answers.approvals`) log every step and run the act.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from disclosure_ledger.errors import DisclosureLedgerError
from ledger.state_db import (
    STATE_ERRORS,
    StateConnection,
    StateLocation,
    connect_state,
    state_location,
)

if TYPE_CHECKING:
    from ledger.lake import LakeLocation

__all__ = [
    "APPROVED_READ_WINDOW",
    "PENDING_LIFETIME",
    "Approval",
    "ApprovalAction",
    "ApprovalError",
    "ApprovalStatus",
    "ApprovalStore",
    "NoSuchApprovalError",
    "NotDecidableError",
    "NotTheAskerError",
    "SelfApprovalError",
    "default_approval_store",
]


class ApprovalAction(StrEnum):
    erase = "erase"  # erase-subject: a subject's key destroyed
    unseal = "unseal"  # one quarantined message's bytes read


class ApprovalStatus(StrEnum):
    pending = "pending"
    executing = "executing"  # an approver's claim while the act runs (never seen for long)
    executed = "executed"
    approved = "approved"  # unseal: the asker may read, once, within the window
    used = "used"
    rejected = "rejected"
    withdrawn = "withdrawn"
    expired = "expired"


PENDING_LIFETIME: dict[ApprovalAction, timedelta] = {
    ApprovalAction.erase: timedelta(days=7),
    ApprovalAction.unseal: timedelta(hours=24),
}
"""How long a request waits for a decision. An erasure request waits a week (the GDPR's
month leaves room for that, and the approver may be away for days); a request to read
quarantined bytes serves an investigation in hand, so it lapses after a day."""

APPROVED_READ_WINDOW = timedelta(hours=1)
"""An approved unsealing may be read once, within this long after the approval."""


class ApprovalError(DisclosureLedgerError):
    """An approval request could not be made, found or decided."""


class NoSuchApprovalError(ApprovalError):
    """No approval request with that id."""


class NotDecidableError(ApprovalError):
    """The request is no longer pending (or, for a read, not approved): nothing to decide."""


class SelfApprovalError(ApprovalError):
    """Someone tried to decide their own request."""


class NotTheAskerError(ApprovalError):
    """Only the asker may withdraw a request, or read what an approved unsealing opens."""


@dataclass(frozen=True)
class Approval:
    """One request as listed: never its parameters."""

    approval_id: str
    action: ApprovalAction
    status: ApprovalStatus
    requested_by: str
    requested_role: str
    requested_at: datetime
    reason: str
    summary: str  # no personal data: the subject type, or the message's position
    expires_at: datetime  # pending: until it may be decided; approved unseal: until read
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    outcome: dict[str, Any] | None  # what the act did (no personal data)

    def to_json(self) -> dict[str, Any]:
        return {
            "approval_id": self.approval_id,
            "action": self.action.value,
            "status": self.status.value,
            "requested_by": self.requested_by,
            "requested_role": self.requested_role,
            "requested_at": _text(self.requested_at),
            "reason": self.reason,
            "summary": self.summary,
            "expires_at": _text(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else _text(self.decided_at),
            "decision_reason": self.decision_reason,
            "outcome": self.outcome,
        }


def _text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def default_approval_store(ledger: Path | LakeLocation) -> StateLocation:
    """``LEDGER.approvals.sqlite`` beside a file; beside a lake, the lake's PostgreSQL
    database (:mod:`ledger.state_db`), so an approval made on one instance is seen by all."""
    return state_location(ledger, ".approvals.sqlite", "approvals")


_KEY_LABEL = b"disclosure-ledger/approval-key/v1"
_AAD_LABEL = b"disclosure-ledger/approval/v1\x00"
_SEALED_PREFIX = b"aesgcm1:"
_NONCE_BYTES = 12

_DDL = """
CREATE TABLE IF NOT EXISTS approvals (
    approval_id TEXT PRIMARY KEY, action TEXT NOT NULL, status TEXT NOT NULL,
    requested_by TEXT NOT NULL, requested_role TEXT NOT NULL, requested_at TEXT NOT NULL,
    reason TEXT NOT NULL, summary TEXT NOT NULL, expires_at TEXT NOT NULL,
    sealed_parameters BLOB,
    decided_by TEXT, decided_at TEXT, decision_reason TEXT, outcome TEXT
);
"""
_COLUMNS = (
    "approval_id, action, status, requested_by, requested_role, requested_at, reason, "
    "summary, expires_at, decided_by, decided_at, decision_reason, outcome"
)


def _iso(moment: datetime) -> str:
    """One text form for every time stored, so SQLite compares them as text correctly."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ApprovalStore:
    """The pending approvals of one ledger (``LEDGER.approvals.sqlite``).

    Opened per request, like the key store. ``secret`` is the deployment's subject secret
    (the parameters' key is derived from it); ``clock`` gives the current UTC time (tests
    pass their own to let requests expire).
    """

    def __init__(
        self, path: StateLocation, secret: bytes, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.path = path
        self._key = hmac.new(secret, _KEY_LABEL, hashlib.sha256).digest()
        self._clock = clock
        if isinstance(path, Path):
            self._create_private_file(path)
        with self._db() as db:
            db.executescript(_DDL)

    @staticmethod
    def _create_private_file(path: Path) -> None:
        if not path.parent.is_dir():
            raise ApprovalError(
                f"cannot create the approval store {path}: the directory "
                f"{path.parent} does not exist (check --ledger)"
            )
        try:  # it holds sealed subject ids: readable by its owner only
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise ApprovalError(f"cannot open the approval store {path}: {exc}") from exc

    @contextmanager
    def _db(self) -> Iterator[StateConnection]:
        try:
            with closing(connect_state(self.path, autocommit=False, timeout=10)) as db, db:
                db.execute("PRAGMA secure_delete = ON")  # deleted parameters are zeroed
                yield db
        except STATE_ERRORS as exc:
            raise ApprovalError(f"the approval store {self.path}: {exc}") from exc

    def __enter__(self) -> ApprovalStore:
        return self

    def __exit__(self, *exc: object) -> None:
        """Nothing to close: every call opens and closes its own connection."""

    def now(self) -> datetime:
        return _utc_now() if self._clock is None else self._clock()

    # -- sealing -------------------------------------------------------------------------
    def _aad(self, approval_id: str, action: ApprovalAction) -> bytes:
        return _AAD_LABEL + approval_id.encode() + b"\x00" + action.value.encode()

    def _seal(self, approval_id: str, action: ApprovalAction, parameters: dict[str, Any]) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(parameters, sort_keys=True).encode()
        return (
            _SEALED_PREFIX
            + nonce
            + AESGCM(self._key).encrypt(nonce, plain, self._aad(approval_id, action))
        )

    def _unseal(self, approval_id: str, action: ApprovalAction, sealed: bytes) -> dict[str, Any]:
        body = sealed[len(_SEALED_PREFIX) :]
        try:
            plain = AESGCM(self._key).decrypt(
                body[:_NONCE_BYTES], body[_NONCE_BYTES:], self._aad(approval_id, action)
            )
        except InvalidTag as exc:
            raise ApprovalError(
                f"approval {approval_id}: its parameters do not open: the subject secret is "
                "not the one the request was made under, or the row was altered"
            ) from exc
        parameters: dict[str, Any] = json.loads(plain)
        return parameters

    # -- requests ------------------------------------------------------------------------
    def request(
        self,
        action: ApprovalAction,
        *,
        requested_by: str,
        requested_role: str,
        reason: str,
        summary: str,
        parameters: dict[str, Any],
    ) -> Approval:
        """A new pending request; ``parameters`` are stored sealed."""
        approval_id = secrets.token_hex(8)
        now = self.now()
        with self._db() as db:
            db.execute(
                "INSERT INTO approvals (approval_id, action, status, requested_by, "
                "requested_role, requested_at, reason, summary, expires_at, sealed_parameters)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    approval_id,
                    action.value,
                    ApprovalStatus.pending.value,
                    requested_by,
                    requested_role,
                    _iso(now),
                    reason,
                    summary,
                    _iso(now + PENDING_LIFETIME[action]),
                    self._seal(approval_id, action, parameters),
                ],
            )
        return self.get(approval_id)

    def expire_due(self) -> list[Approval]:
        """End every request past its time (pending, or an approved read not made): their
        parameters are deleted. Returns the requests that expired now."""
        now = _iso(self.now())
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE status IN (?, ?) AND expires_at <= ?",
                [ApprovalStatus.pending.value, ApprovalStatus.approved.value, now],
            ).fetchall()
            db.execute(
                "UPDATE approvals SET status = ?, sealed_parameters = NULL "
                "WHERE status IN (?, ?) AND expires_at <= ?",
                [
                    ApprovalStatus.expired.value,
                    ApprovalStatus.pending.value,
                    ApprovalStatus.approved.value,
                    now,
                ],
            )
        return [_approval(r, status=ApprovalStatus.expired) for r in rows]

    def get(self, approval_id: str) -> Approval:
        with self._db() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE approval_id = ?", [approval_id]
            ).fetchone()
        if row is None:
            raise NoSuchApprovalError(
                f"no approval request {approval_id!r}; GET /api/v1/approvals (or "
                "`approvals list`) lists them"
            )
        return _approval(row)

    def listing(
        self, *, statuses: tuple[ApprovalStatus, ...] | None = None, requested_by: str | None = None
    ) -> list[Approval]:
        """Requests, newest first: only those in ``statuses`` / of ``requested_by`` if given."""
        where: list[str] = ["1 = 1"]
        params: list[object] = []
        if statuses is not None:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            params.extend(s.value for s in statuses)
        if requested_by is not None:
            where.append("requested_by = ?")
            params.append(requested_by)
        with self._db() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM approvals WHERE {' AND '.join(where)} "
                "ORDER BY requested_at DESC, approval_id",
                params,
            ).fetchall()
        return [_approval(r) for r in rows]

    def claim(self, approval_id: str, *, by: str) -> tuple[Approval, dict[str, Any]]:
        """Take a pending request to execute it (status ``executing``), with its parameters;
        a second approver at the same moment finds it no longer pending."""
        approval = self.pending(approval_id)
        with self._db() as db:
            claimed = db.execute(
                "UPDATE approvals SET status = ? WHERE approval_id = ? AND status = ?",
                [ApprovalStatus.executing.value, approval_id, ApprovalStatus.pending.value],
            ).rowcount
            row = db.execute(
                "SELECT sealed_parameters FROM approvals WHERE approval_id = ?", [approval_id]
            ).fetchone()
        if not claimed or row is None or row[0] is None:
            raise NotDecidableError(f"approval {approval_id} was decided by someone else just now")
        return approval, self._unseal(approval_id, approval.action, bytes(row[0]))

    def release(self, approval_id: str) -> None:
        """Give a claimed request back (the act failed): pending again, parameters kept."""
        with self._db() as db:
            db.execute(
                "UPDATE approvals SET status = ? WHERE approval_id = ? AND status = ?",
                [ApprovalStatus.pending.value, approval_id, ApprovalStatus.executing.value],
            )

    def finish(
        self,
        approval_id: str,
        status: ApprovalStatus,
        *,
        by: str,
        decision_reason: str | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> Approval:
        """Record a decision. ``executed``, ``rejected`` and ``withdrawn`` delete the
        parameters; ``approved`` (an unsealing) keeps them for the one read, within
        :data:`APPROVED_READ_WINDOW`."""
        now = self.now()
        keep = status is ApprovalStatus.approved
        with self._db() as db:
            db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, "
                "decision_reason = ?, outcome = ?, expires_at = CASE WHEN ? THEN ? "
                "ELSE expires_at END"
                + ("" if keep else ", sealed_parameters = NULL")
                + " WHERE approval_id = ?",
                [
                    status.value,
                    by,
                    _iso(now),
                    decision_reason,
                    None if outcome is None else json.dumps(outcome, sort_keys=True),
                    keep,
                    _iso(now + APPROVED_READ_WINDOW),
                    approval_id,
                ],
            )
        return self.get(approval_id)

    def end_pending(
        self, approval_id: str, status: ApprovalStatus, *, by: str, decision_reason: str | None
    ) -> Approval:
        """Reject or withdraw a pending request (its parameters are deleted)."""
        self.pending(approval_id)
        with self._db() as db:
            done = db.execute(
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, "
                "decision_reason = ?, sealed_parameters = NULL "
                "WHERE approval_id = ? AND status = ?",
                [
                    status.value,
                    by,
                    _iso(self.now()),
                    decision_reason,
                    approval_id,
                    ApprovalStatus.pending.value,
                ],
            ).rowcount
        if not done:
            raise NotDecidableError(f"approval {approval_id} was decided by someone else just now")
        return self.get(approval_id)

    def take_read(self, approval_id: str) -> tuple[Approval, dict[str, Any]]:
        """An approved unsealing's parameters, for its one read: the request becomes
        ``used`` and its parameters are deleted in the same transaction."""
        approval = self.get(approval_id)
        if approval.status is not ApprovalStatus.approved:
            raise NotDecidableError(
                f"approval {approval_id} is {approval.status.value}, not approved: "
                + (
                    "its one read was made; ask again for another"
                    if approval.status is ApprovalStatus.used
                    else "nothing to read"
                )
            )
        with self._db() as db:
            row = db.execute(
                "SELECT sealed_parameters FROM approvals WHERE approval_id = ? AND status = ? "
                "AND expires_at > ?",
                [approval_id, ApprovalStatus.approved.value, _iso(self.now())],
            ).fetchone()
            if row is None or row[0] is None:
                raise NotDecidableError(
                    f"approval {approval_id}: its read window has passed; ask again"
                )
            db.execute(
                "UPDATE approvals SET status = ?, sealed_parameters = NULL WHERE approval_id = ?",
                [ApprovalStatus.used.value, approval_id],
            )
        return approval, self._unseal(approval_id, approval.action, bytes(row[0]))

    def pending(self, approval_id: str) -> Approval:
        """The request, if it is still pending and not past its time; else
        :class:`NotDecidableError`."""
        approval = self.get(approval_id)
        if approval.status is not ApprovalStatus.pending:
            raise NotDecidableError(
                f"approval {approval_id} is {approval.status.value}"
                + (f" (by {approval.decided_by})" if approval.decided_by else "")
                + ": only a pending request can be decided or withdrawn"
            )
        if approval.expires_at <= self.now():
            raise NotDecidableError(
                f"approval {approval_id} expired at {_text(approval.expires_at)}; ask again"
            )
        return approval


def _approval(row: tuple[Any, ...], status: ApprovalStatus | None = None) -> Approval:
    (aid, action, state, by, role, at, reason, summary, expires, dby, dat, dreason, outcome) = row
    return Approval(
        approval_id=aid,
        action=ApprovalAction(action),
        status=status or ApprovalStatus(state),
        requested_by=by,
        requested_role=role,
        requested_at=datetime.fromisoformat(at),
        reason=reason,
        summary=summary,
        expires_at=datetime.fromisoformat(expires),
        decided_by=dby,
        decided_at=None if dat is None else datetime.fromisoformat(dat),
        decision_reason=dreason,
        outcome=None if outcome is None else json.loads(outcome),
    )
