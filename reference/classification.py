"""Classification: what the reference data says about one disclosure, at its time.

:func:`classify` is the consumer's check at ingest. It raises
:class:`~reference.errors.ReferenceViolation` (naming the key and the file to extend) for
an event the reference data cannot place, and otherwise returns the event's
:class:`~reference.models.Classification`. A recipient that should be in the registry but
is not (at the event's time) does not make an event unplaceable: the disclosure happened,
so it is classified by the category the event carries and flagged
``unregistered_recipient`` (issue 16). The work is done once per distinct
(recipient, category, data categories, purpose) in a :class:`ClassificationIndex`, and
memoised; only the time is checked per event, against the recipient's validity windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from reference.errors import ReferenceViolation
from reference.models import (
    CATEGORIES_FILE,
    EPOCH,
    MILLISECOND,
    PURPOSES_FILE,
    RECIPIENTS_FILE,
    CategoryMapping,
    Classification,
    FlowEntry,
    PurposeEntry,
    RecipientEntry,
    Role,
)
from schemas.model import DisclosureEvent, RecipientCategory

if TYPE_CHECKING:
    from reference.dataset import ReferenceData

__all__ = [
    "REGISTRATION_EXEMPT_CATEGORIES",
    "TRANSFER_WITHOUT_SAFEGUARD",
    "UNDECLARED_FLOW",
    "UNREGISTERED_RECIPIENT",
    "ClassificationIndex",
    "classify",
    "classify_event",
    "unknown_category",
    "unknown_purpose",
]

# The flags a classification carries.
UNREGISTERED_RECIPIENT: Final = "unregistered_recipient"
UNDECLARED_FLOW: Final = "undeclared_flow"
TRANSFER_WITHOUT_SAFEGUARD: Final = "transfer_without_safeguard"

# Recipients of these categories need no registry entry of their own (issue 3).
REGISTRATION_EXEMPT_CATEGORIES: Final[frozenset[str]] = frozenset(
    {RecipientCategory.broadcaster, RecipientCategory.public, RecipientCategory.authority}
)

_NO_SAFEGUARD: Final = (None, "none")


def _ms_text(ms: int) -> str:
    try:
        return (EPOCH + ms * MILLISECOND).isoformat(timespec="milliseconds")
    except OverflowError:
        return f"{ms} ms after the Unix epoch"


@dataclass(frozen=True, slots=True)
class _Violation:
    message: str
    key: str
    reference_file: str

    def error(self) -> ReferenceViolation:
        return ReferenceViolation(self.message, key=self.key, reference_file=self.reference_file)


_Outcome = Classification | _Violation


@dataclass(frozen=True, slots=True)
class _Memo:
    """Outcomes per validity window of the recipient, and outside every window."""

    windows: tuple[tuple[int, int, _Outcome], ...]
    otherwise: _Outcome


_MemoKey = tuple[str | None, str, tuple[str, ...], str]
_CACHE_LIMIT: Final = 1 << 16


class ClassificationIndex:
    """Lookups derived from the validated files; built once per ReferenceData."""

    __slots__ = ("flows", "mappings", "memo", "purposes", "registered", "windows")

    def __init__(
        self,
        recipients: Sequence[RecipientEntry],
        mappings: dict[str, CategoryMapping],
        purposes: Sequence[PurposeEntry],
        flows: Sequence[FlowEntry],
    ) -> None:
        self.mappings = mappings
        self.purposes = {p.key: p for p in purposes}
        windows: dict[str, list[tuple[int, int, RecipientEntry]]] = {}
        for entry in sorted(recipients, key=lambda r: (r.id, r.valid_from)):
            windows.setdefault(entry.id, []).append((entry.valid_from_ms, entry.valid_to_ms, entry))
        self.windows = {rid: tuple(w) for rid, w in windows.items()}
        self.registered = frozenset(self.windows)
        self.flows = tuple(flows)
        self.memo: dict[_MemoKey, _Memo] = {}

    def covers(self, flow_key: str, key: str) -> bool:
        if key == flow_key:
            return True
        if not key.startswith(flow_key + "."):
            return False
        # Sensitive data must be declared by its own key, not through a broader one.
        return self.mappings[key].sensitive is None or self.mappings[flow_key].sensitive is not None

    def matching_flow(
        self, recipient_id: str | None, category: str, keys: Sequence[str], purpose: str
    ) -> FlowEntry | None:
        for flow in self.flows:
            if flow.recipient_category != category or purpose not in flow.purposes:
                continue
            if flow.recipient_ids is not None and recipient_id not in flow.recipient_ids:
                continue
            if all(any(self.covers(fk, k) for fk in flow.data_categories) for k in keys):
                return flow
        return None

    def build(self, memo_key: _MemoKey) -> _Memo:
        recipient_id, category, keys, purpose = memo_key
        for key in keys:
            if key not in self.mappings:
                return _Memo((), unknown_category(key))
        purpose_entry = self.purposes.get(purpose)
        if purpose_entry is None:
            return _Memo((), unknown_purpose(purpose))
        found = [self.mappings[k] for k in keys]
        letters = tuple(sorted({letter for m in found for letter in m.ccpa_letters}))
        sensitive = any(m.sensitive is not None for m in found)
        special = any(m.gdpr_special_category for m in found)
        flow = self.matching_flow(recipient_id, category, keys, purpose)

        def outcome(entry: RecipientEntry | None, *, unregistered: bool = False) -> Classification:
            flags: list[str] = [UNREGISTERED_RECIPIENT] if unregistered else []
            if flow is None:
                flags.append(UNDECLARED_FLOW)
            if entry is not None and entry.eea is False and entry.safeguard in _NO_SAFEGUARD:
                flags.append(TRANSFER_WITHOUT_SAFEGUARD)
            return Classification(
                recipient_registered=entry is not None,
                recipient_role=Role.third_party if entry is None else entry.role,
                recipient_country=None if entry is None else entry.country,
                recipient_eea=None if entry is None else entry.eea,
                safeguard=None if entry is None else entry.safeguard,
                declared=flow is not None,
                flow_id=None if flow is None else flow.id,
                flags=tuple(flags),
                ccpa_letters=letters,
                sensitive=sensitive,
                gdpr_special_category=special,
                business_purpose=purpose_entry.business_purpose,
            )

        # no registry entry valid at the event's time: recorded, by the event's category
        otherwise = outcome(None, unregistered=category not in REGISTRATION_EXEMPT_CATEGORIES)
        if recipient_id is None:
            return _Memo((), otherwise)
        windows: list[tuple[int, int, _Outcome]] = []
        for start, end, entry in self.windows[recipient_id]:
            result: _Outcome
            if entry.category != category:
                result = _Violation(
                    f"recipient {recipient_id!r} is registered as {entry.category.value!r} "
                    f"for {entry.period_text()}, but the event names it as {str(category)!r}: "
                    f"correct the event, or add a registry entry to {RECIPIENTS_FILE}",
                    recipient_id,
                    RECIPIENTS_FILE,
                )
            else:
                result = outcome(entry)
            windows.append((start, end, result))
        return _Memo(tuple(windows), otherwise)

    def unregistered(
        self,
        recipient_id: str,
        category: str,
        occurred_at_ms: int,
        registry_file: str = RECIPIENTS_FILE,
    ) -> str | None:
        """Why the recipient needs a registry entry valid at that time and has none, naming
        the id and the fix; None if it has one, or its category needs none."""
        if category in REGISTRATION_EXEMPT_CATEGORIES:
            return None
        periods = self.windows.get(recipient_id, ())
        if any(start <= occurred_at_ms < end for start, end, _ in periods):
            return None
        when = _ms_text(occurred_at_ms)
        if periods:
            covered = ", ".join(entry.period_text() for _, _, entry in periods)
            detail = f"has no registry entry valid at {when} (its entries cover {covered})"
        else:
            detail = "is not in the recipient registry"
        return (
            f"recipient {recipient_id!r} of category {category!r} {detail}; every recipient "
            f"of that category must be registered: add it to {registry_file}"
        )


def unknown_category(key: str) -> _Violation:
    return _Violation(
        f"data category {key!r} is not in the reference data: add it to {CATEGORIES_FILE} "
        "(a key of fideslang's default taxonomy, or a platform key with `parent:`)",
        key,
        CATEGORIES_FILE,
    )


def unknown_purpose(key: str) -> _Violation:
    return _Violation(
        f"purpose {key!r} is not in the reference data: add it to {PURPOSES_FILE} "
        "(a data-use key of fideslang's default taxonomy) with its CCPA business purpose",
        key,
        PURPOSES_FILE,
    )


def classify(
    ref: ReferenceData,
    *,
    recipient_id: str,
    recipient_category: str,
    data_categories: Sequence[str],
    purpose: str,
    occurred_at_ms: int,
) -> Classification:
    """Classify one disclosure by the reference data valid at ``occurred_at_ms``.

    Raises ReferenceViolation when a data-category or purpose key is unknown, or when a
    registered recipient's category disagrees with the event's. A recipient whose category
    requires registration but has no registry entry valid at that time is classified by
    the event's category and flagged ``unregistered_recipient``. Memoised on everything
    but the time; the time is checked against the recipient's validity windows.
    """
    index = ref._index
    rid = recipient_id if recipient_id in index.registered else None
    memo_key = (rid, recipient_category, tuple(data_categories), purpose)
    memo = index.memo.get(memo_key)
    if memo is None:
        if len(index.memo) >= _CACHE_LIMIT:
            index.memo.clear()
        memo = index.memo[memo_key] = index.build(memo_key)
    result = memo.otherwise
    for start, end, outcome in memo.windows:
        if start <= occurred_at_ms < end:
            result = outcome
            break
    if type(result) is _Violation:
        raise result.error()
    assert type(result) is Classification
    return result


def classify_event(ref: ReferenceData, event: DisclosureEvent) -> Classification:
    """:func:`classify` for a :class:`~schemas.model.DisclosureEvent`."""
    return classify(
        ref,
        recipient_id=event.recipient.id,
        recipient_category=event.recipient.category.value,
        data_categories=event.data_categories,
        purpose=event.purpose,
        occurred_at_ms=(event.occurred_at - EPOCH) // MILLISECOND,
    )
