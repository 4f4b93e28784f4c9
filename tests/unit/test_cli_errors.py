"""Bad input on every command gets a clear error naming the input and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from tests.unit.events import make_event


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_publish_reports_invalid_lines_with_number_and_field_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_event().to_json_line()
    naive = good.replace('"2026-03-01T12:00:00.000Z"', '"2026-03-01T12:00:00"')
    assert naive != good
    source = tmp_path / "events.jsonl"
    source.write_text(naive + "\n" + '{"event_id": "x"}\n' + "not json\n")
    code, out, err = _run(capsys, "publish", str(source))
    assert code == 1
    assert f"{source}:1: field occurred_at" in err and "offset" in err
    assert f"{source}:2: field" in err
    assert f"{source}:3:" in err
    assert "0 delivered" in out and "3 invalid line(s) not sent" in out


def test_publish_of_a_missing_file_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "publish", "/nonexistent/events.jsonl")
    assert code == 1 and "/nonexistent/events.jsonl" in err


def test_consume_without_a_subject_secret_says_how_to_set_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", raising=False)
    monkeypatch.delenv("DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE", raising=False)
    code, _, err = _run(
        capsys,
        "consume",
        "--ledger",
        str(tmp_path / "l.duckdb"),
        "--bootstrap-servers",
        "127.0.0.1:1",
    )
    assert code == 1 and "DISCLOSURE_LEDGER_SUBJECT_SECRET" in err


@pytest.mark.parametrize("command", [["verify"], ["report", "ccpa", "--as-of", "2026-01-01"]])
def test_commands_on_a_missing_ledger_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    missing = tmp_path / "missing.duckdb"
    code, _, err = _run(capsys, *command, "--ledger", str(missing))
    assert code == 1 and str(missing) in err and "does not exist" in err


def test_a_file_that_is_not_a_ledger_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(b"this is not a database")
    code, _, err = _run(capsys, "verify", "--ledger", str(bogus))
    assert code == 1 and str(bogus) in err


def test_bad_dates_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "ccpa", "--ledger", "x", "--as-of", "last tuesday"])
    assert exited.value.code == 2
    assert "'last tuesday' is not a date" in capsys.readouterr().err


def test_simulate_with_start_after_end_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys,
        "simulate",
        "--events",
        "5",
        "--start",
        "2026-02-01",
        "--end",
        "2026-01-01",
        "--output",
        str(tmp_path / "x.jsonl"),
    )
    assert code == 1 and "--start 2026-02-01 must be before --end 2026-01-01" in err


def test_simulate_to_a_file_is_deterministic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in paths:
        code, _, _ = _run(
            capsys,
            "simulate",
            "--events",
            "50",
            "--seed",
            "3",
            "--start",
            "2026-01-01",
            "--end",
            "2026-02-01",
            "--output",
            str(path),
        )
        assert code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert len(paths[0].read_text().splitlines()) == 50


def test_query_refusal_is_an_error_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.store import Ledger

    path = tmp_path / "l.duckdb"
    Ledger(path).close()
    code, _, err = _run(capsys, "query", "--ledger", str(path), "DELETE FROM disclosures")
    assert code == 1 and "error:" in err


def test_reference_check_lists_problems_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "reference", "check", "--reference", str(tmp_path))
    assert code == 1 and err.strip()


def test_reference_check_of_the_shipped_data_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "reference", "check")
    assert code == 0 and "0 problem(s)" in out


def test_quarantine_show_opens_sealed_messages_with_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from consumers.pipeline import Ingestor, SourceMessage
    from ledger.pseudonyms import SubjectKeyStore
    from ledger.store import Ledger
    from reference import load_reference

    secret = "q" * 40
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secret)
    path = tmp_path / "l.duckdb"
    with Ledger(path) as ledger, SubjectKeyStore(tmp_path / "k.sqlite", secret.encode()) as keys:
        Ingestor(ledger, keys, load_reference()).ingest(
            [SourceMessage("t", 0, 0, b"member-77", b"\xc3\x01broken")]
        )
    monkeypatch.setattr("getpass.getuser", lambda: "analyst")
    store = ("--key-store", str(tmp_path / "k.sqlite"))
    code, _, err = _run(capsys, "quarantine", "show", "--ledger", str(path), *store)
    assert code == 1 and "needs --approved-by NAME: the second person, not analyst" in err
    code, _, err = _run(
        capsys, "quarantine", "show", "--ledger", str(path), *store, "--approved-by", "analyst"
    )
    assert code == 1 and "analyst cannot approve their own read" in err
    show = ("quarantine", "show", "--ledger", str(path), *store, "--approved-by", "lead")
    code, out, _ = _run(capsys, *show)
    assert code == 0
    assert "t/0 offset 0" in out and "key: member-77" in out
    assert b"\xc3\x01broken".hex() in out and "1 quarantined message(s)" in out
    assert "read by analyst, approved by lead" in out
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", "w" * 40)
    code, _, err = _run(capsys, *show)
    assert code == 1 and "secret" in err
