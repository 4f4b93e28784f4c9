"""Reference data from the privacy policy: recipients, category mappings, purposes, flows.

The data lives in YAML files (``reference/data/`` by default), validated by pydantic
on load; nothing here is a business fact in code except the statutory tables (CCPA letter
names, EEA member states, ISO country codes)::

    manifest.yaml    version and sources
    recipients.yaml  recipient registry, one entry per recipient and validity period
    categories.yaml  Fides data-category keys -> CCPA letters, sensitive kind, GDPR Art. 9
    purposes.yaml    Fides data-use keys -> CCPA business purpose, default legal basis
    flows.yaml       the flows the policy declares (recipient x categories x purposes)

:func:`load_reference` returns a :class:`ReferenceData` or raises
:class:`~reference.errors.ReferenceDataError` listing every problem found;
:func:`check_reference` returns the problems instead. :func:`classify` is the consumer's
check at ingest: it raises :class:`ReferenceViolation` (naming the key and the file to
extend) for an event the reference data cannot place, and otherwise returns the event's
:class:`Classification`, memoised on everything but the time.

Pure domain logic: no Kafka, no DuckDB; pyarrow only inside
:meth:`ReferenceData.to_arrow_tables`.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from reference.errors import ReferenceDataError
from schemas.model import DisclosureEvent, LegalBasis, RecipientCategory

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "CCPA_CATEGORY_NAMES",
    "EEA_COUNTRIES",
    "REFERENCE_FILES",
    "REGISTRATION_EXEMPT_CATEGORIES",
    "CategoryEntry",
    "CategoryMapping",
    "Classification",
    "FlowEntry",
    "Manifest",
    "PurposeEntry",
    "RecipientEntry",
    "ReferenceData",
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

# --------------------------------------------------------------------------- statute

CCPA_CATEGORY_NAMES: Final[dict[str, str]] = {
    "A": "Identifiers",
    "B": "Personal information described in Cal. Civ. Code 1798.80(e)",
    "C": "Characteristics of protected classifications under California or federal law",
    "D": "Commercial information",
    "E": "Biometric information",
    "F": "Internet or other electronic network activity information",
    "G": "Geolocation data",
    "H": "Audio, electronic, visual, thermal, olfactory or similar information",
    "I": "Professional or employment-related information",
    "J": "Non-public education information",
    "K": "Inferences drawn from personal information to create a profile",
    "L": "Sensitive personal information",
}


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# EU member states plus Iceland, Liechtenstein and Norway.
EEA_COUNTRIES: Final[frozenset[str]] = _codes(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO"
)

# ISO 3166-1 alpha-2 officially assigned codes.
_ISO_COUNTRIES: Final[frozenset[str]] = _codes(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN
    BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE
    DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN
    GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE
    KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK
    ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA
    PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK
    SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
    UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"""
)

# Recipients of these categories need no registry entry of their own (issue 3).
REGISTRATION_EXEMPT_CATEGORIES: Final[frozenset[str]] = frozenset(
    {RecipientCategory.broadcaster, RecipientCategory.public, RecipientCategory.authority}
)

MANIFEST_FILE: Final = "manifest.yaml"
RECIPIENTS_FILE: Final = "recipients.yaml"
CATEGORIES_FILE: Final = "categories.yaml"
PURPOSES_FILE: Final = "purposes.yaml"
FLOWS_FILE: Final = "flows.yaml"
REFERENCE_FILES: Final[tuple[str, ...]] = (
    MANIFEST_FILE,
    RECIPIENTS_FILE,
    CATEGORIES_FILE,
    PURPOSES_FILE,
    FLOWS_FILE,
)

UNDECLARED_FLOW: Final = "undeclared_flow"
TRANSFER_WITHOUT_SAFEGUARD: Final = "transfer_without_safeguard"

_OPEN_END_MS: Final = 2**63 - 1
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND: Final = timedelta(milliseconds=1)
_NO_SAFEGUARD: Final = (None, "none")


def default_reference_directory() -> Path:
    """The reference data shipped with the package."""
    return Path(__file__).resolve().parent / "data"


class ReferenceViolation(ReferenceDataError):
    """An event the reference data cannot place; names the key and the file to extend."""

    def __init__(self, message: str, *, key: str, reference_file: str) -> None:
        super().__init__(message)
        self.key = key
        self.reference_file = reference_file


# --------------------------------------------------------------------------- vocabulary


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
BUSINESS_PURPOSES: Final[tuple[str, ...]] = (*"12345678", "sale", "share")


