"""The CCPA report as values: the two lists, the monthly volume, and the provenance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from reports.provenance import (
    ChainRange,
    Provenance,
)
from reports.window import MonthSpan

JSON_VERSION: Final = "ccpa-report/1"
SOLD_OR_SHARED_KINDS = ("sale", "share")
KNOWN_KINDS = frozenset({"business_purpose", *SOLD_OR_SHARED_KINDS})


@dataclass(frozen=True)
class BusinessPurpose:
    number: str
    name: str


@dataclass(frozen=True)
class CategoryDisclosed:
    """One CCPA category in one of the two lists."""

    letter: str
    name: str
    recipient_categories: tuple[str, ...]
    events: int
    distinct_subjects: int
    business_purposes: tuple[BusinessPurpose, ...] = ()
    disclosure_kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class MonthlyVolume:
    """Disclosures per recipient category per month of the window (the table and chart)."""

    spans: tuple[MonthSpan, ...]  # every month the window touches, in order, cut to it
    by_recipient_category: tuple[tuple[str, tuple[int, ...]], ...]  # in the vocabulary's order

    @property
    def months(self) -> tuple[str, ...]:
        """``"2025-03"`` of every month the window touches, in order."""
        return tuple(span.month for span in self.spans)

    @property
    def totals(self) -> tuple[int, ...]:
        """Disclosures per month, every recipient category."""
        return tuple(
            sum(values[i] for _, values in self.by_recipient_category)
            for i in range(len(self.spans))
        )


@dataclass(frozen=True)
class CcpaReport:
    source: Provenance
    sold_or_shared: tuple[CategoryDisclosed, ...]
    business_purpose: tuple[CategoryDisclosed, ...]
    monthly: MonthlyVolume

    @property
    def none_sold_or_shared(self) -> bool:
        return not self.sold_or_shared

    # the provenance, by the names this report has always used
    @property
    def as_of(self) -> datetime:
        return self.source.as_of

    @property
    def window_start(self) -> datetime:
        assert self.source.window_start is not None
        return self.source.window_start

    @property
    def window_end(self) -> datetime:
        return self.source.window_end

    @property
    def generated_at(self) -> datetime:
        return self.source.generated_at

    @property
    def ledger_format_version(self) -> str | None:
        return self.source.ledger_format_version

    @property
    def reference_versions(self) -> tuple[str, ...]:
        return self.source.reference_versions

    @property
    def events_counted(self) -> int:
        return self.source.events_counted

    @property
    def first_event_at(self) -> datetime | None:
        return self.source.first_event_at

    @property
    def last_event_at(self) -> datetime | None:
        return self.source.last_event_at

    @property
    def chains(self) -> tuple[ChainRange, ...]:
        return self.source.chains
