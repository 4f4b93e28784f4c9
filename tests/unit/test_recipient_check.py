"""Unregistered recipients caught at the source: ``publish`` and the producer library.

Nothing here needs a broker: ``publish_events`` is replaced by a recorder, so the tests see
exactly what would have been sent. tests/integration/test_unregistered_recipients.py runs
the same through a real broker into a real ledger.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from disclosure_ledger.cli import main
from producers import publisher
from producers.publisher import DisclosurePublisher, PublishResult
from producers.recipient_check import RecipientCheck
from reference import ReferenceData, default_reference_directory
from schemas.model import DisclosureEvent
from tests.unit.events import make_event

ROOT = Path(__file__).resolve().parents[2]
ACME = {"id": "acme-analytics", "category": "service_provider"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[DisclosureEvent]:
    """What `publish` hands the producer library, every event reported delivered."""
    handed: list[DisclosureEvent] = []

    def record(
        bootstrap_servers: str, topic: str, events: Iterable[DisclosureEvent], **_: Any
    ) -> PublishResult:
        handed.extend(events)
        return PublishResult(delivered=len(handed))

    monkeypatch.setattr(publisher, "publish_events", record)
    return handed


def _input(tmp_path: Path, *events: DisclosureEvent) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(e.to_json_line() + "\n" for e in events), encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["publish", "--bootstrap-servers", "localhost:1", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_publish_warns_naming_line_id_and_fix_and_still_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sent: list[DisclosureEvent]
) -> None:
    events = [make_event(), make_event(recipient=ACME), make_event(recipient=ACME)]
    source = _input(tmp_path, *events)
    code, out, err = _run(capsys, str(source))
    assert code == 0
    assert sent == events
    warnings = [line for line in err.splitlines() if "unregistered recipient" in line]
    assert [w.split(": ")[1] for w in warnings] == [f"{source}:2", f"{source}:3"]
    registry = default_reference_directory() / "recipients.yaml"
    assert "'acme-analytics'" in warnings[0] and f"add it to {registry}" in warnings[0]
    assert "--reference" in warnings[0]
    assert "3 delivered" in out and "2 to unregistered recipients" in out


def test_publish_strict_refuses_the_whole_input_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sent: list[DisclosureEvent]
) -> None:
    source = _input(tmp_path, make_event(), make_event(recipient=ACME), make_event())
    code, out, err = _run(capsys, "--strict", str(source))
    assert code == 1
    assert sent == []  # not even the lines before or after the refused one
    assert f"refused (--strict): {source}:2: recipient 'acme-analytics'" in err
    assert "nothing sent" in err and "1 line(s) naming unregistered recipients" in err
    assert "delivered" not in out


def test_publish_strict_with_registered_recipients_publishes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sent: list[DisclosureEvent]
) -> None:
    # broadcasters need no registry entry of their own
    events = [make_event(), make_event(recipient={"id": "bc-42", "category": "broadcaster"})]
    code, out, err = _run(capsys, "--strict", str(_input(tmp_path, *events)))
    assert (code, sent, err) == (0, events, "")
    assert "2 delivered" in out


def test_publish_checks_against_the_reference_directory_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sent: list[DisclosureEvent]
) -> None:
    reference = tmp_path / "reference"
    shutil.copytree(default_reference_directory(), reference)
    with (reference / "recipients.yaml").open("a", encoding="utf-8") as registry:
        registry.write(
            "  - id: acme-analytics\n"
            "    legal_name: Acme Analytics GmbH\n"
            "    kind: organisation\n"
            "    address: 1 Example Strasse, 10115 Berlin\n"
            "    country: DE\n"
            "    category: service_provider\n"
            "    role: processor\n"
            "    eea: true\n"
            "    valid_from: 2026-01-01\n"
            '    policy_section: "6.4"\n'
        )
    source = _input(tmp_path, make_event(recipient=ACME))
    assert _run(capsys, "--strict", "--reference", str(reference), str(source))[0] == 0
    assert len(sent) == 1
    # the shipped registry lacks it; an event before its entry is valid is refused too
    early = make_event(recipient=ACME, occurred_at="2025-12-31T23:00:00Z")
    code, _, err = _run(
        capsys, "--strict", "--reference", str(reference), str(_input(tmp_path, early))
    )
    assert code == 1
    assert f"add it to {reference / 'recipients.yaml'}" in err and "(the shipped" not in err


def test_producer_check_warns_once_per_recipient_or_refuses_when_strict(
    reference: ReferenceData, caplog: pytest.LogCaptureFixture
) -> None:
    lenient = RecipientCheck(reference)
    with caplog.at_level(logging.WARNING, logger="producers.recipient_check"):
        assert lenient.refusal(make_event()) is None
        assert lenient.refusal(make_event(recipient=ACME)) is None
        assert lenient.refusal(make_event(recipient=ACME)) is None
    (warning,) = caplog.records
    assert "'acme-analytics'" in warning.getMessage() and "recipients.yaml" in warning.getMessage()
    strict = RecipientCheck(reference, strict=True)
    assert strict.refusal(make_event()) is None
    refusal = strict.refusal(make_event(recipient=ACME))
    assert refusal is not None and "not sent" in refusal and "'acme-analytics'" in refusal


def test_producer_strict_needs_a_registry() -> None:
    with pytest.raises(ValueError, match="recipients="):
        DisclosurePublisher("localhost:1", strict=True, timeout=0.5)


def test_the_producer_library_imports_no_reference_data() -> None:
    """Producers need only schemas/; the registry is opt-in, passed in by the caller."""
    code = (
        "import sys, producers.publisher, producers.recipient_check; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('reference', 'ledger')))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"
