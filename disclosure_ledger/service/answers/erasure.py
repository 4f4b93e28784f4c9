"""``erase-subject`` in the service: one subject's key destroyed while ingestion continues.

The erasure is recorded in the ledger's ``erasures`` table (by
:func:`ledger.erasure.erase_subject`, through the service's one writable view), the
request log forgets its link to the subject, and the access log keeps who asked and why
(written first: an erasure whose request cannot be logged is not made). What the erasure
cannot reach, and until when (:func:`outside_reach`), is stated in the answer and kept in
the request log with the erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from disclosure_ledger.erasure_reach import OutsideReach, SubjectFootprint, subject_footprint
from disclosure_ledger.erasure_reach import outside_reach as state_outside_reach
from ledger.access_log import AccessEntry
from ledger.erasure import erase_subject
from ledger.key_check import KeyStoreAccess

if TYPE_CHECKING:
    from disclosure_ledger.service.auth.accounts import Actor
    from disclosure_ledger.service.runtime import LedgerService


@dataclass(frozen=True)
class ErasureOutcome:
    """What an erasure did; holds neither the subject id nor its pseudonym."""

    erased: bool  # False: no key was held (never seen, or already erased)
    subject_type: str
    erased_at: datetime
    ledger_rows: int  # rows that can no longer be linked to the subject
    request_log_links: int  # earlier answers the request log no longer links to them
    actor: str
    approved_by: str | None = None  # the second admin (disclosure_ledger.service.approvals)
    outside_reach: OutsideReach | None = None  # what the erasure cannot reach, until when

    def to_json(self) -> dict[str, object]:
        return {
            "erased": self.erased,
            "subject_type": self.subject_type,
            "erased_at": f"{self.erased_at:%Y-%m-%dT%H:%M:%SZ}",
            "ledger_rows": self.ledger_rows,
            "request_log_links": self.request_log_links,
            "actor": self.actor,
            "approved_by": self.approved_by,
            "outside_reach": None if self.outside_reach is None else self.outside_reach.to_json(),
        }


def erasure_lines(outcome: ErasureOutcome) -> list[str]:
    """What ``erase-subject`` prints. Neither the id nor the pseudonym: one beside the
    other would link them."""
    reach = [] if outcome.outside_reach is None else outcome.outside_reach.lines()
    if not outcome.erased:
        return [
            f"no key held for that {outcome.subject_type}: never seen, or already erased; "
            "nothing to erase",
            *reach,
        ]
    lines = [
        f"erased the key of one {outcome.subject_type}; {outcome.ledger_rows} ledger row(s) "
        f"can no longer be linked to them; recorded in the erasures table at "
        f"{outcome.erased_at:%Y-%m-%dT%H:%M:%SZ} by {outcome.actor}"
        + (f", approved by {outcome.approved_by}" if outcome.approved_by else "")
    ]
    if outcome.request_log_links:
        lines.append(
            f"the request log no longer links {outcome.request_log_links} earlier answer(s) to them"
        )
    return lines + reach


def outside_reach(service: LedgerService, footprint: SubjectFootprint) -> OutsideReach:
    """What an erasure cannot reach (:mod:`disclosure_ledger.erasure_reach`), asked of the
    broker the service ingests from, outside the writer lock (the broker may take seconds)."""
    from disclosure_ledger.settings import load_settings

    ingest = service.ingest_settings
    settings = load_settings()
    with service.view() as view:
        return state_outside_reach(
            view,
            footprint,
            bootstrap_servers=ingest.bootstrap_servers
            if ingest is not None
            else settings.kafka_bootstrap_servers,
            dead_letter_topic=ingest.dead_letter_topic
            if ingest is not None
            else settings.dead_letter_topic,
            retention_days=service.quarantine_retention_days,
        )


def erase(
    service: LedgerService,
    actor: Actor,
    *,
    subject_type: Literal["member", "guest"],
    subject_id: str,
    reason: str,
    approved_by: str | None = None,
) -> ErasureOutcome:
    """Destroy the subject's key, record the erasure, forget it in the request log.

    Through the service this runs only once a second admin approved the request
    (:func:`disclosure_ledger.service.answers.approvals.approve`): ``actor`` is the asker,
    ``approved_by`` the approver, both in the journal."""
    with (
        service.writable_view() as view,
        service.subject_keys(KeyStoreAccess.erase, view) as keys,
    ):
        held = keys.secrets_for(subject_type, subject_id)
        pseudonym = None if held is None else held.pseudonym
        # read before the key is destroyed: the newest of its rows, its sealed quarantine
        footprint = subject_footprint(view, pseudonym, None if held is None else held.key_id)
        service.record_access(
            AccessEntry(
                actor=actor.name,
                role=actor.role.value,
                action="erase subject",
                reason=reason,
                rows_returned=0,
                subject_pseudonym=pseudonym,
                detail=f"subject_type {subject_type}"
                + ("" if approved_by is None else f"; approved by {approved_by}")
                + ("" if pseudonym is not None else "; no key held"),
            )
        )
        erasure = erase_subject(
            view, keys, subject_type, subject_id, actor=actor.name, approved_by=approved_by
        )
    statement = outside_reach(service, footprint)
    links = 0
    if erasure.erasure_id is not None or service.request_log_path.exists():
        with service.request_log() as log:
            links = log.after_erasure(
                subject_type,
                subject_id,
                pseudonym=erasure.pseudonym,
                erasure_id=erasure.erasure_id,
                statement=statement.to_json(),
            )
    return ErasureOutcome(
        erased=erasure.erased,
        subject_type=subject_type,
        erased_at=erasure.erased_at,
        ledger_rows=erasure.ledger_rows,
        request_log_links=links,
        actor=actor.name,
        approved_by=erasure.approved_by or approved_by,
        outside_reach=statement,
    )
