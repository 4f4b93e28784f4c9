"""The reference data shown as plain text tables, one section at a time (``reference show``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Final

from tabulate import tabulate

from reference.dataset import ReferenceData
from reference.errors import ReferenceDataError

__all__ = ["REFERENCE_SECTIONS", "format_reference"]


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    # Every cell is text already; numparse would right-align purposes such as "1".
    return tabulate(
        list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True, missingval=""
    )


def _show_recipients(ref: ReferenceData) -> str:
    return _table(
        ("id", "legal name", "country", "eea", "category", "role", "safeguard", "valid"),
        (
            (
                r.id,
                r.legal_name,
                r.country or "-",
                "-" if r.eea is None else ("yes" if r.eea else "no"),
                r.category.value,
                r.role.value,
                "-" if r.safeguard is None else r.safeguard.value,
                r.period_text(),
            )
            for r in ref.recipients
        ),
    )


def _show_categories(ref: ReferenceData) -> str:
    return _table(
        ("key", "ccpa", "sensitive", "gdpr art. 9", "source"),
        (
            (
                m.key,
                ",".join(m.ccpa_letters),
                "-" if m.sensitive is None else m.sensitive.value,
                "yes" if m.gdpr_special_category else "no",
                ("platform key" if m.platform_key else "listed")
                if m.listed
                else f"inherits {m.letters_from}",
            )
            for m in sorted(ref.known_categories().values(), key=lambda m: m.key)
        ),
    )


def _show_purposes(ref: ReferenceData) -> str:
    return _table(
        ("key", "business purpose", "legal basis"),
        ((p.key, p.business_purpose, p.legal_basis.value) for p in ref.purposes),
    )


def _show_flows(ref: ReferenceData) -> str:
    return _table(
        ("flow", "section", "recipient", "data categories", "purposes"),
        (
            (
                f.id,
                f.policy_section,
                f.recipient_category.value
                + ("" if f.recipient_ids is None else f" ({', '.join(f.recipient_ids)})"),
                ", ".join(f.data_categories),
                ", ".join(f.purposes),
            )
            for f in ref.flows
        ),
    )


def _show_sources(ref: ReferenceData) -> str:
    return _table(
        ("source", "flows", "description"),
        ((s.source, ", ".join(s.flows), s.description) for s in ref.sources),
    )


REFERENCE_SECTIONS: Final[dict[str, Callable[[ReferenceData], str]]] = {
    "recipients": _show_recipients,
    "categories": _show_categories,
    "purposes": _show_purposes,
    "flows": _show_flows,
    "sources": _show_sources,
}


def format_reference(ref: ReferenceData, section: str) -> str:
    """One section of the reference data (see ``REFERENCE_SECTIONS``) as a plain text table."""
    show = REFERENCE_SECTIONS.get(section)
    if show is None:
        raise ReferenceDataError(
            f"unknown reference section {section!r}: choose one of {', '.join(REFERENCE_SECTIONS)}"
        )
    return show(ref)