def _fides_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(f"{value!r} is not a Fides key (lower-case words joined by dots)")
    return value


def _recipient_id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"{value!r} is not a recipient id (lower-case letters, digits, '-')")
    return value


def _ccpa_letter(value: str) -> str:
    if value not in CCPA_CATEGORY_NAMES:
        raise ValueError(f"{value!r} is not a CCPA category letter (A to L)")
    return value


def _country(value: str) -> str:
    if value not in _ISO_COUNTRIES:
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


# --------------------------------------------------------------------------- helpers


def _date_ms(value: date) -> int:
    return (datetime(value.year, value.month, value.day, tzinfo=UTC) - _EPOCH) // _MILLISECOND


def _ms_text(ms: int) -> str:
    try:
        return (_EPOCH + ms * _MILLISECOND).isoformat(timespec="milliseconds")
    except OverflowError:
        return f"{ms} ms after the Unix epoch"


def _ancestors(key: str) -> Iterable[str]:
    """The key itself, then each ancestor, nearest first."""
    while True:
        yield key
        head, dot, _ = key.rpartition(".")
        if not dot:
            return
        key = head


@cache
def _fides_vocabulary() -> tuple[Mapping[str, str], frozenset[str]]:
    """fideslang's default data categories (key -> name) and data-use keys."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    categories = {c.fides_key: c.name or c.fides_key for c in DEFAULT_TAXONOMY.data_category}
    uses = frozenset(u.fides_key for u in DEFAULT_TAXONOMY.data_use)
    return categories, uses


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True, slots=True)
class _Unregistered:
    """Marker: the recipient needs a registry entry valid at the event's time."""


_UNREGISTERED: Final = _Unregistered()


@dataclass(frozen=True, slots=True)
class _Violation:
    message: str
    key: str
    reference_file: str

    def error(self) -> ReferenceViolation:
        return ReferenceViolation(self.message, key=self.key, reference_file=self.reference_file)


_Outcome = Classification | _Violation | _Unregistered


@dataclass(frozen=True, slots=True)
class _Memo:
    """Outcomes per validity window of the recipient, and outside every window."""

    windows: tuple[tuple[int, int, _Outcome], ...]
    otherwise: _Outcome


_MemoKey = tuple[str | None, str, tuple[str, ...], str]
_CACHE_LIMIT: Final = 1 << 16


class _Index:
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
                return _Memo((), _unknown_category(key))
        purpose_entry = self.purposes.get(purpose)
        if purpose_entry is None:
            return _Memo((), _unknown_purpose(purpose))
        found = [self.mappings[k] for k in keys]
        letters = tuple(sorted({letter for m in found for letter in m.ccpa_letters}))
        sensitive = any(m.sensitive is not None for m in found)
        special = any(m.gdpr_special_category for m in found)
        flow = self.matching_flow(recipient_id, category, keys, purpose)

        def outcome(entry: RecipientEntry | None) -> Classification:
            flags: list[str] = []
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

        otherwise: _Outcome = (
            outcome(None) if category in REGISTRATION_EXEMPT_CATEGORIES else _UNREGISTERED
        )
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

    def unregistered(self, recipient_id: str, category: str, occurred_at_ms: int) -> _Violation:
        when = _ms_text(occurred_at_ms)
        periods = self.windows.get(recipient_id)
        if periods:
            covered = ", ".join(entry.period_text() for _, _, entry in periods)
            detail = f"has no registry entry valid at {when} (its entries cover {covered})"
        else:
            detail = "is not in the recipient registry"
        return _Violation(
            f"recipient {recipient_id!r} of category {category!r} {detail}; every recipient "
            f"of that category must be registered: add it to {RECIPIENTS_FILE}",
            recipient_id,
            RECIPIENTS_FILE,
        )


def _unknown_category(key: str) -> _Violation:
    return _Violation(
        f"data category {key!r} is not in the reference data: add it to {CATEGORIES_FILE} "
        "(a key of fideslang's default taxonomy, or a platform key with `parent:`)",
        key,
        CATEGORIES_FILE,
    )


