"""The words the reports print: statutory names of CCPA categories and business purposes.

These are names, not classification: which Fides category maps to which letter is
reference data (``reference/data``), recorded per row at ingest. The names follow
Cal. Civ. Code 1798.140(v)(1) (categories A to L, as summarised in the project's domain
notes) and 1798.140(e) (business purposes 1 to 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from reference import CCPA_CATEGORY_NAMES as _REFERENCE_NAMES

# One table of the statutory names (1798.140(v)(1)), kept with the reference data.
CCPA_CATEGORY_NAMES: Mapping[str, str] = MappingProxyType(dict(_REFERENCE_NAMES))
"""Letter of 1798.140(v)(1) (and L for 1798.140(ae)) -> statutory name."""

BUSINESS_PURPOSE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "1": "Auditing related to counting ad impressions and compliance",
        "2": "Helping to ensure security and integrity",
        "3": "Debugging to identify and repair errors",
        "4": "Short-term, transient use",
        "5": "Performing services on behalf of the business",
        "6": "Advertising and marketing services, except cross-context behavioral advertising",
        "7": "Internal research for technological development and demonstration",
        "8": "Verifying or maintaining the quality or safety of a service, and improving it",
    }
)
"""Number of the business purpose in 1798.140(e) -> its name."""

RECIPIENT_CATEGORY_PHRASES: Mapping[str, str] = MappingProxyType(
    {
        "broadcaster": "broadcasters",
        "public": "other members watching a live session",
        "group_entity": "companies of our group",
        "service_provider": "service providers",
        "payment_provider": "payment providers",
        "financial_institution": "financial institutions",
        "authority": "law-enforcement agencies and governmental authorities",
        "business_transfer": "acquirers in a business transfer",
    }
)
"""Recipient category key -> the plural phrase a privacy policy prints."""

DISCLOSURE_KIND_PHRASES: Mapping[str, str] = MappingProxyType(
    {"sale": "sold", "share": "shared", "business_purpose": "disclosed for a business purpose"}
)
"""Disclosure kind -> past participle (``sold``, ``shared``)."""

DISCLOSURE_KIND_TO: Mapping[str, str] = MappingProxyType(
    {"sale": "sold to", "share": "shared with", "business_purpose": "disclosed to"}
)
"""Disclosure kind -> the words before its recipients (``sold to``, ``shared with``)."""


def recipient_phrase(category: str) -> str:
    """The printed phrase for a recipient category; the key itself if it has none."""
    return RECIPIENT_CATEGORY_PHRASES.get(category, category.replace("_", " "))
