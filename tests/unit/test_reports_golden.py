"""Every report, in every format, on the fixed small ledger, against its golden file.

The fixed ledger is built by ``tests/unit/golden/fixed_ledger.py`` through the real ingest
pipeline. Key-store keys are random, so chain hashes (and pseudonyms, which no report
prints) differ between builds: they are masked, as are the request ids the request log
draws. Everything else must match byte for byte.

To accept a deliberate change, run
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_reports_golden.py``
and review the diff of ``tests/unit/golden/``.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import jsonschema
import pytest

from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData, load_reference
from reports.ccpa import ccpa_report, render_ccpa
from reports.conformance import conformance_report, render_conformance
from reports.presets import Output, recipient_disclosures, timeline, volume
from reports.request_log import ReceivedVia, RequestKind, RequestLog
from reports.request_metrics import render_requests, requests_report
from reports.subject import (
    answer_subject_request,
    deny_subject_request,
    recipients_report,
    render_recipients,
    render_subject,
    subject_report,
)
from reports.transfers import render_transfers, transfers_report
from tests.unit.golden.fixed_ledger import (
    AS_OF,
    GENERATED_AT,
    HEAVY_SUBJECT,
    SECRET,
    UNSAFE_SUBJECT,
    FixedLedger,
    build_fixed_ledger,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
FORMATS = ("json", "md", "html", "csv")
_HASH = re.compile(r"\b[0-9a-f]{64}\b")


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> FixedLedger:
    return build_fixed_ledger(tmp_path_factory.mktemp("golden"), reference)


@dataclass
class Rendered:
    render: Callable[[str], str]
    masks: dict[str, str]


@pytest.fixture(scope="module")
def rendered(fixed: FixedLedger, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Rendered]:
    log_path = tmp_path_factory.mktemp("requests") / "ledger.duckdb.requests.sqlite"
    with (
        Ledger(fixed.path, read_only=True) as ledger,
        SubjectKeyStore(fixed.key_store, SECRET) as keys,
        RequestLog(log_path, SECRET) as log,
    ):
        heavy = {"subject_type": HEAVY_SUBJECT[0], "subject_id": HEAVY_SUBJECT[1]}
        ask = {"as_of": AS_OF, "generated_at": GENERATED_AT}
        # two earlier requests to know, so the third (the golden one) is flagged
        for received in (date(2026, 1, 10), date(2026, 6, 2)):
            answered_at = datetime.combine(received + timedelta(days=3), time(12), UTC)
            earlier = subject_report(ledger, keys, **heavy, as_of=AS_OF, generated_at=answered_at)
            answer_subject_request(
                earlier, log, received_on=received, received_via=ReceivedVia.email
            )
        subject = answer_subject_request(
            subject_report(ledger, keys, **heavy, **ask, since=date(2019, 1, 1)),
            log,
            received_on=date(2026, 10, 28),
            received_via=ReceivedVia.web_form,
        )
        unsafe = {"subject_type": UNSAFE_SUBJECT[0], "subject_id": UNSAFE_SUBJECT[1]}
        recipients = answer_subject_request(
            recipients_report(ledger, keys, **unsafe, **ask),
            log,
            received_on=date(2026, 10, 30),
            received_via=ReceivedVia.toll_free_phone,
        )
        nobody = answer_subject_request(
            subject_report(ledger, keys, subject_type="guest", subject_id="guest-9999999", **ask),
            log,
            received_on=date(2026, 10, 31),
            received_via=ReceivedVia.mail,
        )
        deny_subject_request(
            log,
            kind=RequestKind.know,
            subject_type="member",
            subject_id="member-0000005",
            received_on=date(2026, 9, 1),
            received_via=ReceivedVia.authorized_agent,
            basis="the authorized agent showed no signed permission (11 CCR 7063)",
            generated_at=datetime(2026, 9, 11, 9, 0, tzinfo=UTC),
        )
        ccpa = ccpa_report(ledger, AS_OF, generated_at=GENERATED_AT)
        conformance = conformance_report(ledger, AS_OF, generated_at=GENERATED_AT)
        transfers = transfers_report(ledger, AS_OF, generated_at=GENERATED_AT)
        metrics = requests_report(log, 2026, generated_at=GENERATED_AT)
    # the ledger is closed again: the presets open it in their own sandboxed way
    assert subject.request and recipients.request and nobody.request
    return {
        "ccpa": Rendered(lambda f: render_ccpa(ccpa, f), {}),
        "conformance": Rendered(lambda f: render_conformance(conformance, f), {}),
        "transfers": Rendered(lambda f: render_transfers(transfers, f), {}),
        "subject": Rendered(
            lambda f: render_subject(subject, f),
            {subject.request.request_id: "<request-id>"},
        ),
        "subject-no-data": Rendered(
            lambda f: render_subject(nobody, f), {nobody.request.request_id: "<request-id>"}
        ),
        "recipients": Rendered(
            lambda f: render_recipients(recipients, f),
            {recipients.request.request_id: "<request-id>"},
        ),
        "requests": Rendered(
            lambda f: render_requests(metrics, f), {str(log_path): "<request-log>"}
        ),
    }


def _masked(text: str, masks: dict[str, str]) -> str:
    # the reference version carries a digest of the reference files, which change apart
    masks = {**masks, load_reference().version: "<reference-version>"}
    for value, mask in masks.items():
        text = text.replace(value, mask)
    return _HASH.sub("<sha256>", text)


# Kept hand-written rather than syrupy 7.0.3: the golden files are named by report and
# format (ccpa.html opens in a browser, ccpa.csv in a spreadsheet, and a reviewer reads a
# diff of subject.md by name), and the integration tests build on the same folder. syrupy
# keeps snapshots in __snapshots__/, all of a module in one indented .ambr file, or with its
# single-file extension one file per test id ("test_report_matches_its_golden_file[md-ccpa]");
# the masking above stays ours either way. This comparison is ten lines.
def _compare(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run with UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file (UPDATE_GOLDEN=1 to accept)"


REPORTS = (
    "ccpa",
    "conformance",
    "transfers",
    "subject",
    "subject-no-data",
    "recipients",
    "requests",
)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("report", REPORTS)
def test_report_matches_its_golden_file(
    rendered: dict[str, Rendered], report: str, fmt: str
) -> None:
    entry = rendered[report]
    _compare(f"{report}.{fmt}", _masked(entry.render(fmt), entry.masks))


@pytest.mark.parametrize("report", REPORTS)
def test_report_json_validates_against_its_published_schema(
    rendered: dict[str, Rendered], report: str
) -> None:
    document = json.loads(rendered[report].render("json"))
    schema_file = SCHEMAS / (document["report"].replace("/", "-") + ".schema.json")
    assert schema_file.is_file(), f"no published schema for {document['report']}"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)


PRESETS: dict[str, Callable[[FixedLedger, Output], int]] = {
    "query-timeline": lambda fixed, out: _timeline(fixed, out),
    "query-recipient": lambda fixed, out: recipient_disclosures(
        fixed.path, "survey-provider", out, start=date(2026, 6, 1), end=date(2026, 11, 1)
    ),
    "query-volume-recipient": lambda fixed, out: volume(
        fixed.path, "recipient", out, start=date(2026, 8, 1), end=date(2026, 9, 1)
    ),
    "query-volume-category": lambda fixed, out: volume(
        fixed.path, "category", out, start=date(2026, 8, 1), end=date(2026, 9, 1)
    ),
    "query-volume-day": lambda fixed, out: volume(
        fixed.path, "day", out, start=date(2026, 8, 1), end=date(2026, 9, 1)
    ),
}


def _timeline(fixed: FixedLedger, out: Output) -> int:
    with SubjectKeyStore(fixed.key_store, SECRET) as keys:
        pseudonym = keys.pseudonym(*HEAVY_SUBJECT)
    return timeline(fixed.path, pseudonym, HEAVY_SUBJECT[0], out, start=date(2026, 5, 1), end=AS_OF)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_query_preset_matches_its_golden_file(fixed: FixedLedger, preset: str) -> None:
    buffer = io.StringIO()
    PRESETS[preset](fixed, Output("csv", buffer))
    _compare(f"{preset}.csv", _masked(buffer.getvalue(), {}))


def test_every_golden_file_is_used() -> None:
    expected = {f"{r}.{f}" for r in REPORTS for f in FORMATS} | {f"{p}.csv" for p in PRESETS}
    present = {p.name for p in GOLDEN.iterdir() if p.suffix in {".json", ".md", ".html", ".csv"}}
    assert present == expected
