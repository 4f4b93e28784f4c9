"""Hostile queries against the service: each gets a clear 4xx, and nothing in the ledger
changes (its tables and views, their rows, its settings, the files beside it).

Statements that write, read files, or name the withheld access log are refused by the parse
check; those that would slip past it are stopped by the transaction that is always rolled
back and by the instance's external access being off (tested below by running them on a
cursor directly); a statement that runs forever is stopped at the time limit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.queries import rolled_back
from ledger.access_log import AccessEntry
from reference import load_reference
from tests.service.conftest import ServiceClient
from tests.service.limited_service import ENDLESS, ledger_state, limited_service

REASON = "case-4711"
OUTSIDE = "outside"
"""A folder beside the ledger, where a statement that writes files would put them."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceClient]:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / OUTSIDE).mkdir()
    (folder / OUTSIDE / "secret.csv").write_text("secret\nthe-secret-value\n")
    with limited_service(folder, load_reference()) as client:
        # the access log exists, with an entry a query must not be able to read
        client.service.record_access(
            AccessEntry("someone", "investigator", "query", "case-1", rows_returned=1)
        )
        yield client


def _query(api: ServiceClient, sql: str, path: str = "") -> tuple[int, str]:
    body = {"sql": sql, "reason": REASON, **({} if path else {"format": "csv"})}
    answer = api.client.post(
        f"/api/v1/queries{path}", json=body, headers=api.as_role(Role.investigator)
    )
    return answer.status_code, answer.text


WRITES = [
    "INSERT INTO disclosures SELECT * FROM disclosures",
    "UPDATE disclosures SET purpose = 'marketing'",
    "DELETE FROM disclosures",
    "CREATE TABLE evil AS SELECT 1 AS one",
    "CREATE MACRO evil() AS 1",
    "DROP TABLE disclosures",
    "ALTER TABLE disclosures RENAME TO gone",
    "COPY disclosures TO '{dir}/outside/copy.csv'",
    "COPY (SELECT 1) TO '{dir}/outside/copy.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{dir}/outside/export'",
    "ATTACH '{dir}/outside/other.duckdb' AS other",
    "DETACH ledger",
    "SET memory_limit = '64TB'",
    "SET enable_external_access = true",
    "RESET memory_limit",
    "PRAGMA memory_limit = '64TB'",
    "CALL checkpoint()",
    "CHECKPOINT",
    "INSTALL httpfs",
    "LOAD httpfs",
    "VACUUM disclosures",
    "SELECT 1; DROP TABLE disclosures",
    "SELECT 1; DELETE FROM disclosures",
    "BEGIN; DELETE FROM disclosures; COMMIT",
    "BEGIN TRANSACTION",
    "COMMIT",
    "WITH gone AS (DELETE FROM disclosures RETURNING *) SELECT * FROM gone",
    "PREPARE evil AS DELETE FROM disclosures",
    "SELECT nextval('evil')",
    "SELECT setseed(0.5)",
    "SELECT * FROM enable_logging()",
    "SELECT * FROM query('DELETE FROM disclosures')",
]
FILE_READS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('{dir}/outside/secret.csv')",
    "FROM '/etc/passwd'",
    "SELECT * FROM '{dir}/outside/secret.csv'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_blob('{dir}/ledger.duckdb.keys.sqlite')",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM glob('{dir}/*')",
    "SELECT * FROM read_parquet('{dir}/outside/*.parquet')",
    "SELECT * FROM sqlite_scan('{dir}/ledger.duckdb.keys.sqlite', 'subject_keys')",
    "SELECT * FROM disclosures, read_csv('/etc/passwd')",
    "SELECT (SELECT count(*) FROM read_text('/etc/passwd')) AS n",
    "WITH x AS (FROM '/etc/passwd') SELECT * FROM x",
    "SELECT getenv('HOME')",
    "SELECT * FROM duckdb_settings()",
]
ACCESS_LOG = [
    "SELECT * FROM access_log",
    "SELECT * FROM main.access_log",
    'SELECT * FROM "ACCESS_LOG"',
    "WITH access_log AS (SELECT 1) SELECT * FROM main.access_log",
    "SELECT * FROM (WITH access_log AS (SELECT 1) FROM access_log), access_log",
    "SUMMARIZE access_log",
    "FROM pragma_storage_info('access_log')",
    "FROM histogram(access_log, actor)",
]


