"""The producer's opt-in check of each event's recipient against the recipient registry.

The consumer records a disclosure to a recipient missing from the registry, flagged
``unregistered_recipient`` (the disclosure happened: evidence is never dropped), and the
conformance report lists it. This check catches the mistake where it is made, before the
event is sent: it warns (once per recipient id, on this module's logger), or, when strict,
refuses the event.

Producers need only ``schemas`` (docs/architecture.md); the registry is the reference
data's, which the caller loads and passes in, so this module imports nothing of
``reference``::

    from reference import load_reference
    DisclosurePublisher(servers, recipients=load_reference(), strict=True)
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from schemas.model import DisclosureEvent

__all__ = ["RecipientCheck", "RecipientRegistry"]

log = logging.getLogger(__name__)


class RecipientRegistry(Protocol):
    """What the check needs of the registry: :class:`reference.ReferenceData` is one."""

    def unregistered_recipient(
        self, recipient_id: str, recipient_category: str, occurred_at: datetime
    ) -> str | None:
        """Why the recipient needs a registry entry at that time and has none (naming the
        id and the fix), or None."""
        ...


class RecipientCheck:
    """Checks events' recipients; warns about unregistered ones, or refuses them if strict."""

    def __init__(self, registry: RecipientRegistry, *, strict: bool = False) -> None:
        self.registry = registry
        self.strict = strict
        self._warned: set[str] = set()

    def problem(self, event: DisclosureEvent) -> str | None:
        """Why the event's recipient is unregistered at its time, or None."""
        recipient = event.recipient
        return self.registry.unregistered_recipient(
            recipient.id, recipient.category.value, event.occurred_at
        )

    def refusal(self, event: DisclosureEvent) -> str | None:
        """None when the event may be sent. An unregistered recipient is refused when strict
        (the reason returned: the event must not be sent), and otherwise warned about, the
        first time its id is met, and let through."""
        problem = self.problem(event)
        if problem is None:
            return None
        if self.strict:
            return f"event {event.event_id} refused, not sent (strict recipient check): {problem}"
        if event.recipient.id not in self._warned:
            self._warned.add(event.recipient.id)
            log.warning(
                "event %s: %s; sending it anyway (the ledger records it flagged "
                "unregistered_recipient; further events to this recipient are not warned "
                "about again)",
                event.event_id,
                problem,
            )
        return None
