"""Two people for the irreversible acts: an erasure, and reading a quarantined message's
bytes, each requested by one person and approved by a second admin.

Every step is in the access log, before it takes effect: the request (``request erasure``,
``request quarantine bytes``), the decision (``approve ...``, ``reject ...``), a withdrawal,
an expiry (actor ``service``), and the act itself (``erase subject`` with the approver in
its detail; ``quarantine bytes``, read by the asker once after the approval). The
requests live in :class:`~disclosure_ledger.service.approvals.ApprovalStore`.

Nobody decides their own request: the approver's name (a user's name, or ``token:<id>``)
must differ from the asker's. The service cannot tell who holds a token: give each person
their own account, and approve as that user (the console) or with a token of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from disclosure_ledger.service.answers.erasure import ErasureOutcome, erase
from disclosure_ledger.service.answers.quarantine import (
    NotQuarantinedError,
    QuarantineMessage,
    quarantine_message,
)
from disclosure_ledger.service.approvals import (
    Approval,
    ApprovalAction,
    ApprovalError,
    ApprovalStatus,
    ApprovalStore,
    NotTheAskerError,
    SelfApprovalError,
)
from disclosure_ledger.service.auth.accounts import Actor
from disclosure_ledger.service.auth.roles import Action, Role, permission_allowed
from ledger.access_log import AccessEntry
from ledger.key_check import KeyStoreAccess

if TYPE_CHECKING:
    from disclosure_ledger.service.runtime import LedgerService

SERVICE_ACTOR = "service"
"""The access log's actor for what the service does by itself (a request expiring)."""

_ACTS = {ApprovalAction.erase: "erasure", ApprovalAction.unseal: "quarantine bytes"}


def approval_lines(approval: Approval) -> list[str]:
    """What the CLI prints for a request: where it stands and what happens next."""
    what = f"{_ACTS[approval.action]} request {approval.approval_id} ({approval.summary})"
    expires = f"{approval.expires_at:%Y-%m-%dT%H:%M:%SZ}"
    status = approval.status
    if status is ApprovalStatus.pending:
        return [
            f"{what} by {approval.requested_by} is pending: another admin approves it with "
            f"`disclosure-ledger approvals approve {approval.approval_id} --server URL` or on "
            f"the console's Approvals page (/approvals); it expires at {expires} unless "
            "approved, rejected or withdrawn first"
        ]
    decided = f" by {approval.decided_by}" if approval.decided_by else ""
    if status is ApprovalStatus.approved:
        return [
            f"{what} was approved{decided}: {approval.requested_by} may read the message "
            f"once, until {expires} (`quarantine show --approval {approval.approval_id} "
            "--server URL`, or the console's Quarantine page)"
        ]
    return [f"{what} is {status.value}{decided}"]


def _log(
    service: LedgerService,
    actor: Actor | None,
    action: str,
    approval: Approval,
    reason: str,
    *,
    pseudonym: str | None = None,
    detail: str = "",
) -> None:
    service.record_access(
        AccessEntry(
            actor=SERVICE_ACTOR if actor is None else actor.name,
            role=SERVICE_ACTOR if actor is None else actor.role.value,
            action=action,
            reason=reason,
            rows_returned=0,
            subject_pseudonym=pseudonym,
            detail=f"approval {approval.approval_id}; {approval.summary}"
            + (f"; {detail}" if detail else ""),
        )
    )


def expire_due(service: LedgerService, store: ApprovalStore) -> None:
    """End the requests past their time, each recorded in the access log."""
    for approval in store.expire_due():
        _log(
            service,
            None,
            f"expire {_ACTS[approval.action]} request",
            approval,
            approval.reason,
            detail=f"requested by {approval.requested_by}; past its time (undecided, or "
            "approved and not read)",
        )


def request_erasure(
    service: LedgerService,
    actor: Actor,
    *,
    subject_type: Literal["member", "guest"],
    subject_id: str,
    reason: str,
) -> Approval:
    """A pending erasure (the subject id sealed until it runs), in the access log."""
    with service.view() as view, service.subject_keys(KeyStoreAccess.read, view) as keys:
        pseudonym = keys.pseudonym(subject_type, subject_id)
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.request(
            ApprovalAction.erase,
            requested_by=actor.name,
            requested_role=actor.role.value,
            reason=reason,
            summary=f"subject_type {subject_type}",
            parameters={"subject_type": subject_type, "subject_id": subject_id},
        )
        _logged_or_withdrawn(
            store,
            approval,
            lambda: _log(service, actor, "request erasure", approval, reason, pseudonym=pseudonym),
        )
    return approval


def request_unseal(
    service: LedgerService,
    actor: Actor,
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
) -> Approval:
    """A pending read of one quarantined message's bytes, in the access log."""
    if not _held(service, topic, partition, offset):
        raise NotQuarantinedError(
            f"no quarantined message at {topic}/{partition} offset {offset}; "
            "GET /api/v1/quarantine lists them"
        )
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.request(
            ApprovalAction.unseal,
            requested_by=actor.name,
            requested_role=actor.role.value,
            reason=reason,
            summary=f"{topic}/{partition} offset {offset}",
            parameters={"topic": topic, "partition": partition, "offset": offset},
        )
        _logged_or_withdrawn(
            store,
            approval,
            lambda: _log(service, actor, "request quarantine bytes", approval, reason),
        )
    return approval


