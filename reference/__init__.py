"""Reference data: recipients, categories, purposes, declared flows and quarantine rules.

Versioned data files, validated on load. Neither storage (``ledger``) nor the wire contract
(``schemas``): consumers, reports and the simulator all classify with it.
"""

from reference._reference import (
    CCPA_CATEGORY_NAMES,
    Classification,
    ReferenceData,
    ReferenceViolation,
    Role,
    Safeguard,
    check_reference,
    classify,
    classify_event,
    default_reference_directory,
    format_reference,
    load_reference,
)
from reference.errors import ReferenceDataError

__all__ = [
    "CCPA_CATEGORY_NAMES",
    "Classification",
    "ReferenceData",
    "ReferenceDataError",
    "ReferenceViolation",
    "Role",
    "Safeguard",
    "check_reference",
    "classify",
    "classify_event",
    "default_reference_directory",
    "format_reference",
    "load_reference",
]
