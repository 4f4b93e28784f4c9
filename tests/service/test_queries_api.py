"""Investigator queries through the API: results in every format, pages, presets, the
access log entry each read leaves, and who may ask."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from disclosure_ledger.service.auth.roles import Role
from ledger.access_log import AccessEntry
from ledger.errors import LedgerError
from ledger.key_check import KeyStoreAccess
from reference import ReferenceData
from reports.errors import QueryRefusedError
from reports.query import check_query
from tests.service.conftest import ServiceClient
from tests.service.limited_service import limited_service

REASON = "case-4711"


@pytest.fixture
def api(tmp_path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    with limited_service(tmp_path, reference) as client:
        yield client


def _post(api: ServiceClient, path: str, body: dict[str, Any], role: Role = Role.investigator):
    return api.client.post(f"/api/v1/queries{path}", json=body, headers=api.as_role(role))


def _access_log(api: ServiceClient) -> list[dict[str, Any]]:
    with api.service.view() as view:
        tables = {
            r[0] for r in view.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        if "access_log" not in tables:  # created by the first entry
            return []
        cursor = view.con.execute(
            "SELECT actor, role, action, reason, subject_pseudonym, query_text, detail, "
            "rows_returned FROM access_log ORDER BY seq"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_a_query_answers_json_and_is_recorded_with_its_text_reason_and_rows(
    api: ServiceClient,
) -> None:
    sql = "SELECT recipient_id, count(*) AS n FROM disclosures GROUP BY ALL"
    answer = _post(api, "", {"sql": sql, "reason": REASON})
    assert answer.status_code == 200, answer.text
    assert answer.json() == [{"recipient_id": "escalion", "n": 60}]
    assert answer.headers["x-result-rows"] == "1"
    [entry] = _access_log(api)
    assert entry["action"] == "query"
    assert entry["role"] == "investigator"
    assert entry["actor"].startswith("token:")
    assert (entry["reason"], entry["query_text"], entry["rows_returned"]) == (REASON, sql, 1)


def test_csv_and_parquet_hold_every_row(api: ServiceClient) -> None:
    sql = "SELECT chain_id, seq FROM disclosures ORDER BY chain_id, seq"
    as_csv = _post(api, "", {"sql": sql, "reason": REASON, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert 'filename="query.csv"' in as_csv.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["chain_id", "seq"] and len(rows) == 61

    as_parquet = _post(api, "", {"sql": sql, "reason": REASON, "format": "parquet"})
    assert as_parquet.status_code == 200
    assert as_parquet.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(as_parquet.content))
    assert table.num_rows == 60 and table.column_names == ["chain_id", "seq"]
    assert [e["rows_returned"] for e in _access_log(api)] == [60, 60]


def test_a_refused_statement_answers_400_with_the_clis_message(api: ServiceClient) -> None:
    sql = "DELETE FROM disclosures"
    with pytest.raises(QueryRefusedError) as refused:
        check_query(sql)
    answer = _post(api, "", {"sql": sql, "reason": REASON})
    assert answer.status_code == 400
    assert answer.json()["detail"] == str(refused.value)
    assert _access_log(api) == []


def test_pages_cut_the_rows_and_say_when_there_are_more(api: ServiceClient) -> None:
    sql = "SELECT chain_id, seq, occurred_at FROM disclosures ORDER BY chain_id, seq"
    first = _post(api, "/page", {"sql": sql, "reason": REASON, "page": 1, "page_size": 20})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["columns"] == ["chain_id", "seq", "occurred_at"]
    assert len(body["rows"]) == 20 and body["has_more"] and body["total_rows"] is None
    assert isinstance(body["rows"][0][2], str)  # a timestamp, as ISO text
    last = _post(api, "/page", {"sql": sql, "reason": REASON, "page": 3, "page_size": 20})
    assert (last.json()["has_more"], last.json()["total_rows"]) == (False, 60)
    assert last.json()["rows"][-1] != body["rows"][-1]
    assert [e["detail"] for e in _access_log(api)] == [
        "page=1 page_size=20",
        "page=3 page_size=20",
    ]


def test_a_page_larger_than_the_limit_is_refused_naming_it(api: ServiceClient) -> None:
    answer = _post(api, "/page", {"sql": "SELECT 1", "reason": REASON, "page_size": 21})
    assert answer.status_code == 400
    assert "1 to 20 rows (max_page_rows)" in answer.json()["detail"]


def test_a_timeline_is_found_by_pseudonym_and_recorded_without_the_subject_id(
    api: ServiceClient,
) -> None:
    answer = _post(
        api, "/presets/timeline", {"subject_id": "member-3", "reason": REASON, "format": "csv"}
    )
    assert answer.status_code == 200, answer.text
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 6  # 60 events, one member in ten
    assert "member-3" not in answer.text
    with (
        api.service.view() as view,
        api.service.subject_keys(KeyStoreAccess.read, view) as keys,
    ):
        pseudonym = keys.pseudonym("member", "member-3")
    [entry] = _access_log(api)
    assert entry["action"] == "preset timeline"
    assert entry["subject_pseudonym"] == pseudonym
    assert entry["rows_returned"] == 6
    assert "member-3" not in json.dumps(entry, default=str)


def test_a_timeline_of_an_unknown_subject_is_empty_and_says_so_in_the_log(
    api: ServiceClient,
) -> None:
    answer = _post(api, "/presets/timeline", {"subject_id": "nobody", "reason": REASON})
    assert answer.status_code == 200
    assert answer.json() == []
    [entry] = _access_log(api)
    assert entry["subject_pseudonym"] is None
    assert "no data held" in entry["detail"]


def test_the_recipient_and_volume_presets_answer_as_the_cli_does(api: ServiceClient) -> None:
    recipient = _post(
        api,
        "/presets/recipient",
        {"recipient_id": "escalion", "from": "2026-03-01", "to": "2026-04-01", "reason": REASON},
    )
    assert recipient.status_code == 200, recipient.text
    assert len(recipient.json()) == 6  # the month of March
    volume = _post(api, "/presets/volume", {"by": "category", "reason": REASON})
    assert volume.status_code == 200
    [row] = volume.json()
    assert (row["recipient_category"], row["events"]) == ("payment_provider", 60)
    details = [e["detail"] for e in _access_log(api)]
    assert details == [
        "format=json recipient_id=escalion from=2026-03-01T00:00:00 to=2026-04-01T00:00:00",
        "format=json by=category",
    ]


def test_a_preset_without_its_input_names_it(api: ServiceClient) -> None:
    answer = _post(api, "/presets/recipient", {"reason": REASON})
    assert answer.status_code == 400
    assert answer.json()["detail"] == "recipient_id: the recipient preset needs it"


@pytest.mark.parametrize("role", [Role.compliance, Role.auditor, Role.admin])
def test_only_investigators_may_query(api: ServiceClient, role: Role) -> None:
    for path, body in [
        ("", {"sql": "SELECT 1", "reason": REASON}),
        ("/page", {"sql": "SELECT 1", "reason": REASON}),
        ("/presets/volume", {"reason": REASON}),
    ]:
        answer = _post(api, path, body, role=role)
        assert answer.status_code == 403
        assert "may not query" in answer.json()["detail"]
    assert _access_log(api) == []


def test_a_query_without_a_reason_is_refused_naming_the_field(api: ServiceClient) -> None:
    answer = _post(api, "", {"sql": "SELECT 1"})
    assert answer.status_code == 422
    assert "reason" in answer.json()["detail"]
    blank = _post(api, "", {"sql": "SELECT 1", "reason": "   "})
    assert blank.status_code == 422  # as on every route that asks for a reason
    assert blank.json()["detail"].startswith("reason:")
    assert _access_log(api) == []


def test_the_served_openapi_document_is_the_committed_one(api: ServiceClient) -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    served = api.client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(committed.read_text(encoding="utf-8"))


def test_a_read_that_cannot_be_recorded_is_not_answered(
    api: ServiceClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(entry: AccessEntry) -> None:
        raise LedgerError(f"cannot write the access log entry for {entry.action}: disk full")

    monkeypatch.setattr(api.service, "record_access", broken)
    sql = "SELECT chain_id FROM disclosures"
    for path, body in [
        ("", {"sql": sql, "reason": REASON, "format": "csv"}),
        ("/page", {"sql": sql, "reason": REASON}),
        ("/presets/timeline", {"subject_id": "member-3", "reason": REASON}),
    ]:
        answer = _post(api, path, body)
        assert answer.status_code == 503
        assert "cannot write the access log entry" in answer.json()["detail"]
        assert "chain_id" not in answer.text and "member-3" not in answer.text
