"""A wrong subject secret through the CLI: refused, naming the key store, nothing recorded."""

from __future__ import annotations

import secrets
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from disclosure_ledger.cli import default_key_store, main
from ledger.pseudonyms import SubjectKeyStore
from reference import ReferenceData
from reports.request_log import default_request_log
from tests.unit.golden.fixed_ledger import store_reference
from tests.unit.ledger_rows import disclosure_row, write_ledger

SUBJECT = ("member", "member-0000136")
SECRET_VARIABLES = ("DISCLOSURE_LEDGER_SUBJECT_SECRET", "DISCLOSURE_LEDGER_SUBJECT_SECRET_FILE")

REQUESTS = {
    "subject": ["report", "subject"],
    "recipients": ["report", "recipients"],
    "denied": ["report", "subject", "--deny", "identity not verified"],
}


@pytest.fixture
def ledger_file(tmp_path: Path, subject_secret_env: str, reference: ReferenceData) -> Path:
    """A ledger with two disclosures about SUBJECT, keyed under the environment's secret."""
    path = tmp_path / "ledger.duckdb"
    with SubjectKeyStore(default_key_store(path), subject_secret_env.encode()) as keys:
        pseudonym = keys.pseudonyms([SUBJECT])[0]
    rows = [
        disclosure_row(
            subject_pseudonym=pseudonym,
            reference_version=reference.version,
            occurred_at=datetime(2026, 2, day),
        )
        for day in (1, 2)
    ]
    write_ledger(path, rows)
    store_reference(path, reference)
    return path


def _request(kind: str, ledger: Path) -> list[str]:
    return [
        *REQUESTS[kind],
        "--ledger",
        str(ledger),
        "--as-of",
        "2026-03-01",
        "--subject-id",
        SUBJECT[1],
        "--received-on",
        "2026-02-20",
    ]


def _another_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secrets.token_hex(32))


def _refused(code: int, err: str, key_store: Path) -> None:
    assert code == 1
    assert str(key_store) in err
    assert "does not match the one" in err and "created with" in err
    assert "no data held" not in err


