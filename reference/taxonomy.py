"""fideslang's default taxonomy, and data-category mappings inherited along it.

A data-category entry may leave out its CCPA letters, sensitive kind or GDPR flag; it then
inherits them from its nearest listed ancestor (``user.contact.email`` from
``user.contact``). A Fides key under a listed one is known too, with what it inherits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import cache

from reference.models import CategoryEntry, CategoryMapping

__all__ = ["ancestors", "effective_mappings", "fides_vocabulary"]


def ancestors(key: str) -> Iterable[str]:
    """The key itself, then each ancestor, nearest first."""
    while True:
        yield key
        head, dot, _ = key.rpartition(".")
        if not dot:
            return
        key = head


@cache
def fides_vocabulary() -> tuple[Mapping[str, str], frozenset[str]]:
    """fideslang's default data categories (key -> name) and data-use keys."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    categories = {c.fides_key: c.name or c.fides_key for c in DEFAULT_TAXONOMY.data_category}
    uses = frozenset(u.fides_key for u in DEFAULT_TAXONOMY.data_use)
    return categories, uses


def effective_mappings(categories: Sequence[CategoryEntry]) -> dict[str, CategoryMapping]:
    """Every known key (listed, or a Fides key under a listed one) after inheritance."""
    fides, _ = fides_vocabulary()
    listed = {c.key: c for c in categories}
    known = set(listed) | {k for k in fides if any(a in listed for a in ancestors(k))}
    mappings: dict[str, CategoryMapping] = {}
    for key in sorted(known):
        chain = [listed[a] for a in ancestors(key) if a in listed]
        letters_entry = next((c for c in chain if c.ccpa is not None), None)
        sensitive_entry = next((c for c in chain if c.sets_sensitive), None)
        gdpr_entry = next((c for c in chain if c.sets_gdpr), None)
        own = listed.get(key)
        mappings[key] = CategoryMapping(
            key=key,
            name=(own.name if own is not None and own.name else None) or fides.get(key, key),
            ccpa_letters=()
            if letters_entry is None or letters_entry.ccpa is None
            else tuple(sorted(set(letters_entry.ccpa))),
            sensitive=None if sensitive_entry is None else sensitive_entry.sensitive,
            gdpr_special_category=bool(gdpr_entry and gdpr_entry.gdpr_special_category),
            listed=own is not None,
            platform_key=own is not None and own.parent is not None,
            letters_from="" if letters_entry is None else letters_entry.key,
        )
    return mappings