def _unknown_purpose(key: str) -> _Violation:
    return _Violation(
        f"purpose {key!r} is not in the reference data: add it to {PURPOSES_FILE} "
        "(a data-use key of fideslang's default taxonomy) with its CCPA business purpose",
        key,
        PURPOSES_FILE,
    )


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceData:
    """Validated reference data. Obtain it from :func:`load_reference`."""

    version: str
    manifest: Manifest
    recipients: tuple[RecipientEntry, ...]
    categories: tuple[CategoryEntry, ...]
    purposes: tuple[PurposeEntry, ...]
    flows: tuple[FlowEntry, ...]
    _index: _Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mappings = _effective_mappings(self.categories)
        index = _Index(self.recipients, mappings, self.purposes, self.flows)
        object.__setattr__(self, "_index", index)

    # --- data categories

    def category_mapping(self, key: str) -> CategoryMapping:
        """The effective mapping of a data-category key; raises ReferenceViolation if unknown."""
        mapping = self._index.mappings.get(key)
        if mapping is None:
            raise _unknown_category(key).error()
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
            raise _unknown_purpose(key).error()
        return entry

    def recipient_at(self, recipient_id: str, occurred_at_ms: int) -> RecipientEntry | None:
        """The registry entry of a recipient valid at a time, if any."""
        for start, end, entry in self._index.windows.get(recipient_id, ()):
            if start <= occurred_at_ms < end:
                return entry
        return None

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
        """Tables ``ref_recipients``, ``ref_categories``, ``ref_purposes``, ``ref_flows``."""
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
        return {
            "ref_recipients": recipients,
            "ref_categories": categories,
            "ref_purposes": purposes,
            "ref_flows": flows,
        }


def _effective_mappings(categories: Sequence[CategoryEntry]) -> dict[str, CategoryMapping]:
    """Every known key (listed, or a Fides key under a listed one) after inheritance."""
    fides, _ = _fides_vocabulary()
    listed = {c.key: c for c in categories}
    known = set(listed) | {k for k in fides if any(a in listed for a in _ancestors(k))}
    mappings: dict[str, CategoryMapping] = {}
    for key in sorted(known):
        chain = [listed[a] for a in _ancestors(key) if a in listed]
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


# --------------------------------------------------------------------------- loading

M = TypeVar("M", bound=BaseModel)


@dataclass
class _Parsed:
    manifest: Manifest | None = None
    recipients: list[RecipientEntry] = field(default_factory=list)
    categories: list[CategoryEntry] = field(default_factory=list)
    purposes: list[PurposeEntry] = field(default_factory=list)
    flows: list[FlowEntry] = field(default_factory=list)
    digest: str = ""
    problems: list[str] = field(default_factory=list)
    # Files that could not be read as a whole; checks that need them are skipped.
    unreadable: set[str] = field(default_factory=set)


def _pydantic_problems(prefix: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in err["loc"])
        out.append(f"{prefix}: {where}: {message}" if where else f"{prefix}: {message}")
    return out


def _read(directory: Path, name: str, parsed: _Parsed, digest: Any) -> Any:
    path = directory / name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        parsed.problems.append(f"{name}: file not found in {directory}")
        parsed.unreadable.add(name)
        return None
    except OSError as exc:
        parsed.problems.append(f"{name}: cannot be read: {exc}")
        parsed.unreadable.add(name)
        return None
    text = raw.replace(b"\r\n", b"\n")
    digest.update(name.encode() + b"\0" + text + b"\0")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        parsed.problems.append(f"{name}: not valid YAML: {exc}".replace("\n", " "))
        parsed.unreadable.add(name)
        return None


def _entries(
    name: str, section: str, model: type[M], data: Any, parsed: _Parsed, label: str
) -> list[M]:
    if data is None:
        if name not in parsed.unreadable:
            parsed.problems.append(f"{name}: the file is empty; it must hold `{section}:`")
            parsed.unreadable.add(name)
        return []
    if not isinstance(data, dict) or set(data) != {section} or not isinstance(data[section], list):
        parsed.problems.append(f"{name}: the file must hold one key `{section}:` with a list")
        parsed.unreadable.add(name)
        return []
    out: list[M] = []
    for i, item in enumerate(data[section]):
        prefix = f"{name}: {section}[{i}]"
        if isinstance(item, dict) and isinstance(item.get(label), str):
            prefix += f" ({label} {item[label]!r})"
        try:
            out.append(model.model_validate(item))
        except ValidationError as exc:
            parsed.problems.extend(_pydantic_problems(prefix, exc))
    return out


