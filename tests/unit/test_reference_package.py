"""The reference package's public surface, and the layers it may import (httpx style)."""

from __future__ import annotations

import ast
import types
from pathlib import Path

import reference

PACKAGE = Path(reference.__file__).resolve().parent

ROOT = PACKAGE.parent
IMPORTERS = ("consumers", "disclosure_ledger", "producers", "reports", "ledger", "bench", "tests")

# The layers above reference data; it may use schemas and the root error only.
FORBIDDEN = ("ledger", "consumers", "reports", "producers", "disclosure_ledger")
ALLOWED = ("disclosure_ledger.errors",)


def _names_imported_from_reference() -> set[str]:
    """Every X in `from reference import X` anywhere outside the package."""
    names: set[str] = set()
    for folder in IMPORTERS:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "reference":
                    names.update(alias.name for alias in node.names)
    return names


def test_all_lists_exactly_the_public_names_sorted() -> None:
    exported = {
        name
        for name, value in vars(reference).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(exported, key=lambda n: (not n.isupper(), n)) == reference.__all__


def test_every_name_the_project_imports_from_reference_is_public() -> None:
    imported = _names_imported_from_reference()
    assert {"ReferenceData", "load_reference", "classify", "classify_event"} <= imported
    assert imported <= set(reference.__all__), imported - set(reference.__all__)


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
