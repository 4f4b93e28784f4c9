"""Loading and validating a directory of reference data files.

The data lives in YAML files (``reference/data/`` by default)::

    manifest.yaml    version and sources
    recipients.yaml  recipient registry, one entry per recipient and validity period
    categories.yaml  Fides data-category keys -> CCPA letters, sensitive kind, GDPR Art. 9
    purposes.yaml    Fides data-use keys -> CCPA business purpose, default legal basis
    flows.yaml       the flows the policy declares (recipient x categories x purposes)
    sources.yaml     the producer services expected to publish, each with its flows

Each entry is checked by its pydantic model (:mod:`reference.models`), then the files are
checked against each other and against fideslang's taxonomy. :func:`load_reference`
returns a :class:`~reference.dataset.ReferenceData` or raises
:class:`~reference.errors.ReferenceDataError` listing every problem found, each with its
file and entry; :func:`check_reference` returns the problems instead.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from reference.dataset import ReferenceData
from reference.errors import ReferenceDataError
from reference.models import (
    CATEGORIES_FILE,
    FLOWS_FILE,
    MANIFEST_FILE,
    PURPOSES_FILE,
    RECIPIENTS_FILE,
    REFERENCE_FILES,
    SOURCES_FILE,
    CategoryEntry,
    CategoryMapping,
    ExpectedSource,
    FlowEntry,
    Manifest,
    PurposeEntry,
    RecipientEntry,
)
from reference.taxonomy import ancestors, effective_mappings, fides_vocabulary

__all__ = ["check_reference", "default_reference_directory", "load_reference"]


def default_reference_directory() -> Path:
    """The reference data shipped with the package."""
    return Path(__file__).resolve().parent / "data"


M = TypeVar("M", bound=BaseModel)


@dataclass
class _Parsed:
    manifest: Manifest | None = None
    recipients: list[RecipientEntry] = field(default_factory=list)
    categories: list[CategoryEntry] = field(default_factory=list)
    purposes: list[PurposeEntry] = field(default_factory=list)
    flows: list[FlowEntry] = field(default_factory=list)
    sources: list[ExpectedSource] = field(default_factory=list)
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

    def entries(name: str, model: type[M], label: str) -> list[M]:
        # Each file holds one list under the key its name gives: recipients.yaml, recipients:
        section = name.removesuffix(".yaml")
        return _entries(name, section, model, _read(directory, name, parsed, digest), parsed, label)

    # The files are read in this order: the version's digest depends on it.
    parsed.recipients = entries(RECIPIENTS_FILE, RecipientEntry, "id")
    parsed.categories = entries(CATEGORIES_FILE, CategoryEntry, "key")
    parsed.purposes = entries(PURPOSES_FILE, PurposeEntry, "key")
    parsed.flows = entries(FLOWS_FILE, FlowEntry, "id")
    parsed.sources = entries(SOURCES_FILE, ExpectedSource, "source")
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
    fides, _ = fides_vocabulary()
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
        chain = [listed[a] for a in ancestors(entry.key) if a in listed]
        if not any(c.ccpa is not None for c in chain):
            problems.append(
                f"{where}: no CCPA letters, and no listed ancestor to inherit them from"
            )
    for key, mapping in effective_mappings(categories).items():
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
    _, uses = fides_vocabulary()
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


def _check_sources(
    sources: Sequence[ExpectedSource], flows: Sequence[FlowEntry] | None
) -> list[str]:
    """Each source once, serving declared flows only (``flows`` None: unreadable, skip)."""
    problems = []
    flow_ids = {flow.id for flow in flows or ()}
    seen: set[str] = set()
    for entry in sources:
        where = f"{SOURCES_FILE}: source {entry.source!r}"
        if entry.source in seen:
            problems.append(f"{where} is listed twice")
        seen.add(entry.source)
        if flows is not None:
            problems += [
                f"{where}: serves unknown flow {flow!r}; declare it in {FLOWS_FILE} or "
                "correct the id"
                for flow in entry.flows
                if flow not in flow_ids
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
        effective_mappings(parsed.categories) if CATEGORIES_FILE in readable else None,
        parsed.purposes if PURPOSES_FILE in readable else None,
    )
    problems += _check_sources(parsed.sources, parsed.flows if FLOWS_FILE in readable else None)
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
            sources=tuple(parsed.sources),
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
