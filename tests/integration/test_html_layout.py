"""The CCPA report's chart legend and monthly table, laid out by a real browser.

Chromium (Debian's ``chromium``), driven through its WebDriver (``chromium-driver``) by
Selenium, loads the CCPA report of a ledger that discloses to every recipient category
over a window that starts and ends mid-month, and measures the page:

- the legend's entries, one box each (``getBoundingClientRect()``), overlap nowhere and
  stay inside the page, at a 1280px screen and at the width of a printed A4 page;
- the monthly table is no wider than the page's content at either width, so nothing of
  it is cut off or needs a scroll bar;
- the partial first and last months are marked in the table and the chart.

The measurements are checked not to be vacuous: the same checks, run on the page with its
legend broken on purpose, find the overlap.

Chromium and its driver are not Python packages: when one is missing these tests skip
(fail under ``CI=true``) with the line that installs them. On Debian (as root)::

    apt-get update && apt-get install -y chromium chromium-driver
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from ledger.store import Ledger
from reports.ccpa import ccpa_report, render_ccpa
from reports.vocabulary import RECIPIENT_CATEGORY_PHRASES
from tests.conftest import skip_missing_part
from tests.unit.ledger_rows import disclosure_row, write_ledger

pytestmark = pytest.mark.integration

APT_LINE = "apt-get update && apt-get install -y chromium chromium-driver"
AS_OF = date(2026, 3, 15)  # window 2025-03-15 up to 2026-03-15: both ends mid-month
SCREEN_WIDTH = 1280
# An A4 page (210 mm) and a US letter page (8.5 in) less Chromium's default print margins
# (about 10 mm each side), in CSS pixels (96 per inch).
A4_PRINT_WIDTH = 718
LETTER_PRINT_WIDTH = 739
PAGE_LOAD_SECONDS = 30

# A box as [left, top, right, bottom] in CSS pixels, with the entry's text.
_LEGEND_BOXES = """
return Array.from(document.querySelectorAll('#per-month ul.legend > li')).map(li => {
  const r = li.getBoundingClientRect();
  return [r.left, r.top, r.right, r.bottom, li.textContent];
});
"""
_WIDTHS = """
const table = document.querySelector('#per-month table');
const main = document.querySelector('main');
const style = getComputedStyle(main);
return {
  viewport: document.documentElement.clientWidth,
  page_scroll: document.documentElement.scrollWidth,
  table_left: table.getBoundingClientRect().left,
  table_right: table.getBoundingClientRect().right,
  content_left: main.getBoundingClientRect().left + parseFloat(style.paddingLeft),
  content_right: main.getBoundingClientRect().right - parseFloat(style.paddingRight),
};
"""


def _require(names: tuple[str, ...], part: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    skip_missing_part(
        part,
        f"{APT_LINE} (Debian, as root)",
        detail=f"none of {', '.join(names)} on PATH, so the report's layout cannot be "
        "measured in a real browser",
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CCPA report of a ledger with disclosures to every recipient category in every
    month of a window that starts and ends mid-month."""
    folder = tmp_path_factory.mktemp("layout")
    categories = list(RECIPIENT_CATEGORY_PHRASES)
    rows = [
        disclosure_row(
            recipient_id=f"{category}-{n}",
            recipient_category=category,
            occurred_at=datetime(
                2025 + (2 + month) // 12, (2 + month) % 12 + 1, (20 if month == 0 else 10) + n
            ),
        )
        for month in range(13)
        for k, category in enumerate(categories)
        for n in range(1 + k % 3)
    ]
    ledger_path = write_ledger(folder / "ledger.duckdb", rows)
    with Ledger(ledger_path, read_only=True) as ledger:
        report = ccpa_report(ledger, AS_OF)
    assert len(report.monthly.by_recipient_category) == len(categories) >= 8
    path = folder / "ccpa.html"
    path.write_text(render_ccpa(report, "html"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium = _require(("chromium", "chromium-browser"), "Chromium")
    driver_path = _require(("chromedriver",), "Chromium's WebDriver (chromedriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path_factory.mktemp('profile')}",
        "--hide-scrollbars",
    ):
        options.add_argument(argument)
    # The driver is named, so Selenium never looks for (or downloads) one of its own.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(PAGE_LOAD_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def _show(browser: Any, page: Path, *, width: int, media: str) -> None:
    """Load ``page`` at a viewport ``width`` CSS pixels wide, as ``screen`` or ``print``."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False},
    )
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": media})
    browser.get(page.as_uri())


def _overlaps(boxes: list[list[Any]]) -> list[tuple[str, str]]:
    """Every pair of boxes whose areas intersect (touching edges do not)."""
    return [
        (a[4], b[4])
        for a, b in combinations(boxes, 2)
        if min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
    ]


WIDTHS = [
    pytest.param(SCREEN_WIDTH, "screen", id="screen-1280px"),
    pytest.param(1024, "screen", id="screen-1024px"),
    pytest.param(A4_PRINT_WIDTH, "print", id="print-A4"),
    pytest.param(LETTER_PRINT_WIDTH, "print", id="print-letter"),
]


@pytest.mark.parametrize(("width", "media"), WIDTHS)
def test_no_two_legend_entries_overlap(browser: Any, page: Path, width: int, media: str) -> None:
    _show(browser, page, width=width, media=media)
    boxes = browser.execute_script(_LEGEND_BOXES)
    labels = [box[4] for box in boxes]
    assert labels == [*RECIPIENT_CATEGORY_PHRASES.values(), "partial month"]
    assert all(box[2] > box[0] and box[3] > box[1] for box in boxes), boxes
    assert _overlaps(boxes) == []
    viewport = browser.execute_script("return document.documentElement.clientWidth")
    assert all(box[0] >= 0 and box[2] <= viewport for box in boxes), (viewport, boxes)


@pytest.mark.parametrize(("width", "media"), WIDTHS)
def test_the_monthly_table_fits_the_page(browser: Any, page: Path, width: int, media: str) -> None:
    _show(browser, page, width=width, media=media)
    measured = browser.execute_script(_WIDTHS)
    assert measured["viewport"] == width
    assert measured["page_scroll"] <= measured["viewport"], measured
    assert measured["table_left"] >= measured["content_left"] - 0.5, measured
    assert measured["table_right"] <= measured["content_right"] + 0.5, measured


def test_partial_months_are_marked_in_the_table_and_the_chart(browser: Any, page: Path) -> None:
    _show(browser, page, width=SCREEN_WIDTH, media="screen")
    months = browser.execute_script(
        "return Array.from(document.querySelectorAll('#per-month tbody tr td:first-child'))"
        ".map(td => td.textContent)"
    )
    assert months[0] == "2025-03 (partial)" and months[-2] == "2026-03 (partial)"
    assert months[-1] == "Total" and len(months) == 14
    assert not any("partial" in m for m in months[1:-2])
    marked = browser.execute_script(
        "return [document.querySelectorAll('#per-month svg.chart text.partial').length,"
        " document.querySelectorAll('#per-month svg.chart g.partial rect').length]"
    )
    assert marked == [2, 2]


def test_an_overlap_would_be_caught(browser: Any, page: Path) -> None:
    """The legend check above is not vacuous: the legend's entries laid out on one spot,
    as an SVG legend with fixed slots does for labels longer than their slot, are caught."""
    _show(browser, page, width=SCREEN_WIDTH, media="screen")
    browser.execute_script(
        "document.querySelectorAll('#per-month ul.legend > li')"
        ".forEach((li, i) => { li.style.marginLeft = (i ? -120 : 0) + 'px'; });"
    )
    assert len(_overlaps(browser.execute_script(_LEGEND_BOXES))) >= 8
