"""``disclosure-ledger users``: accounts and tokens from the command line, and ``serve``'s
refusal of an address it may not listen on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role

PASSWORD = "correct horse battery staple"


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return tmp_path / "ledger.duckdb"


def run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def store(ledger: Path) -> AccountStore:
    return AccountStore(default_account_store(ledger))


def test_add_reads_the_password_from_stdin_and_the_user_can_sign_in(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run(
        capsys, monkeypatch, "users", "add", "alice", "--role", "compliance",
        "--password-stdin", "--ledger", str(ledger), stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert status == 0
    assert PASSWORD not in out + err
    assert "created the account store" in err
    actor = store(ledger).authenticate("alice", PASSWORD)
    assert actor is not None
    assert actor.role == Role.compliance


def test_generate_password_prints_it_once_on_stdout_alone(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run(
        capsys, monkeypatch, "users", "add", "admin", "--role", "admin",
        "--generate-password", "--ledger", str(ledger),
    )  # fmt: skip
    assert status == 0
    password = out.strip()
    assert len(out.splitlines()) == 1
    assert len(password) >= 20
    assert password not in err
    assert store(ledger).authenticate("admin", password) is not None


def test_without_a_terminal_or_stdin_option_the_password_is_not_guessed(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _out, err = run(
        capsys, monkeypatch, "users", "add", "alice", "--role", "admin", "--ledger", str(ledger)
    )
    assert status == 1
    assert "--password-stdin" in err
    assert store(ledger).users() == []


@pytest.mark.parametrize(
    ("argv", "stdin", "says"),
    [
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "short\n", "too short"),
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], "", "held no password"),
        (["users", "disable", "nobody"], "", "no user 'nobody'"),
        (["users", "reset-password", "nobody", "--generate-password"], "", "no user 'nobody'"),
        (["users", "token", "revoke", "abc"], "", "no live token 'abc'"),
    ],
)
def test_bad_input_is_named_with_its_fix(
    ledger: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: str,
    says: str,
) -> None:
    store(ledger).add_user("someone", Role.admin, PASSWORD)  # the store exists
    status, out, err = run(capsys, monkeypatch, *argv, "--ledger", str(ledger), stdin=stdin)
    assert status == 1
    assert says in err
    assert out == ""


def test_an_unknown_role_lists_the_roles(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as done:
        run(capsys, monkeypatch, "users", "add", "a", "--role", "boss", "--ledger", str(ledger))
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'boss'" in err
    assert "compliance" in err


def test_listing_needs_an_existing_store_and_creates_none(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _out, err = run(capsys, monkeypatch, "users", "list", "--ledger", str(ledger))
    assert status == 1
    assert "no account store" in err
    assert not default_account_store(ledger).exists()


def test_disable_and_reset_password_end_the_users_sessions(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = store(ledger)
    accounts.add_user("alice", Role.investigator, PASSWORD)
    actor = accounts.authenticate("alice", PASSWORD)
    assert actor is not None
    session_id, _ = accounts.open_session(actor)
    status, _out, _err = run(
        capsys, monkeypatch, "users", "reset-password", "alice", "--password-stdin",
        "--ledger", str(ledger), stdin="another long pass phrase\n",
    )  # fmt: skip
    assert status == 0
    assert accounts.session_actor(session_id) is None
    assert accounts.authenticate("alice", PASSWORD) is None

    session_id, _ = accounts.open_session(actor)
    assert run(capsys, monkeypatch, "users", "disable", "alice", "--ledger", str(ledger))[0] == 0
    assert accounts.session_actor(session_id) is None
    assert accounts.authenticate("alice", "another long pass phrase") is None
    _status, out, _err = run(capsys, monkeypatch, "users", "list", "--ledger", str(ledger))
    assert "disabled" in out


def test_a_token_is_printed_once_and_listed_without_its_secret(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run(
        capsys, monkeypatch, "users", "token", "issue", "--role", "auditor",
        "--label", "nightly verify", "--ledger", str(ledger),
    )  # fmt: skip
    assert status == 0
    token = out.strip()
    assert token.startswith("dl_")
    assert token not in err
    actor = store(ledger).token_actor(token)
    assert actor is not None
    assert actor.role == Role.auditor

    _status, listing, _err = run(capsys, monkeypatch, "users", "tokens", "--ledger", str(ledger))
    token_id = token.split("_")[1]
    assert token_id in listing
    assert "nightly verify" in listing
    assert token not in listing

    assert (
        run(capsys, monkeypatch, "users", "token", "revoke", token_id, "--ledger", str(ledger))[0]
        == 0
    )
    assert store(ledger).token_actor(token) is None


# -- serve: where it may listen ---------------------------------------------------------


@pytest.mark.parametrize("address", ["0.0.0.0:18140", "192.0.2.7:18140", "[::]:18140"])
def test_serve_refuses_a_non_loopback_address_without_tls(
    ledger: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    status, _out, err = run(
        capsys, monkeypatch, "serve", "--ledger", str(ledger), "--no-ingest", "--listen", address
    )
    assert status == 1
    assert "is not a loopback address" in err
    assert "--tls-cert and --tls-key, or --insecure-http" in err
    assert not ledger.exists()


def test_serve_refuses_a_certificate_it_could_not_serve(
    ledger: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    base = ["serve", "--ledger", str(ledger), "--no-ingest", "--listen", "0.0.0.0:18141"]
    status, _out, err = run(capsys, monkeypatch, *base, "--tls-cert", str(cert))
    assert (status, "give both --tls-cert and --tls-key" in err) == (1, True)
    missing = tmp_path / "missing.pem"
    status, _out, err = run(
        capsys, monkeypatch, *base, "--tls-cert", str(missing), "--tls-key", str(key)
    )
    assert (status, f"--tls-cert {missing}: no such file" in err) == (1, True)
    status, _out, err = run(
        capsys, monkeypatch, *base, "--tls-cert", str(cert), "--tls-key", str(key)
    )
    assert (status, "cannot serve TLS" in err) == (1, True)
    assert not ledger.exists()


def test_serve_says_at_start_when_nobody_can_sign_in(
    ledger: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from disclosure_ledger.commands.serve import _say_if_nobody_can_sign_in

    _say_if_nobody_can_sign_in(ledger)
    assert "nobody can sign in" in caplog.text
    assert "users add NAME --role admin" in caplog.text
    caplog.clear()
    store(ledger).add_user("alice", Role.auditor, PASSWORD)
    _say_if_nobody_can_sign_in(ledger)
    assert "nobody can sign in" not in caplog.text