def _parse(directory: Path) -> _Parsed:
    parsed = _Parsed()
    if not directory.is_dir():
        parsed.problems.append(f"{directory}: not a directory of reference data")
        return parsed
    digest = hashlib.sha256()
    manifest = _read(directory, MANIFEST_FILE, parsed, digest)
    if manifest is not None:
        try:
            parsed.manifest = Manifest.model_validate(manifest)
        except ValidationError as exc:
            parsed.problems.extend(_pydantic_problems(MANIFEST_FILE, exc))
    parsed.recipients = _entries(
        RECIPIENTS_FILE,
        "recipients",
        RecipientEntry,
        _read(directory, RECIPIENTS_FILE, parsed, digest),
        parsed,
        "id",
    )
    parsed.categories = _entries(
        CATEGORIES_FILE,
        "categories",
        CategoryEntry,
        _read(directory, CATEGORIES_FILE, parsed, digest),
        parsed,
        "key",
    )
    parsed.purposes = _entries(
        PURPOSES_FILE,
        "purposes",
        PurposeEntry,
        _read(directory, PURPOSES_FILE, parsed, digest),
        parsed,
        "key",
    )
    parsed.flows = _entries(
        FLOWS_FILE, "flows", FlowEntry, _read(directory, FLOWS_FILE, parsed, digest), parsed, "id"
    )
    parsed.digest = digest.hexdigest()[:8]
    return parsed


def _check_recipients(recipients: Sequence[RecipientEntry]) -> list[str]:
    problems = []
    by_id: dict[str, list[RecipientEntry]] = {}
    for entry in recipients:
        by_id.setdefault(entry.id, []).append(entry)
    for rid, entries in by_id.items():
        entries.sort(key=lambda e: e.valid_from)
        for before, after in itertools.pairwise(entries):
            if before.valid_to is None or before.valid_to > after.valid_from:
                problems.append(
                    f"{RECIPIENTS_FILE}: recipient {rid!r}: validity periods overlap: "
                    f"{before.period_text()} and {after.period_text()}"
                )
    return problems


def _check_categories(categories: Sequence[CategoryEntry]) -> list[str]:
    fides, _ = _fides_vocabulary()
    problems = []
    listed: dict[str, CategoryEntry] = {}
    for entry in categories:
        if entry.key in listed:
            problems.append(f"{CATEGORIES_FILE}: key {entry.key!r} is listed twice")
        listed[entry.key] = entry
    platform = {c.key for c in categories if c.parent is not None}
    for entry in categories:
        where = f"{CATEGORIES_FILE}: key {entry.key!r}"
        if entry.parent is None:
            if entry.key not in fides:
                problems.append(
                    f"{where}: unknown Fides data-category key (not in fideslang's default "
                    "taxonomy); use a taxonomy key, or declare a platform key with `parent:`"
                )
        elif entry.key in fides:
            problems.append(f"{where}: is a Fides key; remove `parent:`")
        elif entry.parent not in fides and entry.parent not in platform:
            problems.append(
                f"{where}: parent {entry.parent!r} is neither a Fides key nor a platform key"
            )
        chain = [listed[a] for a in _ancestors(entry.key) if a in listed]
        if not any(c.ccpa is not None for c in chain):
            problems.append(
                f"{where}: no CCPA letters, and no listed ancestor to inherit them from"
            )
    for key, mapping in _effective_mappings(categories).items():
        if not mapping.listed:
            continue
        has_l = "L" in mapping.ccpa_letters
        if has_l and mapping.sensitive is None:
            problems.append(
                f"{CATEGORIES_FILE}: key {key!r}: letter L (sensitive personal information) "
                "without a `sensitive` kind"
            )
        elif mapping.sensitive is not None and not has_l:
            problems.append(
                f"{CATEGORIES_FILE}: key {key!r}: sensitive ({mapping.sensitive.value}) "
                "but letter L is missing"
            )
    return problems


def _check_purposes(purposes: Sequence[PurposeEntry]) -> list[str]:
    _, uses = _fides_vocabulary()
    problems = []
    seen: set[str] = set()
    for entry in purposes:
        if entry.key in seen:
            problems.append(f"{PURPOSES_FILE}: key {entry.key!r} is listed twice")
        seen.add(entry.key)
        if entry.key not in uses:
            problems.append(
                f"{PURPOSES_FILE}: key {entry.key!r}: unknown Fides data-use key "
                "(not in fideslang's default taxonomy)"
            )
    return problems


