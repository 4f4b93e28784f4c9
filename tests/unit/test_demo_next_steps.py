"""What `make demo` says to do next names people its ledger holds, and its command works.

The demo counts each simulated event under its subject as it is published
(:func:`disclosure_ledger.demo.counted`) and ends with :func:`~disclosure_ledger.demo.
next_steps`. Here the same simulated traffic is ingested through the real pipeline (no
broker: the consumer's :class:`~consumers.pipeline.Ingestor` directly), the closing text
is built the demo's way, and every person it names must have disclosures in the ledger,
as many as it says; the command it prints is run through the CLI and answers for that
person. The README's "After the demo" must name the people the default demo names.

The demo then leaves the ledger service running in the background with a one-time admin
password (:func:`~disclosure_ledger.demo.start_console`); here it is started the demo's
way over the demo-like ledger (its broker unreachable: the service waits for it and
answers meanwhile), the password printed signs in, and `make clean`'s command stops it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import socket
import subprocess
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import build_parser, main
from disclosure_ledger.demo import (
    ADMIN_USER,
    SECRET_FILE_SETTING,
    SUBJECTS_NAMED,
    SubjectRef,
    _admin_password,
    busiest_subjects,
    cli_path,
    console_text,
    counted,
    next_steps,
    start_console,
)
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.background import readyz, stop_service
from disclosure_ledger.service.state_file import read_service_state, state_file
from disclosure_ledger.simulate import simulate
from ledger.checkpoints import generate_key_pair
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from reports.subject import subject_report
from reports.window import report_window
from schemas.codec import EventCodec
from tests.unit.ledger_rows import record_coverage

AS_OF = date(2026, 11, 1)
README = Path(__file__).resolve().parents[2] / "README.md"
MAKEFILE = README.with_name("Makefile")
_NAMED = re.compile(r"^    (member|guest) (\S+): (\d+) disclosures$", re.M)


@pytest.fixture
def demo_like(
    tmp_path: Path, reference: ReferenceData, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, Path, str]:
    """A demo-like ledger in ``tmp_path`` (the working directory, as the demo's is), its
    secret file, and the closing text built the demo's way."""
    monkeypatch.chdir(tmp_path)
    demo_dir = Path(".local/demo")
    demo_dir.mkdir(parents=True)
    secret_file = demo_dir / "subject-secret"
    secret_file.write_text(secrets.token_hex(32))
    ledger_path = demo_dir / "ledger.duckdb"
    start, end = report_window(AS_OF)
    tally: Counter[SubjectRef] = Counter()
    codec = EventCodec()
    messages = [
        SourceMessage("demo", 0, offset, e.subject.id.encode(), codec.encode(e.to_avro()))
        for offset, e in enumerate(counted(simulate(3000, 7, start, end), tally))
    ]
    with (
        Ledger(ledger_path) as ledger,
        SubjectKeyStore(
            demo_dir / "ledger.duckdb.keys.sqlite", secret_file.read_text().encode()
        ) as keys,
    ):
        Ingestor(ledger, keys, reference).ingest(messages)
    # the demo's simulated sources declare, by watermarks, that they published everything
    record_coverage(ledger_path, datetime.combine(AS_OF, time(1, 0)))
    text = next_steps(
        cli=cli_path(),
        ledger_path=ledger_path,
        secret_file=secret_file,
        subjects=busiest_subjects(tally),
        as_of=AS_OF,
    )
    return ledger_path, secret_file, text


def test_the_people_named_are_in_the_ledger_with_as_many_disclosures(
    demo_like: tuple[Path, Path, str],
) -> None:
    ledger_path, secret_file, text = demo_like
    named = _NAMED.findall(text)
    assert len(named) == SUBJECTS_NAMED == len({subject_id for _, subject_id, _ in named})
    assert f"export {SECRET_FILE_SETTING}={secret_file}" in text
    with (
        Ledger(ledger_path, read_only=True) as ledger,
        SubjectKeyStore(
            ledger_path.with_name("ledger.duckdb.keys.sqlite"), secret_file.read_text().encode()
        ) as keys,
    ):
        for kind, subject_id, events in named:
            answer = subject_report(
                ledger, keys, subject_type=kind, subject_id=subject_id, as_of=AS_OF
            )
            assert answer.data_held, subject_id
            assert answer.source.events_counted == int(events) > 0, subject_id


def test_the_command_printed_answers_for_the_first_person(
    demo_like: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, text = demo_like
    command = shlex.split(text.splitlines()[-1])
    setting, tool, *arguments = command
    name, _, value = setting.partition("=")
    assert name == SECRET_FILE_SETTING and Path(value).is_file()
    assert Path(tool).name == "disclosure-ledger" and arguments[:2] == ["report", "subject"]
    first = _NAMED.findall(text)[0][1]
    assert arguments[arguments.index("--subject-id") + 1] == first
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(name, value)
        assert main(arguments) == 0
    answer = capsys.readouterr().out
    assert f"# Personal information disclosed about member {first}" in answer
    disclosed = (
        f"we disclosed the following categories of personal information about member {first}"
    )
    assert disclosed in answer


def test_the_readme_names_the_people_the_default_demo_names() -> None:
    defaults = build_parser().parse_args(["demo"])
    start, end = report_window(AS_OF)
    tally: Counter[SubjectRef] = Counter()
    for _ in counted(simulate(defaults.events, defaults.seed, start, end), tally):
        pass
    busiest = [subject_id for _, subject_id, _ in busiest_subjects(tally)]
    readme = README.read_text(encoding="utf-8")
    after_the_demo = readme.split("## After the demo", 1)[1].split("\n## ", 1)[0]
    for subject_id in busiest:
        assert f"`{subject_id}`" in after_the_demo, (subject_id, busiest)
    assert f"--subject-id {busiest[0]}" in after_the_demo
    assert SECRET_FILE_SETTING in after_the_demo and ".venv/bin/disclosure-ledger" in readme


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _make_clean_stops_the_service(cwd: Path) -> int:
    """Run the ``service stop`` line of ``make clean`` (``make -n`` prints it) in ``cwd``,
    with this project's CLI and no DISCLOSURE_LEDGER_STATE_DIR; its exit status."""
    listed = subprocess.run(
        ["make", "--no-print-directory", "-n", "-f", str(MAKEFILE), "clean"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    ).stdout
    line = next(x for x in listed.splitlines() if " service stop " in x)
    tool, _, arguments = line.lstrip("-").partition(" ")
    assert tool == ".venv/bin/disclosure-ledger", line
    environment = {k: v for k, v in os.environ.items() if k != "DISCLOSURE_LEDGER_STATE_DIR"}
    stopped = subprocess.run(
        f"{shlex.quote(str(cli_path()))} {arguments}",
        shell=True,
        env=environment,
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
    )
    print(stopped.stdout, end="")
    return stopped.returncode


def test_the_console_text_gives_the_address_the_password_once_and_how_to_stop() -> None:
    ledger_path = Path(".local/demo/ledger.duckdb")
    text = console_text(
        url="http://127.0.0.1:8080",
        user="admin",
        password="s3cret-once",
        cli=Path(".venv/bin/disclosure-ledger"),
        ledger_path=ledger_path,
        log_path=Path(".local/demo/service.log"),
    )
    first, *rest = text.splitlines()
    assert (
        first == "console: http://127.0.0.1:8080/ — user admin, password s3cret-once (shown once)"
    )
    assert ".local/demo/service.log" in text
    stop = next(line for line in rest if "service stop" in line)
    assert ".venv/bin/disclosure-ledger service stop --ledger .local/demo/ledger.duckdb" in stop


def test_the_demo_leaves_a_service_running_that_make_clean_stops(
    demo_like: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ledger_path, secret_file, _ = demo_like
    demo_dir = ledger_path.parent
    generate_key_pair(demo_dir / "checkpoint-signing.pem", demo_dir / "checkpoint-public.pem")
    log_path = demo_dir / "service.log"
    try:
        url = start_console(
            listen=f"127.0.0.1:{_free_port()}",
            ledger_path=ledger_path,
            bootstrap=f"127.0.0.1:{_free_port()}",  # no broker: the service waits for one
            topic="demo",
            secret_file=secret_file,
            signing_key=demo_dir / "checkpoint-signing.pem",
            log_path=log_path,
        )
        assert readyz(url) == (200, "ready")
        password = _admin_password(ledger_path)
        assert password is not None and len(password) >= 16
        accounts = AccountStore(default_account_store(ledger_path))
        assert accounts.authenticate(ADMIN_USER, password) is not None
        again = _admin_password(ledger_path)  # a second demo: a new password, shown once
        assert accounts.authenticate(ADMIN_USER, again) is not None
        assert accounts.authenticate(ADMIN_USER, password) is None
        state = read_service_state(ledger_path)
        assert state is not None and state.url == url

        assert main(["service", "status", "--ledger", str(ledger_path)]) == 0
        assert url in capsys.readouterr().out
        # make clean's own command (as make runs it, the state dir at its default)
        assert _make_clean_stops_the_service(ledger_path.parent.parent.parent) == 0
        assert f"service stopped (pid {state.pid}" in capsys.readouterr().out
        assert not state_file(ledger_path).exists()
        assert readyz(url) is None
        last = json.loads(log_path.read_text().splitlines()[-1])  # JSON lines
        assert last["message"] == "stopped; the ledger holds every batch read so far"
        assert main(["service", "status", "--ledger", str(ledger_path)]) == 3
    finally:
        stop_service(ledger_path)


def test_through_the_service_it_shows_how_to_have_every_row_checked(tmp_path: Path) -> None:
    public = tmp_path / "checkpoint-public.pem"

    def served(public_key: Path | None) -> str:
        return next_steps(
            cli=Path("/x/.venv/bin/disclosure-ledger"),
            ledger_path=tmp_path / "ledger.duckdb",
            secret_file=None,
            subjects=[("member", "member-0000001", 12)],
            as_of=AS_OF,
            server="http://127.0.0.1:8080",
            token="dl_x",
            public_key=public_key,
        )

    lines = served(public).splitlines()
    at = next(i for i, line in enumerate(lines) if "proof for every row" in line)
    report, verify = shlex.split(lines[at + 1]), shlex.split(lines[at + 2])
    parsed = build_parser().parse_args(report[1:])
    assert parsed.with_proofs and parsed.format == "json"
    assert parsed.output == Path("answer.json")
    checked = build_parser().parse_args(verify[1:])
    assert verify[1] == "verify-proof" and checked.public_key == public
    assert "verify-proof" not in served(None)
