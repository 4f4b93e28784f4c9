"""The report and query commands, end to end through the CLI (no broker needed)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from disclosure_ledger.cli import default_key_store, main
from ledger.pseudonyms import SubjectKeyStore
from reference import ReferenceData
from reports.request_log import default_request_log
from tests.unit.golden.fixed_ledger import store_reference
from tests.unit.ledger_rows import disclosure_row, write_ledger

SUBJECT = ("member", "member-0000042")
KINDS = ("ccpa", "conformance", "transfers", "subject", "recipients")


@pytest.fixture
def ledger_file(tmp_path: Path, subject_secret_env: str, reference: ReferenceData) -> Path:
    path = tmp_path / "ledger.duckdb"
    with SubjectKeyStore(default_key_store(path), subject_secret_env.encode()) as keys:
        pseudonym = keys.pseudonyms([SUBJECT])[0]
    v = reference.version
    write_ledger(
        path,
        [
            disclosure_row(
                subject_pseudonym=pseudonym, reference_version=v, occurred_at=datetime(2026, 2, 1)
            ),
            disclosure_row(
                recipient_id="docler-la",
                recipient_category="group_entity",
                subject_pseudonym=pseudonym,
                ccpa_letters=["A"],
                reference_version=v,
                occurred_at=datetime(2026, 2, 2),
            ),
        ],
    )
    store_reference(path, reference)
    return path


def _args(kind: str, ledger: Path) -> list[str]:
    args = ["report", kind, "--ledger", str(ledger), "--as-of", "2026-03-01"]
    if kind in {"subject", "recipients"}:
        args += ["--subject-id", SUBJECT[1], "--received-on", "2026-02-20"]
    return args


@pytest.mark.parametrize("fmt", ["json", "md", "html", "csv"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_report_in_every_format(
    ledger_file: Path, tmp_path: Path, kind: str, fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out" / f"{kind}.{fmt}"
    assert main([*_args(kind, ledger_file), "--format", fmt, "--output", str(target)]) == 0
    assert f"{kind} report written to {target}" in capsys.readouterr().out
    text = target.read_text(encoding="utf-8")
    if fmt == "json":
        assert json.loads(text)["report"] == f"{kind}-report/1"
    assert "2026-03-01" in text


def test_requests_are_logged_and_reported(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        assert main([*_args("subject", ledger_file), "--received-via", "email"]) == 0
    assert "This is request number 3" in capsys.readouterr().out
    assert default_request_log(ledger_file).exists()
    assert main(["report", "requests", "--ledger", str(ledger_file), "--year", "2026"]) == 0
    out = capsys.readouterr().out
    assert "In 2026 we received 3 requests to know" in out
    assert main(["report", "requests", "--ledger", str(ledger_file), "--year", "2025"]) == 0
    assert "In 2025 we received 0 requests to know" in capsys.readouterr().out


def test_the_requests_report_needs_a_log(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "requests", "--ledger", str(ledger_file), "--year", "2026"]) == 1
    assert "no request log at" in capsys.readouterr().err


def test_query_presets(
    ledger_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = str(ledger_file)
    assert main(["query", "--ledger", ledger, "timeline", "--subject-id", SUBJECT[1]]) == 0
    assert "(2 rows)" in capsys.readouterr().out
    assert main(["query", "--ledger", ledger, "timeline", "--subject-id", "nobody"]) == 0
    captured = capsys.readouterr()
    assert "(0 rows)" in captured.out and "no data held" in captured.err
    target = tmp_path / "r.parquet"
    assert (
        main(
            [
                "query",
                "--ledger",
                ledger,
                "recipient",
                "--recipient-id",
                "docler-la",
                "--from",
                "2026-01-01",
                "--to",
                "2026-03-01",
                "--format",
                "parquet",
                "--output",
                str(target),
            ]
        )
        == 0
    )
    assert pq.read_table(target).num_rows == 1
    assert main(["query", "--ledger", ledger, "volume", "--by", "day", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["query", "--ledger", ledger, "recipient"]) == 1
    assert "needs --recipient-id" in capsys.readouterr().err


@pytest.mark.parametrize("kind", [*KINDS, "requests"])
def test_every_report_kind_has_help(kind: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["report", kind, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "--ledger" in out and "--format" in out


def test_a_request_can_be_recorded_as_denied(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [*_args("subject", ledger_file), "--deny", "identity not verified", "--format", "json"]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["report"] == "request-denial/1"
    assert data["request"]["response"] == "denied"
    assert main(["report", "requests", "--ledger", str(ledger_file), "--year", "2026"]) == 0
    assert "and denied 1" in capsys.readouterr().out