def _check_flows(
    flows: Sequence[FlowEntry],
    recipients: Sequence[RecipientEntry] | None,
    known_categories: Mapping[str, CategoryMapping] | None,
    purposes: Sequence[PurposeEntry] | None,
) -> list[str]:
    """Flows against the other files; a file given as None could not be read, skip it."""
    problems = []
    categories_of: dict[str, set[str]] = {}
    for entry in recipients or ():
        categories_of.setdefault(entry.id, set()).add(entry.category.value)
    purpose_keys = {p.key for p in purposes or ()}
    seen: set[str] = set()
    for flow in flows:
        where = f"{FLOWS_FILE}: flow {flow.id!r}"
        if flow.id in seen:
            problems.append(f"{where}: id is used twice")
        seen.add(flow.id)
        if recipients is not None:
            for rid in flow.recipient_ids or ():
                if rid not in categories_of:
                    problems.append(
                        f"{where}: names unknown recipient {rid!r}; add it to {RECIPIENTS_FILE}"
                    )
                elif flow.recipient_category.value not in categories_of[rid]:
                    problems.append(
                        f"{where}: recipient {rid!r} is registered as "
                        f"{', '.join(sorted(categories_of[rid]))}, "
                        f"not {flow.recipient_category.value}"
                    )
        if known_categories is not None:
            problems += [
                f"{where}: unknown data category {key!r}; add it to {CATEGORIES_FILE}"
                for key in flow.data_categories
                if key not in known_categories
            ]
        if purposes is not None:
            problems += [
                f"{where}: unknown purpose {key!r}; add it to {PURPOSES_FILE}"
                for key in flow.purposes
                if key not in purpose_keys
            ]
    return problems


def _load(directory: Path | None) -> tuple[ReferenceData | None, list[str]]:
    parsed = _parse(default_reference_directory() if directory is None else Path(directory))
    problems = list(parsed.problems)
    problems += _check_recipients(parsed.recipients)
    problems += _check_categories(parsed.categories)
    problems += _check_purposes(parsed.purposes)
    readable = {name for name in REFERENCE_FILES if name not in parsed.unreadable}
    problems += _check_flows(
        parsed.flows,
        parsed.recipients if RECIPIENTS_FILE in readable else None,
        _effective_mappings(parsed.categories) if CATEGORIES_FILE in readable else None,
        parsed.purposes if PURPOSES_FILE in readable else None,
    )
    if problems or parsed.manifest is None:
        return None, problems or ["manifest.yaml: missing"]
    return (
        ReferenceData(
            version=f"{parsed.manifest.version}+{parsed.digest}",
            manifest=parsed.manifest,
            recipients=tuple(parsed.recipients),
            categories=tuple(parsed.categories),
            purposes=tuple(parsed.purposes),
            flows=tuple(parsed.flows),
        ),
        [],
    )


def check_reference(directory: Path | None = None) -> list[str]:
    """Every problem in a directory of reference data; empty when it loads."""
    return _load(directory)[1]


def load_reference(directory: Path | None = None) -> ReferenceData:
    """Load and validate reference data (default: the packaged files).

    Raises ReferenceDataError listing every problem, one per line, each with its file and entry.
    """
    data, problems = _load(directory)
    if data is None:
        where = default_reference_directory() if directory is None else directory
        raise ReferenceDataError(
            f"reference data in {where} is invalid ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}; fix the files named):\n  "
            + "\n  ".join(problems)
        )
    return data


# --------------------------------------------------------------------------- ingest


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

    Raises ReferenceViolation when a data-category or purpose key is unknown, when a
    registered recipient's category disagrees with the event's, or when a recipient whose
    category requires registration has no registry entry valid at that time. Memoised on
    everything but the time; the time is checked against the recipient's validity windows.
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
    if type(result) is Classification:
        return result
    if type(result) is _Violation:
        raise result.error()
    raise index.unregistered(recipient_id, str(recipient_category), occurred_at_ms).error()


def classify_event(ref: ReferenceData, event: DisclosureEvent) -> Classification:
    """:func:`classify` for a :class:`~schemas.model.DisclosureEvent`."""
    return classify(
        ref,
        recipient_id=event.recipient.id,
        recipient_category=event.recipient.category.value,
        data_categories=event.data_categories,
        purpose=event.purpose,
        occurred_at_ms=(event.occurred_at - _EPOCH) // _MILLISECOND,
    )


# --------------------------------------------------------------------------- display


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    text_rows = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        widths = [max(w, len(v)) for w, v in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in text_rows
    ]
    return "\n".join(lines)


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


_SECTIONS: Final[dict[str, Callable[[ReferenceData], str]]] = {
    "recipients": _show_recipients,
    "categories": _show_categories,
    "purposes": _show_purposes,
    "flows": _show_flows,
}


def format_reference(ref: ReferenceData, section: str) -> str:
    """One section of the reference data as a plain aligned text table."""
    show = _SECTIONS.get(section)
    if show is None:
        raise ReferenceDataError(
            f"unknown reference section {section!r}: choose one of {', '.join(_SECTIONS)}"
        )
    return show(ref)
