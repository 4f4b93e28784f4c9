"""The CLI through a real ``disclosure-ledger serve --no-ingest`` process (``--server``):
the same output and exit status as the same command on a copy of the ledger file; clear
errors for a wrong token and an unreachable service; and, with the file held by the
service, the error that names the service's address.

No broker is needed (``--no-ingest``); marked ``integration`` because it starts a process.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.cli import main
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.integration.reliability_support import CLI
from tests.service.conftest import TOPIC, build_ledger

pytestmark = pytest.mark.integration

PORTS = range(18100, 18120)
"""This test's ports (the service's listen address)."""
COMPLETE_THROUGH = datetime(2026, 6, 1)
"""The ledger is complete through here: a window ending later is refused (exit 3)."""
_TIMES_OF_TODAY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def stable(text: str, *paths: Path) -> str:
    """Without what differs between two runs: times of today, request ids, file names."""
    today = datetime.now(UTC).date().isoformat()
    text = _TIMES_OF_TODAY.sub(lambda m: "<now>" if m[0].startswith(today) else m[0], text)
    text = _UUID.sub("<id>", text)
    for path in paths:
        text = text.replace(str(path), "<ledger>")
    return text


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.fail(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@dataclass
class Served:
    direct: Path  # a copy of the ledger, read as a file
    served: Path  # the ledger the service holds
    url: str
    tokens: dict[Role, str]
    process: subprocess.Popen[bytes]


def _copy_ledger(source: Path, target: Path) -> Path:
    for suffix in ("", ".keys.sqlite"):
        shutil.copy(source.with_name(source.name + suffix), target.with_name(target.name + suffix))
    return target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("cli-server")
    original = build_ledger(root / "original.duckdb", reference, complete_through=COMPLETE_THROUGH)
    with (
        Ledger(original) as ledger,
        SubjectKeyStore(original.with_name(original.name + ".keys.sqlite"), TEST_SECRET) as keys,
    ):
        Ingestor(ledger, keys, reference).ingest([SourceMessage(TOPIC, 0, 20, b"k-1", b"\x00bad")])
    direct = _copy_ledger(original, root / "direct.duckdb")
    path = _copy_ledger(original, root / "served.duckdb")
    accounts = AccountStore(default_account_store(path))
    tokens = {
        role: accounts.issue_token(role, label="cli test", created_by="test").token for role in Role
    }
    port = free_port()
    log = (root / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(CLI), "serve", "--ledger", str(path), "--no-ingest", "--listen", f"127.0.0.1:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": TEST_SECRET.decode()},
    )
    # Not in LIVE_PROCESSES: that list is emptied after every test, and this service
    # serves the whole module; the finally below stops it.
    try:
        yield _started(process, root, path, direct, tokens, port)
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


def _started(
    process: subprocess.Popen[bytes],
    root: Path,
    path: Path,
    direct: Path,
    tokens: dict[Role, str],
    port: int,
) -> Served:
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx2.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the service did not start: {(root / 'serve.log').read_text()}")
        time.sleep(0.2)
    return Served(direct, path, url, tokens, process)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", TEST_SECRET.decode())
    monkeypatch.delenv("DISCLOSURE_LEDGER_SERVER", raising=False)
    monkeypatch.delenv("DISCLOSURE_LEDGER_TOKEN", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def both(
    served: Served,
    capsys: pytest.CaptureFixture[str],
    role: Role,
    *argv: str,
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """The command on the file copy, then through the service with a token of ``role``."""
    direct = run(capsys, *argv, "--ledger", str(served.direct))
    through = run(capsys, *argv, "--server", served.url, "--token", served.tokens[role])
    return direct, through


def assert_same(
    served: Served, direct: tuple[int, str, str], through: tuple[int, str, str]
) -> None:
    assert through[0] == direct[0], (direct, through)
    paths = (served.direct, served.served)
    assert stable(through[1], *paths) == stable(direct[1], *paths)


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "ccpa", "--as-of", "2026-05-01", "--format", "md"],
        ["report", "ccpa", "--as-of", "2026-05-01", "--format", "json"],
        ["report", "conformance", "--as-of", "2026-05-01", "--format", "csv"],
        ["report", "transfers", "--as-of", "2026-05-01", "--since", "2026-02-01"],
        ["report", "transfers", "--as-of", "2026-05-01", "--format", "html"],
        ["report", "ccpa", "--as-of", "2026-12-01", "--allow-incomplete", "--format", "json"],
    ],
)
def test_reports_through_the_service_are_the_reports_of_the_file(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    direct, through = both(served, capsys, Role.compliance, *argv)
    assert direct[0] == 0
    assert_same(served, direct, through)


def test_the_access_report_through_the_service(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    """A window before any read is the same on the file and through the service; a read
    made through the service is then in its access report, with its reason and query."""
    past = ["report", "access", "--since", "2020-01-01", "--until", "2021-01-01"]
    direct, through = both(served, capsys, Role.auditor, *past, "--format", "csv")
    assert direct[0] == 0
    assert_same(served, direct, through)
    # a query: the request log (compared by other tests of this module) is left as it is
    asked = run(
        capsys,
        *["query", "SELECT count(*) AS n FROM disclosures", "--format", "csv"],
        *["--reason", "CASE-ACCESS-7", "--server", served.url],
        *["--token", served.tokens[Role.investigator]],
    )
    assert asked[0] == 0
    status, out, _ = run(
        capsys,
        *["report", "access", "--since", "2026-01-01", "--format", "csv"],
        *["--server", served.url, "--token", served.tokens[Role.auditor]],
    )
    assert status == 0 and "CASE-ACCESS-7" in out and "count(*) AS n" in out


def test_a_refused_window_exits_3_and_a_future_one_2(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    direct, through = both(
        served, capsys, Role.compliance, "report", "ccpa", "--as-of", "2026-12-01"
    )
    assert (direct[0], through[0]) == (3, 3)
    assert "--allow-incomplete" in through[2] and "complete through 2026-05-31" in through[2]
    direct, through = both(
        served, capsys, Role.compliance, "report", "ccpa", "--as-of", "2999-01-01"
    )
    assert (direct[0], through[0]) == (2, 2)
    assert "later than now" in through[2]


@pytest.mark.parametrize("kind", ["subject", "recipients"])
def test_a_person_s_request_through_the_service(
    served: Served, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    argv = [
        "report",
        kind,
        "--subject-id",
        "member-3",
        "--as-of",
        "2026-05-01",
        "--received-on",
        "2026-04-30",
        "--format",
        "md",
    ]
    direct = run(capsys, *argv, "--ledger", str(served.direct))
    token = served.tokens[Role.compliance]
    refused = run(capsys, *argv, "--server", served.url, "--token", token)
    assert refused[0] == 1 and "give --reason" in refused[2]
    through = run(capsys, *argv, "--reason", "CASE-1", "--server", served.url, "--token", token)
    assert_same(served, direct, through)


def test_request_metrics_through_the_service(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    for ledger in (
        ["--ledger", str(served.direct)],
        ["--server", served.url, "--token", served.tokens[Role.compliance], "--reason", "CASE-2"],
    ):
        assert (
            run(
                capsys,
                "report",
                "subject",
                "--subject-id",
                "member-1",
                "--as-of",
                "2026-05-01",
                "--received-on",
                "2026-04-30",
                *ledger,
            )[0]
            == 0
        )
    direct, through = both(served, capsys, Role.compliance, "report", "requests", "--year", "2026")
    assert direct[0] == 0
    assert_same(served, direct, through)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_status_through_the_service(
    served: Served, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    direct, through = both(served, capsys, Role.auditor, "status", "--format", fmt)
    assert direct[0] == 0
    assert_same(served, direct, through)


def second_admin_token(served: Served) -> str:
    """Another admin's token (the fixture's admin token asks; this one approves)."""
    accounts = AccountStore(default_account_store(served.served))
    return accounts.issue_token(Role.admin, label="approver", created_by="test").token


def approve(capsys: pytest.CaptureFixture[str], served: Served, out: str, token: str) -> Any:
    """``approvals approve ID`` for the request id printed in ``out``."""
    found = re.search(r"request ([0-9a-f]{16})", out)
    assert found, out
    return run(capsys, "approvals", "approve", found[1], "--server", served.url, "--token", token)


def test_quarantine_through_the_service(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    direct = run(capsys, "quarantine", "show", "--ledger", str(served.direct), "--approved-by", "x")
    investigator = ("--server", served.url, "--token", served.tokens[Role.investigator])
    asked = run(capsys, "quarantine", "show", "--reason", "INC-1", *investigator)
    assert asked[0] == 0 and "k-1" not in asked[1]
    assert "quarantine bytes request" in asked[1] and "is pending" in asked[1]
    found = re.search(r"request ([0-9a-f]{16})", asked[1])
    assert found
    assert approve(capsys, served, asked[1], served.tokens[Role.admin])[0] == 0
    through = run(capsys, "quarantine", "show", "--approval", found[1], *investigator)
    assert "1 quarantined message(s)" in direct[1]
    *shown, approver = direct[1].splitlines()
    assert approver.endswith("approved by x")
    assert_same(served, (direct[0], "\n".join(shown) + "\n", direct[2]), through)
    again = run(capsys, "quarantine", "show", "--approval", found[1], *investigator)
    assert again[0] != 0 and "its one read was made" in again[2]


def test_erasure_through_the_service(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["erase-subject", "--subject-type", "member", "--subject-id", "member-9"]
    direct = run(
        capsys, *argv, "--actor", "dpo", "--approved-by", "cpo", "--ledger", str(served.direct)
    )
    token = served.tokens[Role.admin]
    asked = run(capsys, *argv, "--reason", "DSR-1", "--server", served.url, "--token", token)
    assert (direct[0], asked[0]) == (0, 0)
    assert "is pending: another admin approves it" in asked[1]
    own = approve(capsys, served, asked[1], token)
    assert own[0] == 1 and "cannot approve their own request" in own[2]
    through = approve(capsys, served, asked[1], second_admin_token(served))
    assert through[0] == 0, through
    assert through[1].startswith("erased the key of one member; 6 ledger row(s)")
    assert stable(through[1]).split(" by ")[0] == stable(direct[1]).split(" by ")[0]
    again = run(capsys, *argv, "--reason", "DSR-1", "--server", served.url, "--token", token)
    again = approve(capsys, served, again[1], second_admin_token(served))
    assert again[1].startswith("no key held for that member")


def test_a_wrong_token_and_a_wrong_role_say_what_to_do(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "ccpa", "--as-of", "2026-05-01", "--server", served.url]
    status, _, err = run(capsys, *argv, "--token", "dl_00000000_wrong")
    assert status == 1 and "did not accept the token" in err and "users token" in err
    status, _, err = run(capsys, *argv, "--token", served.tokens[Role.investigator])
    assert status == 1 and "the investigator role may not report" in err
    status, _, err = run(capsys, *argv)
    assert status == 1 and "DISCLOSURE_LEDGER_TOKEN" in err


def test_an_unreachable_service_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    status, _, err = run(capsys, "status", "--server", f"http://127.0.0.1:{port}", "--token", "x")
    assert status == 1
    assert f"cannot reach the ledger service at http://127.0.0.1:{port}" in err


def test_the_server_setting_is_the_default(
    served: Served, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DISCLOSURE_LEDGER_SERVER", served.url)
    monkeypatch.setenv("DISCLOSURE_LEDGER_TOKEN", served.tokens[Role.auditor])
    status, out, _ = run(capsys, "status")
    assert status == 0 and out.startswith("Coverage: the ledger is complete through")


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "ccpa", "--as-of", "2026-05-01"],
        ["status"],
        ["quarantine", "show"],
        ["query", "SELECT 1"],
    ],
)
def test_a_served_ledger_names_its_service(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    status, _, err = run(capsys, *argv, "--ledger", str(served.served))
    assert status == 1
    assert f"is served by the ledger service at {served.url} (pid {served.process.pid})" in err
    assert f"give --server {served.url}" in err


def _served_paths(served: Served) -> set[str]:
    document = httpx2.get(f"{served.url}/api/v1/openapi.json", timeout=10).json()
    return set(document["paths"])


@pytest.mark.parametrize(
    "argv",
    [
        ["query", "SELECT recipient_id, count(*) AS n FROM disclosures GROUP BY ALL ORDER BY 1"],
        ["query", "SELECT * FROM disclosures ORDER BY chain_id, seq LIMIT 7", "--format", "csv"],
        [
            "query",
            "SELECT chain_id, seq, occurred_at FROM disclosures ORDER BY 1, 2 LIMIT 5",
            "--format",
            "json",
        ],
        ["query", "volume", "--by", "recipient"],
        ["query", "timeline", "--subject-id", "member-2", "--format", "csv"],
    ],
)
def test_queries_through_the_service_are_the_queries_of_the_file(
    served: Served, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    if "/api/v1/queries" not in _served_paths(served):
        pytest.skip("this service serves no /api/v1/queries (the queries routes are not merged)")
    direct = run(capsys, *argv, "--ledger", str(served.direct))
    token = served.tokens[Role.investigator]
    through = run(capsys, *argv, "--reason", "INC-9", "--server", served.url, "--token", token)
    assert direct[0] == 0, direct
    assert_same(served, direct, through)


def test_a_refused_query_through_the_service(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    if "/api/v1/queries" not in _served_paths(served):
        pytest.skip("this service serves no /api/v1/queries (the queries routes are not merged)")
    argv = ["query", "DELETE FROM disclosures"]
    direct = run(capsys, *argv, "--ledger", str(served.direct))
    token = served.tokens[Role.investigator]
    through = run(capsys, *argv, "--reason", "INC-9", "--server", served.url, "--token", token)
    assert (direct[0], through[0]) == (1, 1)
    assert through[2] == direct[2]
