"""The names other code imports from reports.ccpa and reports.subject stay there, whichever
module of the package defines them."""

from __future__ import annotations

import importlib

import pytest

# what disclosure_ledger/cli.py, demo.py, bench/ and the tests import today
IMPORTED = {
    "reports.ccpa": {
        "JSON_VERSION",
        "BusinessPurpose",
        "CcpaReport",
        "ccpa_json",
        "ccpa_report",
        "render_ccpa",
    },
    "reports.subject": {
        "LOOKBACK_FLOOR",
        "SubjectReport",
        "answer_subject_request",
        "deny_subject_request",
        "recipients_report",
        "render_denial",
        "render_recipients",
        "render_subject",
        "subject_report",
    },
}


@pytest.mark.parametrize("package", sorted(IMPORTED))
def test_the_imported_names_are_public_and_resolve(package: str) -> None:
    module = importlib.import_module(package)
    public = set(module.__all__)
    assert IMPORTED[package] <= public, f"{package} no longer exports {IMPORTED[package] - public}"
    missing = [name for name in public if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names what it does not hold: {missing}"
