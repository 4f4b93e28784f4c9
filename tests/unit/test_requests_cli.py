"""``requests ...`` on a ledger file, end to end through the CLI: open, list (overdue,
due within), verify, extend, answer with a hashed document, ``report subject --request``
answering an open entry, and ``erase-subject`` unlinking the person's requests."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from reports.request_log import default_request_log
from tests.unit.test_reports_cli import SUBJECT, ledger_file

__all__ = ["ledger_file"]  # the fixture, shared with the report commands' tests


def _opened(ledger: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["requests", "open", "--ledger", str(ledger), "--subject-id", SUBJECT[1], *argv])
    assert code == 0
    out = capsys.readouterr().out
    return out.split()[1]


def test_overdue_and_due_soon_requests_are_listed(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    late = _opened(
        ledger_file, capsys, "--kind", "know", "--law", "ccpa", "--received-on", "2026-01-10"
    )  # due 2026-02-24
    soon = _opened(
        ledger_file, capsys, "--kind", "delete", "--law", "gdpr", "--received-on", "2026-02-27"
    )  # due 2026-03-27
    listing = ["requests", "list", "--ledger", str(ledger_file), "--as-of", "2026-03-20"]
    assert main([*listing, "--overdue"]) == 0
    out = capsys.readouterr().out
    assert late in out and soon not in out and "OVERDUE by 24 day(s)" in out
    assert main([*listing, "--due-within", "7", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [e["request_id"] for e in shown["entries"]] == [late, soon]
    assert main([*listing, "--due-within", "6", "--format", "json"]) == 0
    assert [e["request_id"] for e in json.loads(capsys.readouterr().out)["entries"]] == [late]


def test_a_request_answered_by_report_subject_records_its_hash(
    ledger_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request_id = _opened(
        ledger_file, capsys, "--kind", "know", "--law", "gdpr", "--received-on", "2026-02-20"
    )
    report = [
        "report",
        "subject",
        "--ledger",
        str(ledger_file),
        "--as-of",
        "2026-03-01",
        "--subject-id",
        SUBJECT[1],
        "--request",
        request_id,
        "--format",
        "json",
    ]
    assert main(report) == 1
    assert "identity is verified" in capsys.readouterr().err
    assert (
        main(
            [
                "requests",
                "verify-identity",
                request_id,
                "--ledger",
                str(ledger_file),
                "--method",
                "account login",
                "--by",
                "dave",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "requests",
                "extend",
                request_id,
                "--ledger",
                str(ledger_file),
                "--notice-sent-on",
                "2026-03-01",
                "--reason",
                "archives",
            ]
        )
        == 0
    )
    assert "extended deadline: 2026-05-20" in capsys.readouterr().out
    target = tmp_path / "answer.json"
    assert main([*report, "--output", str(target)]) == 0
    capsys.readouterr()
    assert (
        main(["requests", "show", request_id, "--ledger", str(ledger_file), "--format", "json"])
        == 0
    )
    entry = json.loads(capsys.readouterr().out)
    assert entry["status"] == "answered" and entry["response"] == "complied"
    assert entry["answer_sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert entry["answer_stored_at"] == target.resolve().as_uri()
    assert json.loads(target.read_text())["request"]["request_id"] == request_id
    assert (
        main(
            [
                "report",
                "requests",
                "--ledger",
                str(ledger_file),
                "--year",
                "2026",
                "--format",
                "json",
            ]
        )
        == 0
    )
    kinds = {k["kind"]: k for k in json.loads(capsys.readouterr().out)["kinds"]}
    assert kinds["know"]["received"] == kinds["know"]["complied_in_whole"] == 1


def test_erase_subject_unlinks_the_persons_requests(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _opened(ledger_file, capsys, "--kind", "delete", "--law", "ccpa")
    assert (
        main(
            [
                "report",
                "subject",
                "--ledger",
                str(ledger_file),
                "--as-of",
                "2026-03-01",
                "--subject-id",
                SUBJECT[1],
                "--received-on",
                "2026-02-20",
            ]
        )
        == 0
    )
    db = sqlite3.connect(default_request_log(ledger_file))
    before = {
        row[0]
        for table in ("requests", "register")
        for row in db.execute(f"SELECT requester FROM {table}")
    }
    db.close()
    assert len(before) == 1  # one person, one token
    erase = [
        "erase-subject",
        "--ledger",
        str(ledger_file),
        "--subject-type",
        SUBJECT[0],
        "--subject-id",
        SUBJECT[1],
        "--actor",
        "dpo",
        "--approved-by",
        "cpo",
    ]
    assert main(erase) == 0
    db = sqlite3.connect(default_request_log(ledger_file))
    after = [
        row[0]
        for table in ("requests", "register")
        for row in db.execute(f"SELECT requester FROM {table}")
    ]
    db.close()
    assert len(after) == 2 and not before & set(after)
