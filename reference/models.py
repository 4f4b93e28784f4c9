"""The reference data's vocabulary and file models, validated by pydantic on load.

One model per entry of each data file (:class:`Manifest`, :class:`RecipientEntry`,
:class:`CategoryEntry`, :class:`PurposeEntry`, :class:`FlowEntry`), the enumerations they
use, and the two derived values the rest of the project reads: :class:`CategoryMapping`
(a data-category key after inheritance) and :class:`Classification` (what the reference
data says about one disclosure).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from reference.statute import BUSINESS_PURPOSES, CCPA_CATEGORY_NAMES, EEA_COUNTRIES, ISO_COUNTRIES
from schemas.model import LegalBasis, RecipientCategory

__all__ = [
    "CATEGORIES_FILE",
    "EPOCH",
    "FLOWS_FILE",
    "MANIFEST_FILE",
    "MILLISECOND",
    "PURPOSES_FILE",
    "RECIPIENTS_FILE",
    "REFERENCE_FILES",
    "SOURCES_FILE",
    "CategoryEntry",
    "CategoryMapping",
    "Classification",
    "ExpectedSource",
    "FlowEntry",
    "Manifest",
    "PurposeEntry",
    "RecipientEntry",
    "Role",
    "Safeguard",
    "SensitiveKind",
    "Source",
]

MANIFEST_FILE: Final = "manifest.yaml"
RECIPIENTS_FILE: Final = "recipients.yaml"
CATEGORIES_FILE: Final = "categories.yaml"
PURPOSES_FILE: Final = "purposes.yaml"
FLOWS_FILE: Final = "flows.yaml"
SOURCES_FILE: Final = "sources.yaml"
REFERENCE_FILES: Final[tuple[str, ...]] = (
    MANIFEST_FILE,
    RECIPIENTS_FILE,
    CATEGORIES_FILE,
    PURPOSES_FILE,
    FLOWS_FILE,
    SOURCES_FILE,
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND: Final = timedelta(milliseconds=1)
_OPEN_END_MS: Final = 2**63 - 1


class Role(StrEnum):
    joint_controller = "joint_controller"
    group_entity = "group_entity"
    processor = "processor"
    contractor = "contractor"
    third_party = "third_party"


class Safeguard(StrEnum):
    """GDPR Arts. 45-49 ground for a transfer outside the EEA."""

    adequacy_decision = "adequacy_decision"
    standard_contractual_clauses = "standard_contractual_clauses"
    binding_corporate_rules = "binding_corporate_rules"
    derogation = "derogation"
    none = "none"


class SensitiveKind(StrEnum):
    """Kinds of CCPA sensitive personal information, 1798.140(ae)."""

    government_id = "government_id"
    account_login = "account_login"
    financial_account = "financial_account"
    precise_geolocation = "precise_geolocation"
    racial_ethnic_origin = "racial_ethnic_origin"
    citizenship_immigration = "citizenship_immigration"
    religious_philosophical_beliefs = "religious_philosophical_beliefs"
    union_membership = "union_membership"
    communications_content = "communications_content"
    genetic = "genetic"
    neural = "neural"
    biometric = "biometric"
    health = "health"
    sex_life_sexual_orientation = "sex_life_sexual_orientation"


_KEY = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _fides_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(f"{value!r} is not a Fides key (lower-case words joined by dots)")
    return value


def _recipient_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not a recipient id (lower-case letters, digits, '-')")
    return value


def _service_name(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{value!r} is not a service name (lower-case letters, digits, '-'), as events "
            "carry it in producer.service"
        )
    return value


def _ccpa_letter(value: str) -> str:
    if value not in CCPA_CATEGORY_NAMES:
        raise ValueError(f"{value!r} is not a CCPA category letter (A to L)")
    return value


def _country(value: str) -> str:
    if value not in ISO_COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. LU, US)")
    return value


def _business_purpose(value: object) -> str:
    text = str(value)
    if text not in BUSINESS_PURPOSES:
        raise ValueError(
            f"{value!r} is not a CCPA business purpose: give '1' to '8', 'sale' or 'share'"
        )
    return text


Key = Annotated[str, AfterValidator(_fides_key)]
RecipientId = Annotated[str, AfterValidator(_recipient_id)]
ServiceName = Annotated[str, AfterValidator(_service_name)]
FlowId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")]
CcpaLetter = Annotated[str, AfterValidator(_ccpa_letter)]
CountryCode = Annotated[str, AfterValidator(_country)]
BusinessPurpose = Annotated[str, BeforeValidator(_business_purpose)]
Text = Annotated[str, Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- file models


class Source(_Frozen):
    title: Text
    location: Text
    sections: str | None = None


class Manifest(_Frozen):
    version: Annotated[str, Field(pattern=r"^\d{4}\.\d+\.\d+$")]
    description: Text
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]
    taxonomy: Text


class RecipientEntry(_Frozen):
    """One recipient over one validity period [valid_from, valid_to)."""

    id: RecipientId
    legal_name: Text
    kind: Literal["organisation", "class"]
    address: str | None = None
    country: CountryCode | None = None
    category: RecipientCategory
    role: Role
    eea: bool | None = None
    safeguard: Safeguard | None = None
    valid_from: date
    valid_to: date | None = None
    policy_section: Text
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RecipientEntry:
        problems: list[str] = []
        if self.kind == "organisation" and (not self.address or self.country is None):
            problems.append("a named organisation needs its address and country")
        if self.country is None:
            if self.eea is not None or self.safeguard is not None:
                problems.append("eea and safeguard need a country")
        else:
            in_eea = self.country in EEA_COUNTRIES
            if self.eea is None:
                problems.append(f"eea is missing (country {self.country} is in the EEA: {in_eea})")
            elif self.eea != in_eea:
                problems.append(
                    f"eea is {self.eea} but country {self.country} is "
                    f"{'in' if in_eea else 'outside'} the EEA"
                )
            if not in_eea and self.safeguard is None:
                problems.append(
                    f"country {self.country} is outside the EEA: state the transfer safeguard "
                    f"({', '.join(s.value for s in Safeguard)})"
                )
            if in_eea and self.safeguard is not None:
                problems.append(f"safeguard given for country {self.country}, which is in the EEA")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            problems.append(f"valid_to {self.valid_to} is not after valid_from {self.valid_from}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def valid_from_ms(self) -> int:
        return _date_ms(self.valid_from)

    @property
    def valid_to_ms(self) -> int:
        return _OPEN_END_MS if self.valid_to is None else _date_ms(self.valid_to)

    def period_text(self) -> str:
        return f"[{self.valid_from}, {self.valid_to or 'open'})"


class CategoryEntry(_Frozen):
    """A data-category key. Fields left out are inherited from the nearest listed ancestor."""

    key: Key
    parent: Key | None = None
    name: str | None = None
    description: str | None = None
    ccpa: Annotated[tuple[CcpaLetter, ...], Field(min_length=1)] | None = None
    sensitive: SensitiveKind | None = None
    gdpr_special_category: bool | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _platform_key_shape(self) -> CategoryEntry:
        if self.parent is not None and self.key.rpartition(".")[0] != self.parent:
            raise ValueError(
                f"platform key {self.key!r} must be its parent {self.parent!r} plus one word"
            )
        return self

    @property
    def sets_sensitive(self) -> bool:
        return "sensitive" in self.model_fields_set

    @property
    def sets_gdpr(self) -> bool:
        return self.gdpr_special_category is not None


class PurposeEntry(_Frozen):
    key: Key
    business_purpose: BusinessPurpose
    legal_basis: LegalBasis
    note: str | None = None


class FlowEntry(_Frozen):
    """A declared flow: recipient category (or recipients) x data categories x purposes."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")]
    policy_section: Text
    description: Text
    recipient_category: RecipientCategory
    recipient_ids: Annotated[tuple[RecipientId, ...], Field(min_length=1)] | None = None
    data_categories: Annotated[tuple[Key, ...], Field(min_length=1)]
    purposes: Annotated[tuple[Key, ...], Field(min_length=1)]
    legal_basis: LegalBasis | None = None


class ExpectedSource(_Frozen):
    """A producer service expected to publish, and the declared flows it serves. Its
    producer watermarks bound how far the ledger is complete (``ledger/coverage.py``)."""

    source: ServiceName  # as events carry it in producer.service
    description: Text
    flows: Annotated[tuple[FlowId, ...], Field(min_length=1)]


class CategoryMapping(_Frozen):
    """The effective mapping of one known data-category key, after inheritance."""

    key: str
    name: str
    ccpa_letters: tuple[str, ...]
    sensitive: SensitiveKind | None
    gdpr_special_category: bool
    listed: bool
    platform_key: bool
    letters_from: str


class Classification(_Frozen):
    """What the reference data says about one disclosure, at its time."""

    recipient_registered: bool
    recipient_role: Role
    recipient_country: str | None
    recipient_eea: bool | None
    safeguard: Safeguard | None
    declared: bool
    flow_id: str | None
    flags: tuple[str, ...]
    ccpa_letters: tuple[str, ...]
    sensitive: bool
    gdpr_special_category: bool
    business_purpose: str


def _date_ms(value: date) -> int:
    return (datetime(value.year, value.month, value.day, tzinfo=UTC) - EPOCH) // MILLISECOND
