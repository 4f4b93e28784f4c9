"""One path through the web console in a real browser, over a real service and broker.

A real ``disclosure-ledger serve`` process ingests a topic of a real Kafka broker (events
of ten members, and a watermark of every expected source, so the ledger knows it is
complete), with users added by ``disclosure-ledger users``; Debian's ``chromium``,
headless, driven by Selenium through Debian's ``chromedriver``, then:

1. signs in (as a compliance officer);
2. produces the CCPA report as of today with the as-of picker (provisional, if the
   ledger's coverage does not reach that far yet);
3. answers a request to know;
4. signs in as an investigator, runs a refused query and an allowed one (and opens the
   bytes of a quarantined message);
5. signs in as an auditor, opens the access log and finds those reads in it.

No page may log anything to the browser's console (a script error, or a load the
Content-Security-Policy blocked, shows there), no URL the browser visits may hold the
subject id, and neither may the service's log. Screenshots go to ``docs/screenshots/``.

Chromium and chromedriver are not Python packages: when they are missing this test is
skipped (failed under ``CI=true``), with the line that installs them. On Debian (as root)::

    apt-get update && apt-get install -y chromium chromium-driver
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer

from disclosure_ledger.service.auth.roles import Role
from producers.publisher import DisclosurePublisher
from reference import ReferenceData
from tests.conftest import ROOT, skip_missing_part
from tests.integration.reliability_support import CLI, LIVE_PROCESSES
from tests.integration.sources import every_source_declares_all_published
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

APT_LINE = "apt-get update && apt-get install -y chromium chromium-driver"
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "console browser test password"
SUBJECT = "member-7"
EVENTS = 40
POISON = b"not avro at all"
STARTUP_TIMEOUT = 60.0
WAIT = 20.0


def _executable(names: tuple[str, ...], what: str) -> str:
    for name in names:
        found = shutil.which(name) or (name if Path(name).is_file() else None)
        if found:
            return found
    skip_missing_part(what, f"{APT_LINE} (Debian, as root)", detail=f"no {' or '.join(names)}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningService:
    url: str
    log_path: Path
    token: str  # an auditor's API token, to wait for ingestion

    def status(self) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/api/v1/status", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            body: dict[str, Any] = json.load(answer)
        return body


def _publish(bootstrap: str, topic: str, reference: ReferenceData) -> None:
    """Disclosures of ``member-0`` ... ``member-9`` in 2026, a message that is not an event
    (quarantined), then every expected source's watermark: the ledger is complete through
    now, less the allowance."""
    with DisclosurePublisher(bootstrap, topic) as publisher:
        for i in range(EVENTS):
            event = make_event(
                subject={"id": f"member-{i % 10}", "type": "member"},
                occurred_at=datetime(2026, 1 + i % 11, 1 + i % 27, 12, 0, tzinfo=UTC),
            )
            publisher.send(event).get(timeout=30)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=b"poison-key", value=POISON).get(timeout=30)
    producer.close()
    every_source_declares_all_published(bootstrap, topic, reference)


def _users(ledger: Path, *arguments: str) -> str:
    """``disclosure-ledger users ...`` (the password on standard input); its output."""
    action, rest = arguments[0], list(arguments[1:])
    if action == "token":
        action, rest = f"token {rest[0]}", rest[1:]
    done = subprocess.run(
        [str(CLI), "users", *action.split(), "--ledger", str(ledger), *rest],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def service(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    reference: ReferenceData,
    tmp_path: Path,
) -> Iterator[RunningService]:
    topic = new_topic(partitions=2)
    _publish(kafka_bootstrap, topic, reference)
    ledger = tmp_path / "ledger.duckdb"
    for role in (Role.compliance, Role.investigator, Role.auditor, Role.admin):
        _users(ledger, "add", f"console-{role.value}", "--role", role.value, "--password-stdin")
    token = _users(ledger, "token", "issue", "--role", "auditor", "--label", "browser test").strip()
    url = f"http://127.0.0.1:{_free_port()}"
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": secrets.token_hex(32)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(CLI),
                "serve",
                "--ledger",
                str(ledger),
                "--listen",
                url.removeprefix("http://"),
                "--bootstrap-servers",
                kafka_bootstrap,
                "--topic",
                topic,
                "--no-checkpoints",
                "--probe-every",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    LIVE_PROCESSES.append(process)
    running = RunningService(url, log_path, token)
    try:
        _wait_until_ingested(running, process)
        yield running
    finally:
        process.terminate()  # SIGTERM: the batch in hand, then a clean exit
        process.wait(timeout=60)


def _wait_until_ingested(running: RunningService, process: subprocess.Popen[bytes]) -> None:
    """Until the service answers, holds every event, and its coverage reaches today."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    last: object = None
    while time.monotonic() < deadline:
        assert process.poll() is None, running.log_path.read_text(errors="replace")[-3000:]
        try:
            last = status = running.status()
        except OSError as exc:
            last = exc
        else:
            through = status["coverage"]["coverage"]["complete_through"]
            if status["rows"] == EVENTS and status["quarantine"] == 1 and through is not None:
                complete = datetime.fromisoformat(through.replace("Z", "+00:00"))
                if complete >= today or complete >= datetime.now(UTC) - timedelta(minutes=10):
                    return
        time.sleep(0.5)
    pytest.fail(f"the service did not ingest the topic in time: {last}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    chromium = _executable(("chromium", "chromium-browser"), "Chromium")
    driver_path = _executable(("/usr/bin/chromedriver", "chromedriver"), "chromedriver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        "--window-size=1200,900",
        "--lang=en-US",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(
        service=Service(executable_path=driver_path, log_output=str(tmp_path / "driver.log")),
        options=options,
    )
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


class Console:
    """The browser on the console: what a person does, and what the test checks each time."""

    def __init__(self, driver: Any, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver, self.url, self.by = driver, url, By
        self.visited: list[str] = []

    def find(self, css: str) -> Any:
        return self.driver.find_element(self.by.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(self.by.CSS_SELECTOR, css))

    def settled(self, status: int = 200) -> None:
        """After each page: nothing in the browser's console (but, when a refusal is
        expected, the page's own status, which the browser may log a moment later), no
        subject id in the URL."""
        self.visited.append(self.driver.current_url)
        expected = (
            f"{self.driver.current_url} - Failed to load resource: the server responded "
            f"with a status of {status} "
        )
        messages: list[str] = []
        seen = status == 200
        deadline = time.monotonic() + WAIT
        while True:
            for entry in self.driver.get_log("browser"):
                if not seen and entry["message"].startswith(expected):
                    seen = True
                else:
                    messages.append(entry["message"])
            if seen or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert messages == [], f"console messages on {self.driver.current_url}: {messages}"
        assert seen, f"{self.driver.current_url} was expected to answer {status}"
        assert SUBJECT not in self.driver.current_url

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)
        self.settled()

    def _click_and_wait(self, element: Any) -> None:
        """Click, then wait until the page the click leads to has replaced this one."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.wait import WebDriverWait

        page = self.driver.find_element(self.by.TAG_NAME, "html")

        def replaced(_driver: Any) -> bool:
            try:
                page.is_enabled()  # a node of the old document: stale once it is gone
            except WebDriverException:  # stale, or "does not belong to the document"
                return True
            return False

        element.click()
        WebDriverWait(self.driver, WAIT).until(replaced)

    def submit(self, css: str, status: int = 200) -> None:
        self._click_and_wait(self.find(css))
        self.settled(status)

    def fill(self, fields: dict[str, str]) -> None:
        for name, value in fields.items():
            element = self.find(f"#{name}")
            element.clear()
            element.send_keys(value)

    def sign_in(self, role: Role) -> None:
        self.open("/login")
        self.fill({"name": f"console-{role.value}", "password": PASSWORD})
        self.submit("form[action='/login'] button")
        assert self.find("form.who span").text.startswith(f"console-{role.value}")

    def sign_out(self) -> None:
        self.submit("form.who button")
        assert self.driver.current_url == f"{self.url}/login"

    def nav(self, label: str) -> None:
        self._click_and_wait(self.driver.find_element(self.by.LINK_TEXT, label))
        self.settled()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        assert self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_one_path_through_the_console(service: RunningService, browser: Any) -> None:
    console = Console(browser, service.url)

    # 1. sign in
    console.sign_in(Role.compliance)
    assert console.find("#rows-count").text == f"{EVENTS} rows"
    console.screenshot("console-1-dashboard")

    # 2. the CCPA report, as of today (the picker's default)
    console.nav("CCPA report")
    console.submit("#produce")
    if console.finds("#refusal"):  # minutes after midnight UTC: not covered yet
        console.submit("#provisional")
    assert console.find("#report svg#disclosures-per-month")
    assert len(console.finds("#report section#business-purpose tbody tr")) >= 1
    console.screenshot("console-2-ccpa-report")

    # 3. a request to know: the subject id goes in the form's body only
    console.nav("Request to know")
    console.fill({"subject_id": SUBJECT, "reason": "case 17-1"})
    console.submit("#answer-request")
    assert console.find("#recorded")
    assert "Categories" in console.find("#report").text
    console.screenshot("console-3-request-to-know")
    console.sign_out()

    # 4. a refused query, then an allowed one
    console.sign_in(Role.investigator)
    console.nav("Investigate")
    console.fill({"sql": "COPY disclosures TO '/tmp/out.csv'", "reason": "case 17-2"})
    console.submit("#run-query", status=400)
    assert console.find("#refusal h2").text == "Refused: nothing ran"
    console.screenshot("console-4-query-refused")
    console.fill(
        {
            "sql": "SELECT recipient_id, count(*) AS disclosures FROM disclosures "
            "GROUP BY ALL ORDER BY disclosures DESC",
            "reason": "case 17-2",
        }
    )
    console.submit("#run-query")
    cells = [td.text for td in console.finds("#result tbody td")]
    assert cells[:2] == ["escalion", str(EVENTS)]
    console.screenshot("console-5-query")
    # and a quarantined message's bytes, with a reason: asked for, approved by an admin,
    # then read once
    console.nav("Quarantine")
    console.find("#quarantined input[name='reason']").send_keys("case 17-3")
    console.submit("#quarantined button")
    assert "Submitted for approval" in console.find("#notice").text
    assert not console.finds("#value-text")
    console.sign_out()
    console.sign_in(Role.admin)
    console.nav("Approvals")
    (approve,) = console.finds("#pending button[id^='approve-']")
    approval = approve.get_attribute("id").removeprefix("approve-")
    console.screenshot("console-6-approvals")
    console.submit(f"#approve-{approval}")
    assert "approved" in console.find("#done").text
    console.sign_out()
    console.sign_in(Role.investigator)
    console.nav("Quarantine")
    console.submit(f"#read-{approval}")
    assert POISON.decode() in console.find("#value-text").text
    assert console.find("#key-text").get_attribute("textContent") == "poison-key"
    console.sign_out()

    # 5. the access log holds those reads
    console.sign_in(Role.auditor)
    console.nav("Access log")
    entries = console.find("#report").text
    assert "report subject" in entries and "case 17-1" in entries
    assert "query page" in entries and "case 17-2" in entries
    assert "quarantine bytes" in entries and "case 17-3" in entries
    assert "console-compliance" in entries and "console-investigator" in entries
    assert "approve quarantine bytes request" in entries
    console.screenshot("console-7-access-log")

    assert all(SUBJECT not in url for url in console.visited)
    assert SUBJECT not in service.log_path.read_text(encoding="utf-8", errors="replace")
