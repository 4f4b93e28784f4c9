"""The HTML reports rendered by a real headless browser (Debian's chromium).

Each report of the fixed ledger is written as HTML, loaded by ``chromium --headless`` from
a file URL, and the DOM the browser built (``--dump-dom``) must show the report's lists
(its tables, one row per entry) and, for the CCPA report, the chart (an inline SVG with
bars); the browser's log (``--enable-logging=stderr --v=0``) must hold no console message,
which is where a script error or a blocked load (the pages' Content-Security-Policy
forbids loading anything) would show. A screenshot of each page is saved in the test's
temporary directory.

Chromium is not a Python package: when it is missing this test is skipped (failed under
``CI=true``), with the line that installs it. On Debian (as root)::

    apt-get update && apt-get install -y chromium
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.ccpa import ccpa_report, render_ccpa
from reports.conformance import conformance_report, render_conformance
from reports.request_log import ReceivedVia, RequestLog
from reports.request_metrics import render_requests, requests_report
from reports.subject import (
    answer_subject_request,
    recipients_report,
    render_recipients,
    render_subject,
    subject_report,
)
from reports.transfers import render_transfers, transfers_report
from tests.conftest import skip_missing_part
from tests.unit.golden.fixed_ledger import (
    AS_OF,
    GENERATED_AT,
    HEAVY_SUBJECT,
    SECRET,
    UNSAFE_SUBJECT,
    build_fixed_ledger,
)

pytestmark = pytest.mark.integration

APT_LINE = "apt-get update && apt-get install -y chromium"
BROWSER_TIMEOUT = 90


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    skip_missing_part(
        "Chromium",
        f"{APT_LINE} (Debian, as root)",
        detail="no chromium or chromium-browser on PATH, so the HTML reports cannot be "
        "rendered in a real browser",
    )


def _browse(
    browser: str, page: Path, profile: Path, *mode: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1280,2000",
            *mode,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT,
        check=False,
    )


def console_messages(log: str) -> list[str]:
    """Lines of chromium's log that are console messages (``...:CONSOLE:...]``)."""
    return [line for line in log.splitlines() if ":CONSOLE" in line]


class _Dom(HTMLParser):
    """Counts what the browser's DOM shows: tables and their body rows, list items, charts."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self._section: str | None = None
        self._in_tbody = False
        self._in_svg = False
        self.svg_rects = 0
        self.svgs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in {"section", "footer"}:
            self._section = attributes.get("id") or tag
            self.sections[self._section] = {"rows": 0, "items": 0, "tables": 0}
        elif self._section is not None:
            counts = self.sections[self._section]
            if tag == "table":
                counts["tables"] += 1
            elif tag == "tbody":
                self._in_tbody = True
            elif tag == "tr" and self._in_tbody:
                counts["rows"] += 1
            elif tag == "li":
                counts["items"] += 1
        if tag == "svg":
            self._in_svg = True
            self.svgs.append(attributes.get("id") or "")
        elif tag == "rect" and self._in_svg:
            self.svg_rects += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"section", "footer"}:
            self._section = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "svg":
            self._in_svg = False


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("html")
    fixed = build_fixed_ledger(folder, reference)
    ask = {"as_of": AS_OF, "generated_at": GENERATED_AT}
    with (
        Ledger(fixed.path, read_only=True) as ledger,
        SubjectKeyStore(fixed.key_store, SECRET) as keys,
        RequestLog(folder / "requests.sqlite", SECRET) as log,
    ):
        subject = answer_subject_request(
            subject_report(
                ledger, keys, subject_type=HEAVY_SUBJECT[0], subject_id=HEAVY_SUBJECT[1], **ask
            ),
            log,
            received_on=date(2026, 10, 30),
            received_via=ReceivedVia.web_form,
        )
        recipients = answer_subject_request(
            recipients_report(
                ledger, keys, subject_type=UNSAFE_SUBJECT[0], subject_id=UNSAFE_SUBJECT[1], **ask
            ),
            log,
            received_on=date(2026, 10, 30),
            received_via=ReceivedVia.email,
        )
        texts: dict[str, Callable[[], str]] = {
            "ccpa": lambda: render_ccpa(
                ccpa_report(ledger, AS_OF, generated_at=GENERATED_AT), "html"
            ),
            "conformance": lambda: render_conformance(
                conformance_report(ledger, AS_OF, generated_at=GENERATED_AT), "html"
            ),
            "transfers": lambda: render_transfers(
                transfers_report(ledger, AS_OF, generated_at=GENERATED_AT), "html"
            ),
            "subject": lambda: render_subject(subject, "html"),
            "recipients": lambda: render_recipients(recipients, "html"),
            "requests": lambda: render_requests(
                requests_report(log, 2026, generated_at=GENERATED_AT), "html"
            ),
        }
        written = {}
        for name, text in texts.items():
            path = folder / f"{name}.html"
            path.write_text(text(), encoding="utf-8")
            written[name] = path
    return written


# (section id, least number of table rows, least number of list items) the page must show
EXPECTED: dict[str, list[tuple[str, int, int]]] = {
    "ccpa": [("business-purpose", 5, 0), ("per-month", 5, 0), ("provenance", 3, 4)],
    "conformance": [
        ("undeclared-flows", 3, 0),
        ("transfers-without-safeguard", 1, 0),
        ("provenance", 3, 4),
    ],
    "transfers": [("transfers", 2, 0), ("provenance", 3, 4)],
    "subject": [("request", 0, 4), ("categories", 5, 0), ("recipients", 0, 10)],
    "recipients": [("request", 0, 4), ("recipients", 1, 0), ("provenance", 3, 4)],
    "requests": [("requests", 2, 0), ("provenance", 0, 3)],
}


@pytest.mark.parametrize("report", list(EXPECTED))
def test_the_browser_shows_the_lists_and_chart_without_console_errors(
    pages: dict[str, Path], report: str, tmp_path: Path
) -> None:
    browser = _chromium()
    page = pages[report]

    dumped = _browse(browser, page, tmp_path / "profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    assert console_messages(dumped.stderr) == []
    dom = _Dom()
    dom.feed(dumped.stdout)
    for section, rows, items in EXPECTED[report]:
        shown = dom.sections.get(section)
        assert shown is not None, f"{report}: section {section!r} is not on the page"
        assert shown["rows"] >= rows, f"{report}: {section} shows {shown['rows']} rows"
        assert shown["items"] >= items, f"{report}: {section} shows {shown['items']} items"
    if report == "ccpa":
        # the chart, and its legend's colour swatches (no id)
        assert [s for s in dom.svgs if s] == ["disclosures-per-month"]
        assert dom.svg_rects > 12, "the chart has bars"
    else:
        assert dom.svgs == []

    screenshot = tmp_path / f"{report}.png"
    shot = _browse(browser, page, tmp_path / "profile-shot", f"--screenshot={screenshot}")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert console_messages(shot.stderr) == []
    assert _png_size(screenshot) == (1280, 2000)


def test_a_console_error_would_be_caught(tmp_path: Path) -> None:
    """The check above is not vacuous: a page that logs to the console is caught."""
    browser = _chromium()
    page = tmp_path / "noisy.html"
    page.write_text(
        "<!DOCTYPE html><html><body><script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    result = _browse(browser, page, tmp_path / "profile", "--dump-dom")
    assert any('"boom"' in line for line in console_messages(result.stderr))
