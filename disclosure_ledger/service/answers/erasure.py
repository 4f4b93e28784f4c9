"""``erase-subject`` in the service: one subject's key destroyed while ingestion continues.

The erasure is recorded in the ledger's ``erasures`` table (by
:func:`ledger.erasure.erase_subject`, through the service's one writable view), the
request log forgets its link to the subject, and the access log keeps who asked and why
(written first: an erasure whose request cannot be logged is not made).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from disclosure_ledger.service.answers.requests import forget_subject_in_request_log
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

    def to_json(self) -> dict[str, object]:
        return {
            "erased": self.erased,
            "subject_type": self.subject_type,
            "erased_at": f"{self.erased_at:%Y-%m-%dT%H:%M:%SZ}",
            "ledger_rows": self.ledger_rows,
            "request_log_links": self.request_log_links,
            "actor": self.actor,
        }


def erasure_lines(outcome: ErasureOutcome) -> list[str]:
    """What ``erase-subject`` prints. Neither the id nor the pseudonym: one beside the
    other would link them."""
    if not outcome.erased:
        return [
            f"no key held for that {outcome.subject_type}: never seen, or already erased; "
            "nothing to erase"
        ]
    lines = [
        f"erased the key of one {outcome.subject_type}; {outcome.ledger_rows} ledger row(s) "
        f"can no longer be linked to them; recorded in the erasures table at "
        f"{outcome.erased_at:%Y-%m-%dT%H:%M:%SZ} by {outcome.actor}"
    ]
    if outcome.request_log_links:
        lines.append(
            f"the request log no longer links {outcome.request_log_links} earlier answer(s) to them"
        )
    return lines


def erase(
    service: LedgerService,
    actor: Actor,
    *,
    subject_type: Literal["member", "guest"],
    subject_id: str,
    reason: str,
) -> ErasureOutcome:
    """Destroy the subject's key, record the erasure, forget it in the request log."""
    with (
        service.writable_view() as view,
        service.subject_keys(KeyStoreAccess.erase, view) as keys,
    ):
        pseudonym = keys.pseudonym(subject_type, subject_id)
        service.record_access(
            AccessEntry(
                actor=actor.name,
                role=actor.role.value,
                action="erase subject",
                reason=reason,
                rows_returned=0,
                subject_pseudonym=pseudonym,
                detail=f"subject_type {subject_type}"
                + ("" if pseudonym is not None else "; no key held"),
            )
        )
        erasure = erase_subject(view, keys, subject_type, subject_id, actor=actor.name)
    links = 0
    if erasure.pseudonym is not None and service.request_log_path.exists():
        with service.request_log() as log:
            links = log.forget_pseudonym(erasure.pseudonym)
    forget_subject_in_request_log(service, subject_type, subject_id)
    return ErasureOutcome(
        erased=erasure.erased,
        subject_type=subject_type,
        erased_at=erasure.erased_at,
        ledger_rows=erasure.ledger_rows,
        request_log_links=links,
        actor=actor.name,
    )
