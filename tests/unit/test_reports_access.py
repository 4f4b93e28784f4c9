"""``report access``: the access log's entries of a window, in md, json, csv (and html),
through the library and the CLI; pseudonyms shown as they are; a bad window refused."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from disclosure_ledger.cli import main
from ledger.access_log import AccessEntry, AccessLog
from ledger.store import Ledger
from reports.access import access_report, render_access
from reports.errors import ReportError

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
PSEUDONYM = "a3" * 16


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.duckdb"
    log = AccessLog()
    with Ledger(path) as ledger:
        log.append(
            ledger.con,
            AccessEntry(
                "user-compliance",
                "compliance",
                "report subject",
                "CASE-1",
                12,
                subject_pseudonym=PSEUDONYM,
                detail="as_of=2026-06-01 format=json",
            ),
        )
        log.append(
            ledger.con,
            AccessEntry(
                "user-investigator",
                "investigator",
                "query",
                "INC-7, line two",
                3,
                query_text="SELECT recipient_id FROM disclosures LIMIT 3",
            ),
        )
    return path


def _report(path: Path, fmt: str) -> str:
    with Ledger(path, read_only=True) as ledger:
        since = datetime.now(UTC) - timedelta(hours=1)
        return render_access(access_report(ledger, since=since), fmt)


def test_json_lists_every_entry_with_the_log_head_and_validates(ledger_file: Path) -> None:
    document = json.loads(_report(ledger_file, "json"))
    schema = json.loads((SCHEMAS / "access-report-1.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["entries_counted"] == 2
    assert [e["seq"] for e in document["entries"]] == [1, 2]
    first, second = document["entries"]
    assert (first["actor"], first["reason"], first["subject_pseudonym"]) == (
        "user-compliance",
        "CASE-1",
        PSEUDONYM,
    )
    assert second["query_text"] == "SELECT recipient_id FROM disclosures LIMIT 3"
    assert document["access_log"] == {"length": 2, "head_chain_hash": second["chain_hash"]}


def test_csv_has_a_row_per_entry_after_its_preamble(ledger_file: Path) -> None:
    text = _report(ledger_file, "csv")
    body = [line for line in text.splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    assert [(r["seq"], r["subject_pseudonym"], r["reason"]) for r in rows] == [
        ("1", PSEUDONYM, "CASE-1"),
        ("2", "", "INC-7, line two"),
    ]
    assert "# access_log_length: 2" in text


def test_markdown_shows_the_pseudonym_and_the_reason(ledger_file: Path) -> None:
    text = _report(ledger_file, "md")
    assert PSEUDONYM in text and "CASE-1" in text and "2 reads of personal data" in text


def test_the_window_selects_entries(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        later = access_report(
            ledger,
            since=datetime.now(UTC) + timedelta(hours=1),
            until=datetime.now(UTC) + timedelta(hours=2),
        )
        earlier = access_report(ledger, since=datetime(2020, 1, 1), until=datetime(2021, 1, 1))
    assert later.entries == () and earlier.entries == ()
    assert later.log_length == 2  # the head is the whole log's
    assert "No read of personal data" in render_access(earlier, "md")


def test_a_window_that_ends_before_it_starts_is_refused(ledger_file: Path) -> None:
    with (
        Ledger(ledger_file, read_only=True) as ledger,
        pytest.raises(ReportError, match="must be before --until"),
    ):
        access_report(ledger, since=datetime(2026, 2, 1), until=datetime(2026, 1, 1))


@pytest.mark.parametrize("fmt", ["md", "json", "csv", "html"])
def test_the_cli_writes_the_report(
    ledger_file: Path, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["report", "access", "--ledger", str(ledger_file), "--since", "2020-01-01", "--format", fmt]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert PSEUDONYM in out and "INC-7" in out
