"""The reference package's public surface, and the layers it may import (httpx style)."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import reference

PACKAGE = Path(reference.__file__).resolve().parent

# What code outside the package may import as `from reference import X`.
PUBLIC_NAMES = [
    "CCPA_CATEGORY_NAMES",
    "EEA_COUNTRIES",
    "REFERENCE_FILES",
    "REFERENCE_SECTIONS",
    "REGISTRATION_EXEMPT_CATEGORIES",
    "TRANSFER_WITHOUT_SAFEGUARD",
    "UNDECLARED_FLOW",
    "CategoryEntry",
    "CategoryMapping",
    "Classification",
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

# The layers above reference data; it may use schemas and the root error only.
FORBIDDEN = ("ledger", "consumers", "reports", "producers", "disclosure_ledger")
ALLOWED = ("disclosure_ledger.errors",)


def test_public_surface_is_exactly_all() -> None:
    assert reference.__all__ == PUBLIC_NAMES
    exported = {
        name
        for name, value in vars(reference).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == set(PUBLIC_NAMES)


def test_every_public_name_resolves() -> None:
    for name in reference.__all__:
        assert getattr(reference, name) is not None, name


def test_the_errors_derive_from_the_root_error() -> None:
    from disclosure_ledger.errors import DisclosureLedgerError

    assert issubclass(reference.ReferenceViolation, reference.ReferenceDataError)
    assert issubclass(reference.ReferenceDataError, DisclosureLedgerError)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_reference_imports_no_layer_above_it() -> None:
    offending = {
        f"{path.name}: {name}"
        for path in sorted(PACKAGE.glob("*.py"))
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN and name not in ALLOWED
    }
    assert not offending, f"reference/ must not import these layers: {sorted(offending)}"
