"""The CLI's side of the service routes another part of the service answers (queries,
presets, verify jobs), against their contracts: a stand-in service (httpx2's
MockTransport) answers as the contract says, and the command must print what it prints
on a ledger file. The real routes are tested end to end where they are served."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import httpx2
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from disclosure_ledger.cli import build_parser
from disclosure_ledger.commands.verify import ProgressLines, print_verify_result
from disclosure_ledger.commands.via_service import run_query, verify_result
from disclosure_ledger.errors import DisclosureLedgerError
from disclosure_ledger.service.client import LedgerClient, ServiceRefusedError
from ledger.verify.result import VerifyResult
from reports.render import write_terminal_table

TABLE = pa.table({"recipient_id": ["escalion", "parcelon"], "disclosures": [6, 4]})


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def client_answering(handler: Any) -> LedgerClient:
    return LedgerClient("http://ledger.test", "dl_token", transport=httpx2.MockTransport(handler))


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_a_query_table_is_the_table_of_the_file(capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[dict[str, Any]] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/api/v1/queries"
        assert request.headers["authorization"] == "Bearer dl_token"
        asked.append(json.loads(request.content))
        return httpx2.Response(200, content=parquet_bytes(TABLE))

    args = parse("query", "SELECT 1", "--reason", "INC-1", "--server", "http://ledger.test")
    run_query(args, client_answering(service))
    assert asked == [{"sql": "SELECT 1", "format": "parquet", "reason": "INC-1"}]
    expected = io.StringIO()
    write_terminal_table(TABLE.column_names, TABLE.to_batches(), expected)
    assert capsys.readouterr().out == expected.getvalue()


def test_a_preset_sends_its_options_and_streams_csv(capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    def service(request: httpx2.Request) -> httpx2.Response:
        asked.append((request.url.path, json.loads(request.content)))
        return httpx2.Response(200, text="recipient_id,disclosures\nescalion,6\n")

    args = parse(
        "query",
        "volume",
        "--by",
        "day",
        "--from",
        "2026-01-01",
        "--format",
        "csv",
        "--reason",
        "INC-2",
        "--server",
        "http://ledger.test",
    )
    run_query(args, client_answering(service))
    assert asked == [
        (
            "/api/v1/queries/presets/volume",
            {
                "subject_type": "member",
                "by": "day",
                "from": "2026-01-01T00:00:00+00:00",
                "format": "csv",
                "reason": "INC-2",
            },
        )
    ]
    assert capsys.readouterr().out == "recipient_id,disclosures\nescalion,6\n"


def test_a_refused_query_is_the_service_s_message() -> None:
    def service(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            422, json={"detail": "refused a DELETE statement: it deletes rows", "error": "refused"}
        )

    args = parse("query", "DELETE FROM disclosures", "--reason", "INC-3", "--server", "http://x")
    with pytest.raises(ServiceRefusedError, match="refused a DELETE statement") as refused:
        run_query(args, client_answering(service))
    assert refused.value.exit_status == 1


def test_a_query_through_the_service_needs_a_reason() -> None:
    args = parse("query", "SELECT 1", "--server", "http://ledger.test")
    with pytest.raises(DisclosureLedgerError, match="give --reason"):
        run_query(args, client_answering(lambda request: httpx2.Response(500)))


def test_verify_polls_the_job_and_prints_what_verify_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = {
        "rows": 60,
        "chains": {"privacy.disclosures.v1/0": [20, "ab" * 32]},
        "failures": [],
        "checkpoints": 2,
        "signatures_checked": True,
        "notes": ["a note"],
        "ok": True,
        "ledger": "/srv/ledger.duckdb",
    }
    polls = iter(
        [
            {"state": "running", "rows_done": 10, "rows_total": 60, "result": None},
            {"state": "done", "rows_done": 60, "rows_total": 60, "result": result},
        ]
    )

    def service(request: httpx2.Request) -> httpx2.Response:
        if request.method == "POST":
            assert request.url.path == "/api/v1/verify"
            return httpx2.Response(202, json={"job_id": "job-1"})
        assert request.url.path == "/api/v1/verify/job-1"
        return httpx2.Response(200, json=next(polls))

    args = parse("verify", "--server", "http://ledger.test")
    found, name = verify_result(args, client_answering(service), ProgressLines())
    assert isinstance(found, VerifyResult)
    assert print_verify_result(found, name) == 0
    out = capsys.readouterr()
    expected = VerifyResult(
        rows=60,
        chains={"privacy.disclosures.v1/0": (20, "ab" * 32)},
        checkpoints=2,
        signatures_checked=True,
        notes=["a note"],
    )
    print_verify_result(expected, "/srv/ledger.duckdb")
    assert out == capsys.readouterr()
    assert out.out.endswith("/srv/ledger.duckdb: 60 rows; verified\n")


def test_verify_with_local_checkpoint_files_is_refused_through_the_service() -> None:
    args = parse("verify", "--server", "http://x", "--checkpoints", "cp.txt")
    with pytest.raises(DisclosureLedgerError, match="--checkpoints cannot be given with --server"):
        verify_result(args, client_answering(lambda r: httpx2.Response(500)), ProgressLines())


def test_a_read_command_needs_a_ledger_or_a_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from disclosure_ledger.cli import main

    monkeypatch.delenv("DISCLOSURE_LEDGER_SERVER", raising=False)
    assert main(["report", "ccpa", "--as-of", "2026-05-01"]) == 1
    assert "give --ledger PATH to read the ledger file, or --server URL" in capsys.readouterr().err


def test_files_beside_the_ledger_are_refused_with_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from disclosure_ledger.cli import main

    monkeypatch.setenv("DISCLOSURE_LEDGER_TOKEN", "dl_token")
    status = main(
        [
            "report",
            "subject",
            "--subject-id",
            "member-1",
            "--as-of",
            "2026-05-01",
            "--key-store",
            "keys.sqlite",
            "--reason",
            "CASE-1",
            "--server",
            "http://127.0.0.1:9",
        ]
    )
    assert status == 1
    assert "--key-store cannot be given with --server" in capsys.readouterr().err


def test_a_server_that_is_no_url_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    from disclosure_ledger.cli import main

    assert main(["status", "--server", "127.0.0.1:8080", "--token", "t"]) == 1
    assert "is not an address like http://127.0.0.1:8080" in capsys.readouterr().err