def _held(service: LedgerService, topic: str, partition: int, offset: int) -> bool:
    with service.view() as view:
        row = view.con.execute(
            "SELECT count(*) FROM quarantine WHERE topic = ? AND kafka_partition = ? "
            "AND kafka_offset = ?",
            [topic, partition, offset],
        ).fetchone()
    return bool(row and row[0])


def _logged_or_withdrawn(store: ApprovalStore, approval: Approval, log: Callable[[], None]) -> None:
    """A request that cannot be logged is withdrawn at once (its parameters deleted)."""
    try:
        log()
    except BaseException:
        store.end_pending(
            approval.approval_id,
            ApprovalStatus.withdrawn,
            by=SERVICE_ACTOR,
            decision_reason="the request could not be recorded in the access log",
        )
        raise


def approvals_for(service: LedgerService, actor: Actor, *, pending_only: bool) -> list[Approval]:
    """Requests an actor may see: an approver sees all, anyone else their own."""
    with service.approvals() as store:
        expire_due(service, store)
        statuses = (ApprovalStatus.pending,) if pending_only else None
        if permission_allowed(actor.role, Action.approve):
            return store.listing(statuses=statuses)
        return store.listing(statuses=statuses, requested_by=actor.name)


def approval_for(service: LedgerService, actor: Actor, approval_id: str) -> Approval:
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.get(approval_id)
    if approval.requested_by != actor.name and not permission_allowed(actor.role, Action.approve):
        raise NotTheAskerError(
            f"approval {approval_id} is not yours: only its asker and admins may see it"
        )
    return approval


def approve(
    service: LedgerService,
    actor: Actor,
    approval_id: str,
    *,
    note: str | None = None,
) -> tuple[Approval, ErasureOutcome | None]:
    """Approve a pending request as a second admin. An erasure runs now (actor the asker,
    ``approved_by`` the approver); an unsealing opens the asker's one read.

    Raises :class:`SelfApprovalError` if the approver is the asker (or their token)."""
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.get(approval_id)
        _not_self(approval, actor, "approve")
        approval, parameters = store.claim(approval_id, by=actor.name)
        act = _ACTS[approval.action]
        try:
            _log(
                service,
                actor,
                f"approve {act} request",
                approval,
                note or approval.reason,
                detail=f"requested by {approval.requested_by}",
            )
            if approval.action is ApprovalAction.unseal:
                return store.finish(
                    approval_id, ApprovalStatus.approved, by=actor.name, decision_reason=note
                ), None
            outcome = erase(
                service,
                Actor(name=approval.requested_by, role=Role(approval.requested_role), kind="user"),
                subject_type="member" if parameters["subject_type"] == "member" else "guest",
                subject_id=str(parameters["subject_id"]),
                reason=approval.reason,
                approved_by=actor.name,
            )
        except BaseException:
            store.release(approval_id)
            raise
        done = store.finish(
            approval_id,
            ApprovalStatus.executed,
            by=actor.name,
            decision_reason=note,
            outcome=outcome.to_json(),
        )
        return done, outcome


def reject(
    service: LedgerService,
    actor: Actor,
    approval_id: str,
    *,
    note: str | None = None,
) -> Approval:
    """Reject a pending request: nothing happens, its parameters are deleted."""
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.get(approval_id)
        _not_self(approval, actor, "reject (withdraw it instead)")
        store.claim(approval_id, by=actor.name)  # a pending request, and no one else's now
        try:
            _log(
                service,
                actor,
                f"reject {_ACTS[approval.action]} request",
                approval,
                note or approval.reason,
                detail=f"requested by {approval.requested_by}",
            )
        except BaseException:
            store.release(approval_id)
            raise
        return store.finish(
            approval_id, ApprovalStatus.rejected, by=actor.name, decision_reason=note
        )


def withdraw(service: LedgerService, actor: Actor, approval_id: str) -> Approval:
    """The asker withdraws their pending request; its parameters are deleted."""
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.pending(approval_id)
        if approval.requested_by != actor.name:
            raise NotTheAskerError(
                f"approval {approval_id} was requested by {approval.requested_by}: only they "
                "may withdraw it (an admin rejects it instead)"
            )
        _log(
            service, actor, f"withdraw {_ACTS[approval.action]} request", approval, approval.reason
        )
        return store.end_pending(
            approval_id, ApprovalStatus.withdrawn, by=actor.name, decision_reason=None
        )


def read_approved(service: LedgerService, actor: Actor, approval_id: str) -> QuarantineMessage:
    """The one read an approved unsealing allows, by its asker, logged first."""
    with service.approvals() as store:
        expire_due(service, store)
        approval = store.get(approval_id)
        if approval.action is not ApprovalAction.unseal:
            raise ApprovalError(
                f"approval {approval_id} is an erasure: it ran when approved, nothing to read"
            )
        if approval.requested_by != actor.name:
            raise NotTheAskerError(
                f"approval {approval_id} was requested by {approval.requested_by}: only they "
                "may read what it opens"
            )
        approval, parameters = store.take_read(approval_id)
    return quarantine_message(
        service,
        actor,
        topic=str(parameters["topic"]),
        partition=int(parameters["partition"]),
        offset=int(parameters["offset"]),
        reason=approval.reason,
        approval=f"approval {approval_id}, approved by {approval.decided_by}",
    )


def _not_self(approval: Approval, actor: Actor, verb: str) -> None:
    if approval.requested_by != actor.name:
        return
    raise SelfApprovalError(
        f"{actor.name} cannot {verb} their own request {approval.approval_id}: a second "
        "admin must decide it"
    )
