"""Reference data: recipients, categories, purposes, declared flows and expected sources.

Versioned data files, validated on load. Neither storage (``ledger``) nor the wire contract
(``schemas``): consumers, reports and the simulator all classify with it. One module per
concern; import the public names from here::

    statute          CCPA category letters, EEA member states, ISO country codes
    models           the file models, their enumerations, CategoryMapping, Classification
    taxonomy         fideslang's taxonomy and the inheritance of category mappings
    classification   classify(), classify_event(): one disclosure, at its time
    dataset          ReferenceData, the validated whole, and its Arrow export
    loading          load_reference(), check_reference(): the files and their checks
    display          format_reference(): a section as a text table
    errors           ReferenceDataError, ReferenceViolation

Pure domain logic: no Kafka, no DuckDB; pyarrow only inside
:meth:`ReferenceData.to_arrow_tables`. Imports nothing of the project but ``schemas`` and
``disclosure_ledger.errors``.
"""

from reference.classification import (
    REGISTRATION_EXEMPT_CATEGORIES,
    TRANSFER_WITHOUT_SAFEGUARD,
    UNDECLARED_FLOW,
    UNREGISTERED_RECIPIENT,
    classify,
    classify_event,
)
from reference.dataset import ReferenceData
from reference.display import REFERENCE_SECTIONS, format_reference
from reference.errors import ReferenceDataError, ReferenceViolation
from reference.loading import check_reference, default_reference_directory, load_reference
from reference.models import (
    REFERENCE_FILES,
    CategoryEntry,
    CategoryMapping,
    Classification,
    ExpectedSource,
    FlowEntry,
    Manifest,
    PurposeEntry,
    RecipientEntry,
    Role,
    Safeguard,
    SensitiveKind,
)
from reference.statute import CCPA_CATEGORY_NAMES, EEA_COUNTRIES

__all__ = [
    "CCPA_CATEGORY_NAMES",
    "EEA_COUNTRIES",
    "REFERENCE_FILES",
    "REFERENCE_SECTIONS",
    "REGISTRATION_EXEMPT_CATEGORIES",
    "TRANSFER_WITHOUT_SAFEGUARD",
    "UNDECLARED_FLOW",
    "UNREGISTERED_RECIPIENT",
    "CategoryEntry",
    "CategoryMapping",
    "Classification",
    "ExpectedSource",
    "FlowEntry",
    "Manifest",
    "PurposeEntry",
    "RecipientEntry",
    "ReferenceData",
    "ReferenceDataError",
    "ReferenceViolation",
    "Role",
    "Safeguard",
    "SensitiveKind",
    "check_reference",
    "classify",
    "classify_event",
    "default_reference_directory",
    "format_reference",
    "load_reference",
]