def _erasures(ledger: Path) -> int:
    with duckdb.connect(str(ledger), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "erasures" not in tables:
            return 0
        return int(con.execute("SELECT count(*) FROM erasures").fetchall()[0][0])


@pytest.mark.parametrize("kind", list(REQUESTS))
def test_a_request_under_another_secret_is_refused_and_not_logged(
    ledger_file: Path,
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_store, request_log = default_key_store(ledger_file), default_request_log(ledger_file)
    key_store_bytes = key_store.read_bytes()
    _another_secret(monkeypatch)
    code = main(_request(kind, ledger_file))
    _refused(code, capsys.readouterr().err, key_store)
    assert not request_log.exists()
    assert key_store.read_bytes() == key_store_bytes


def test_a_logged_request_stays_the_only_one_after_a_wrong_secret(
    ledger_file: Path,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(_request("subject", ledger_file)) == 0
    assert "we did not disclose" not in capsys.readouterr().out
    key_store, request_log = default_key_store(ledger_file), default_request_log(ledger_file)
    before = (key_store.read_bytes(), request_log.read_bytes())
    _another_secret(monkeypatch)
    _refused(main(_request("subject", ledger_file)), capsys.readouterr().err, key_store)
    assert (key_store.read_bytes(), request_log.read_bytes()) == before
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", subject_secret_env)
    assert main(["report", "requests", "--ledger", str(ledger_file), "--year", "2026"]) == 0
    assert "In 2026 we received 1 request to know" in capsys.readouterr().out


def test_a_timeline_under_another_secret_is_refused_and_writes_no_output(
    ledger_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / "timeline.csv"
    args = ["query", "--ledger", str(ledger_file), "timeline", "--subject-id", SUBJECT[1]]
    _another_secret(monkeypatch)
    code = main([*args, "--format", "csv", "--output", str(target)])
    _refused(code, capsys.readouterr().err, default_key_store(ledger_file))
    assert not target.exists()


def test_an_erasure_under_another_secret_is_refused_and_erases_nothing(
    ledger_file: Path,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_store = default_key_store(ledger_file)
    key_store_bytes = key_store.read_bytes()
    args = ["erase-subject", "--ledger", str(ledger_file), "--subject-type", SUBJECT[0]]
    args += ["--subject-id", SUBJECT[1], "--actor", "dpo", "--approved-by", "cpo"]
    _another_secret(monkeypatch)
    _refused(main(args), capsys.readouterr().err, key_store)
    assert key_store.read_bytes() == key_store_bytes
    assert _erasures(ledger_file) == 0
    # the key is still there for the right secret to erase
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", subject_secret_env)
    assert main(args) == 0
    assert "2 ledger row(s)" in capsys.readouterr().out
    assert _erasures(ledger_file) == 1


@pytest.mark.parametrize(
    "command",
    [
        _request("subject", Path("LEDGER")),
        [
            "erase-subject",
            *("--ledger", "LEDGER", "--subject-type", "member", "--subject-id", "m"),
            *("--approved-by", "cpo"),
        ],
        ["query", "--ledger", "LEDGER", "timeline", "--subject-id", "m"],
    ],
)
def test_a_missing_secret_for_an_existing_ledger_asks_for_its_own(
    ledger_file: Path,
    command: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    code = main([str(ledger_file) if part == "LEDGER" else part for part in command])
    err = capsys.readouterr().err
    assert code == 1
    assert "DISCLOSURE_LEDGER_SUBJECT_SECRET" in err and "created with" in err
    assert str(default_key_store(ledger_file)) in err
    assert "token_hex" not in err and "never generate a new one" in err.lower()


def test_a_missing_secret_for_a_new_ledger_may_suggest_generating_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    new = tmp_path / "new.duckdb"
    code = main(["consume", "--ledger", str(new), "--bootstrap-servers", "127.0.0.1:1"])
    assert code == 1 and "token_hex" in capsys.readouterr().err
    assert not new.exists()


def test_a_request_against_a_missing_key_store_names_it_instead_of_no_data(
    ledger_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "no-such.keys.sqlite"
    code = main([*_request("subject", ledger_file), "--key-store", str(elsewhere)])
    err = capsys.readouterr().err
    assert code == 1 and f"no subject key store at {elsewhere}" in err
    assert not elsewhere.exists() and not default_request_log(ledger_file).exists()


def test_the_demo_checks_its_secret_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # never reached
    key_store = tmp_path / "demo" / "ledger.duckdb.keys.sqlite"
    key_store.parent.mkdir()
    with SubjectKeyStore(key_store, secrets.token_hex(32).encode()) as keys:
        keys.pseudonyms([SUBJECT])
    key_store_bytes = key_store.read_bytes()
    _another_secret(monkeypatch)
    _refused(main(["demo", "--out", str(tmp_path / "out")]), capsys.readouterr().err, key_store)
    # without the variable, a lost secret file is not replaced by a new secret either
    monkeypatch.delenv("DISCLOSURE_LEDGER_SUBJECT_SECRET")
    assert main(["demo", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(key_store) in err and "created with" in err
    assert not (tmp_path / "demo" / "subject-secret").exists()
    assert key_store.read_bytes() == key_store_bytes
    assert not (tmp_path / "out").exists()


def test_an_erasure_unlinks_the_request_logs_watch_of_earlier_answers(
    ledger_file: Path, subject_secret_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from reports.request_log import RequestLog

    assert main(_request("subject", ledger_file)) == 0
    log_path = default_request_log(ledger_file)
    with RequestLog(log_path, subject_secret_env.encode()) as log:
        assert len(log.watches()) == 1  # the answer is watched for late events
    capsys.readouterr()
    args = ["erase-subject", "--ledger", str(ledger_file), "--subject-type", SUBJECT[0]]
    assert main([*args, "--subject-id", SUBJECT[1], "--actor", "dpo", "--approved-by", "cpo"]) == 0
    assert "no longer links 1 earlier answer(s)" in capsys.readouterr().out
    with RequestLog(log_path, subject_secret_env.encode()) as log:
        assert log.watches() == []
        assert len(log.entries(date(2026, 1, 1), date(2027, 1, 1))) == 1  # kept (11 CCR 7101)