@pytest.mark.parametrize("statement", WRITES + FILE_READS + ACCESS_LOG)
@pytest.mark.parametrize("path", ["", "/page"])
def test_a_hostile_statement_is_refused_and_changes_nothing(
    api: ServiceClient, statement: str, path: str
) -> None:
    folder = api.service.config.ledger.parent
    before = ledger_state(api.service)
    status, text = _query(api, statement.format(dir=folder), path)
    assert status == 400, text
    detail = json.loads(text)["detail"]
    assert any(word in detail for word in ("refused", "does not parse", "accepted")), detail
    assert "root:" not in text and "the-secret-value" not in text
    assert ledger_state(api.service) == before
    assert sorted(p.name for p in (folder / OUTSIDE).iterdir()) == ["secret.csv"]


@pytest.mark.parametrize(
    "statement",
    [ENDLESS, "SELECT a.range FROM range(1000000000000) a"],
    ids=["computes forever", "streams forever"],
)
@pytest.mark.parametrize("path", ["", "/page"])
def test_a_query_that_runs_forever_is_stopped_at_the_time_limit(
    api: ServiceClient, path: str, statement: str
) -> None:
    if path and statement != ENDLESS:
        statement += " ORDER BY a.range DESC"  # a page of it must sort it all first
    before = ledger_state(api.service)
    status, text = _query(api, statement, path)
    assert status == 408, text
    assert "stopped after its time limit of 1 s" in text
    assert ledger_state(api.service) == before
    # the service goes on answering queries
    assert _query(api, "SELECT count(*) AS n FROM disclosures") == (200, "n\n60\n")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM disclosures",
        "UPDATE disclosures SET purpose = 'marketing'",
        "CREATE TABLE evil AS SELECT 1 AS one",
        "DROP TABLE quarantine",
    ],
)
def test_a_write_past_the_parse_check_is_rolled_back(api: ServiceClient, statement: str) -> None:
    before = ledger_state(api.service)
    with rolled_back(api.service) as cursor:
        cursor.execute(statement)
    assert ledger_state(api.service) == before


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM read_csv('{dir}/outside/secret.csv')",
        "SELECT * FROM '{dir}/outside/secret.csv'",
        "SELECT * FROM glob('{dir}/*')",
        "COPY (SELECT 1) TO '{dir}/outside/copy.csv'",
        "ATTACH '{dir}/outside/other.duckdb' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
)
def test_files_are_out_of_reach_past_the_parse_check(api: ServiceClient, statement: str) -> None:
    folder = api.service.config.ledger.parent
    before = ledger_state(api.service)
    with rolled_back(api.service) as cursor, pytest.raises(duckdb.Error):
        cursor.execute(statement.format(dir=folder)).fetchall()
    assert ledger_state(api.service) == before
    assert sorted(p.name for p in (folder / OUTSIDE).iterdir()) == ["secret.csv"]


# -- limits, content types, credentials: each its own service ------------------------------
@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ServiceClient]:
    with limited_service(tmp_path, load_reference()) as client:
        yield client


def test_a_query_waits_for_a_slot_then_answers_429_with_retry_after(
    fresh: ServiceClient,
) -> None:
    before = ledger_state(fresh.service)
    assert fresh.service.query_slots.acquire(timeout=5)  # the one slot, held by "another"
    try:
        answer = fresh.client.post(
            "/api/v1/queries",
            json={"sql": "SELECT 1", "reason": REASON},
            headers=fresh.as_role(Role.investigator),
        )
    finally:
        fresh.service.query_slots.release()
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "1"
    assert "query slots stayed busy" in answer.json()["detail"]
    assert ledger_state(fresh.service) == before


def test_the_service_answers_and_records_while_a_long_query_runs(
    tmp_path: Path,
) -> None:
    with limited_service(tmp_path, load_reference(), time_limit=4.0) as api:
        outcome: list[int] = []

        def long_query() -> None:
            outcome.append(_query(api, ENDLESS)[0])

        runner = threading.Thread(target=long_query)
        runner.start()
        try:
            while api.service.query_slots.acquire(blocking=False):  # until the query holds it
                api.service.query_slots.release()
                threading.Event().wait(0.01)
            status = api.client.get("/api/v1/status", headers=api.as_role(Role.auditor))
            assert status.status_code == 200
            assert status.json()["rows"] == 60
            # a write commits while the query's transaction is open
            api.service.record_access(
                AccessEntry("test", "auditor", "status", REASON, rows_returned=0)
            )
            assert runner.is_alive()
        finally:
            runner.join()
        assert outcome == [408]
        with api.service.view() as view:
            assert view.con.execute("SELECT count(*) FROM access_log").fetchone() == (1,)


