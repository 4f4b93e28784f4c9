"""The validated reference data as one value, and its export as Arrow tables.

Obtain a :class:`ReferenceData` from :func:`reference.load_reference`; the ledger stores
:meth:`ReferenceData.to_arrow_tables` beside the rows it classified, under the same
version. pyarrow is imported only inside that method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from reference.classification import ClassificationIndex, unknown_category, unknown_purpose
from reference.models import (
    EPOCH,
    MILLISECOND,
    RECIPIENTS_FILE,
    CategoryEntry,
    CategoryMapping,
    ExpectedSource,
    FlowEntry,
    Manifest,
    PurposeEntry,
    RecipientEntry,
)
from reference.statute import CCPA_CATEGORY_NAMES
from reference.taxonomy import effective_mappings

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ReferenceData"]


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceData:
    """Validated reference data. Obtain it from :func:`load_reference`."""

    version: str
    manifest: Manifest
    recipients: tuple[RecipientEntry, ...]
    categories: tuple[CategoryEntry, ...]
    purposes: tuple[PurposeEntry, ...]
    flows: tuple[FlowEntry, ...]
    sources: tuple[ExpectedSource, ...] = ()  # producer services expected to publish
    _index: ClassificationIndex = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mappings = effective_mappings(self.categories)
        index = ClassificationIndex(self.recipients, mappings, self.purposes, self.flows)
        object.__setattr__(self, "_index", index)

    # --- data categories

    def category_mapping(self, key: str) -> CategoryMapping:
        """The effective mapping of a data-category key; raises ReferenceViolation if unknown."""
        mapping = self._index.mappings.get(key)
        if mapping is None:
            raise unknown_category(key).error()
        return mapping

    def known_categories(self) -> Mapping[str, CategoryMapping]:
        """Every data-category key an event may use, with its effective mapping."""
        return dict(self._index.mappings)

    def ccpa_letters(self, key: str) -> frozenset[str]:
        return frozenset(self.category_mapping(key).ccpa_letters)

    def is_sensitive(self, key: str) -> bool:
        return self.category_mapping(key).sensitive is not None

    # --- purposes and recipients

    def purpose(self, key: str) -> PurposeEntry:
        entry = self._index.purposes.get(key)
        if entry is None:
            raise unknown_purpose(key).error()
        return entry

    def recipient_at(self, recipient_id: str, occurred_at_ms: int) -> RecipientEntry | None:
        """The registry entry of a recipient valid at a time, if any."""
        for start, end, entry in self._index.windows.get(recipient_id, ()):
            if start <= occurred_at_ms < end:
                return entry
        return None

    def unregistered_recipient(
        self,
        recipient_id: str,
        recipient_category: str,
        occurred_at: datetime,
        *,
        registry_file: str = RECIPIENTS_FILE,
    ) -> str | None:
        """Why this recipient needs a registry entry valid at ``occurred_at`` and has none,
        naming the id and the fix (add it to ``registry_file``); None when it has one, or
        its category needs none (broadcasters, the public, authorities). The check
        ``publish`` and the producer library make before sending: the consumer records
        such an event anyway, flagged ``unregistered_recipient``."""
        at_ms = (occurred_at - EPOCH) // MILLISECOND
        return self._index.unregistered(recipient_id, str(recipient_category), at_ms, registry_file)

    def matching_flow(
        self,
        *,
        recipient_id: str,
        recipient_category: str,
        data_categories: Sequence[str],
        purpose: str,
    ) -> FlowEntry | None:
        """The first declared flow that covers this disclosure, or None."""
        rid = recipient_id if recipient_id in self._index.registered else None
        return self._index.matching_flow(rid, recipient_category, data_categories, purpose)

    # --- export

    def to_arrow_tables(self) -> dict[str, pa.Table]:
        """Tables ``ref_recipients``, ``ref_categories``, ``ref_purposes``, ``ref_flows``,
        ``ref_sources`` (one row per expected source, with the ids of the flows it serves:
        ``ledger.coverage`` reads it)."""
        import pyarrow as pa

        version = self.version
        ts = pa.timestamp("ms", tz="UTC")

        def stamp(value: date | None) -> datetime | None:
            return (
                None if value is None else datetime(value.year, value.month, value.day, tzinfo=UTC)
            )

        recipients = pa.table(
            {
                "recipient_id": pa.array([r.id for r in self.recipients], pa.string()),
                "legal_name": pa.array([r.legal_name for r in self.recipients], pa.string()),
                "kind": pa.array([r.kind for r in self.recipients], pa.string()),
                "address": pa.array([r.address for r in self.recipients], pa.string()),
                "country": pa.array([r.country for r in self.recipients], pa.string()),
                "recipient_category": pa.array(
                    [r.category.value for r in self.recipients], pa.string()
                ),
                "role": pa.array([r.role.value for r in self.recipients], pa.string()),
                "eea": pa.array([r.eea for r in self.recipients], pa.bool_()),
                "safeguard": pa.array(
                    [None if r.safeguard is None else r.safeguard.value for r in self.recipients],
                    pa.string(),
                ),
                "valid_from": pa.array([stamp(r.valid_from) for r in self.recipients], ts),
                "valid_to": pa.array([stamp(r.valid_to) for r in self.recipients], ts),
                "policy_section": pa.array(
                    [r.policy_section for r in self.recipients], pa.string()
                ),
                "reference_version": pa.array([version] * len(self.recipients), pa.string()),
            }
        )
        category_rows = [
            (m, letter)
            for m in sorted(self._index.mappings.values(), key=lambda m: m.key)
            for letter in m.ccpa_letters
        ]
        categories = pa.table(
            {
                "data_category": pa.array([m.key for m, _ in category_rows], pa.string()),
                "ccpa_letter": pa.array([letter for _, letter in category_rows], pa.string()),
                "ccpa_category_name": pa.array(
                    [CCPA_CATEGORY_NAMES[letter] for _, letter in category_rows], pa.string()
                ),
                "sensitive": pa.array(
                    [m.sensitive is not None for m, _ in category_rows], pa.bool_()
                ),
                "sensitive_kind": pa.array(
                    [None if m.sensitive is None else m.sensitive.value for m, _ in category_rows],
                    pa.string(),
                ),
                "gdpr_special_category": pa.array(
                    [m.gdpr_special_category for m, _ in category_rows], pa.bool_()
                ),
                "listed": pa.array([m.listed for m, _ in category_rows], pa.bool_()),
                "platform_key": pa.array([m.platform_key for m, _ in category_rows], pa.bool_()),
                "reference_version": pa.array([version] * len(category_rows), pa.string()),
            }
        )
        purposes = pa.table(
            {
                "purpose": pa.array([p.key for p in self.purposes], pa.string()),
                "business_purpose": pa.array(
                    [p.business_purpose for p in self.purposes], pa.string()
                ),
                "legal_basis": pa.array([p.legal_basis.value for p in self.purposes], pa.string()),
                "reference_version": pa.array([version] * len(self.purposes), pa.string()),
            }
        )
        flow_rows = [
            (flow, rid, key, purpose)
            for flow in self.flows
            for rid in (flow.recipient_ids or (None,))
            for key in flow.data_categories
            for purpose in flow.purposes
        ]
        flows = pa.table(
            {
                "flow_id": pa.array([f.id for f, _, _, _ in flow_rows], pa.string()),
                "policy_section": pa.array(
                    [f.policy_section for f, _, _, _ in flow_rows], pa.string()
                ),
                "recipient_category": pa.array(
                    [f.recipient_category.value for f, _, _, _ in flow_rows], pa.string()
                ),
                "recipient_id": pa.array([rid for _, rid, _, _ in flow_rows], pa.string()),
                "data_category": pa.array([key for _, _, key, _ in flow_rows], pa.string()),
                "purpose": pa.array([p for _, _, _, p in flow_rows], pa.string()),
                "legal_basis": pa.array(
                    [
                        (f.legal_basis or self._index.purposes[p].legal_basis).value
                        for f, _, _, p in flow_rows
                    ],
                    pa.string(),
                ),
                "reference_version": pa.array([version] * len(flow_rows), pa.string()),
            }
        )
        sources = pa.table(
            {
                "reference_version": pa.array([version] * len(self.sources), pa.string()),
                "source": pa.array([s.source for s in self.sources], pa.string()),
                "flows": pa.array([list(s.flows) for s in self.sources], pa.list_(pa.string())),
            }
        )
        return {
            "ref_recipients": recipients,
            "ref_categories": categories,
            "ref_purposes": purposes,
            "ref_flows": flows,
            "ref_sources": sources,
        }