def test_an_oversized_body_is_refused_with_413(fresh: ServiceClient) -> None:
    before = ledger_state(fresh.service)
    sql = "SELECT 1 AS " + "x" * 5_000
    declared = fresh.client.post(
        "/api/v1/queries",
        json={"sql": sql, "reason": REASON},
        headers=fresh.as_role(Role.investigator),
    )
    assert declared.status_code == 413
    assert "at most 4096 (its max_body_bytes)" in declared.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "case", "sql": "SELECT 1 AS '
        for _ in range(10):
            yield b"x" * 1_000
        yield b'"}'

    streamed = fresh.client.post(
        "/api/v1/queries",
        content=chunks(),
        headers={**fresh.as_role(Role.investigator), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert "at most 4096" in streamed.json()["detail"]
    assert ledger_state(fresh.service) == before


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"sql": "SELECT 1", "reason": "case"}'),
        ("application/x-www-form-urlencoded", b"sql=SELECT+1&reason=case"),
        ("multipart/form-data; boundary=x", b"--x\r\n\r\nSELECT 1\r\n--x--\r\n"),
        (None, b'{"sql": "SELECT 1", "reason": "case"}'),
    ],
)
def test_a_body_that_is_not_json_is_refused_with_415(
    fresh: ServiceClient, content_type: str | None, content: bytes
) -> None:
    before = ledger_state(fresh.service)
    headers = fresh.as_role(Role.investigator)
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = fresh.client.post("/api/v1/queries", content=content, headers=headers)
    assert answer.status_code == 415
    assert (
        "takes a JSON body: send it with 'Content-Type: application/json'"
        in (answer.json()["detail"])
    )
    assert ledger_state(fresh.service) == before


@pytest.mark.parametrize(
    ("content", "field", "message"),
    [
        (b'{"sql": "SELECT 1", "reason": ', "body", "the body is not valid JSON"),
        (b'["SELECT 1"]', "body", "valid dictionary"),
        (b'{"sql": "SELECT 1"}', "reason", "Field required"),
        (b'{"query": "SELECT 1", "reason": "case"}', "query", "not a field of this request"),
        (b'{"sql": "SELECT 1", "reason": "case", "format": "xlsx"}', "format", "'parquet'"),
        (b'{"sql": 1, "reason": "case"}', "sql", "valid string"),
    ],
)
def test_malformed_json_answers_422_naming_the_field(
    fresh: ServiceClient, content: bytes, field: str, message: str
) -> None:
    answer = fresh.client.post(
        "/api/v1/queries",
        content=content,
        headers={**fresh.as_role(Role.investigator), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert field in [e["field"] for e in body["errors"]]
    assert message in body["detail"]
    assert "input" not in answer.text  # the body is never echoed back


def test_a_subject_id_is_not_echoed_in_a_422(fresh: ServiceClient) -> None:
    answer = fresh.client.post(
        "/api/v1/queries/presets/timeline",
        json={"subject_id": "member-3", "format": "xlsx"},
        headers=fresh.as_role(Role.investigator),
    )
    assert answer.status_code == 422
    assert "member-3" not in answer.text
    assert {e["field"] for e in answer.json()["errors"]} == {"format", "reason"}


def test_a_wrong_or_revoked_token_is_refused_and_nothing_is_recorded(
    fresh: ServiceClient,
) -> None:
    before = ledger_state(fresh.service)
    body = {"sql": "SELECT 1", "reason": REASON}
    for headers in (
        {},
        {"Authorization": "Bearer dl_00000000_forged"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": fresh.as_role(Role.investigator)["Authorization"] + "x"},
    ):
        answer = fresh.client.post("/api/v1/queries", json=body, headers=headers)
        assert answer.status_code == 401
        assert "API token" in answer.json()["detail"]
    assert ledger_state(fresh.service) == before


def test_a_session_needs_its_csrf_token_to_query(fresh: ServiceClient) -> None:
    actor = fresh.accounts.authenticate("user-investigator", "correct horse battery staple")
    assert actor is not None
    session, csrf = fresh.accounts.open_session(actor)
    fresh.client.cookies.set("dl_session", session)
    body = {"sql": "SELECT 1 AS one", "reason": REASON}
    before = ledger_state(fresh.service)
    for headers in ({}, {"X-CSRF-Token": "forged"}):
        refused = fresh.client.post("/api/v1/queries", json=body, headers=headers)
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
    assert ledger_state(fresh.service) == before
    allowed = fresh.client.post("/api/v1/queries", json=body, headers={"X-CSRF-Token": csrf})
    assert allowed.status_code == 200
    assert allowed.json() == [{"one": 1}]
