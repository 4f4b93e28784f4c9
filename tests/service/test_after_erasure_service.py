"""After an erasure, in the service: status, metrics and the dashboard count disclosures
after an erasure (in the ledger, and ingested since start) and the GDPR Art. 19 notices
due; the conformance report API lists them first; notices are listed and recorded through
the API and the console (compliance, admin), recorded in the access log, and bad ones are
refused with the reason."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, IngestStats, SourceMessage
from disclosure_ledger.service.auth.roles import Role
from ledger.erasure import erase_subject
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.service.conftest import MEMBERS, TOPIC, ServiceClient, build_ledger, serving
from tests.service.test_console import sign_in
from tests.service.test_metrics import scrape, value
from tests.unit.events import make_event

ERASED = MEMBERS[0]


@dataclass
class Erased:
    served: ServiceClient
    erasure_id: str


@pytest.fixture
def erased(tmp_path: Path, reference: ReferenceData) -> Iterator[Erased]:
    """The service over a ledger where member-0 was erased, then disclosed twice more."""
    path = build_ledger(tmp_path / "ledger.duckdb", reference)
    codec = EventCodec()
    later = [
        SourceMessage(
            TOPIC,
            0,
            20 + i,
            b"key",
            codec.encode(
                make_event(
                    subject={"id": ERASED, "type": "member"},
                    occurred_at=datetime(2026, 11, 2 + i, tzinfo=UTC),
                ).to_avro()
            ),
        )
        for i in range(2)
    ]
    with (
        Ledger(path) as ledger,
        SubjectKeyStore(path.with_name(path.name + ".keys.sqlite"), TEST_SECRET) as keys,
    ):
        erasure = erase_subject(ledger, keys, "member", ERASED, actor="dpo")
        assert Ingestor(ledger, keys, reference).ingest(later).after_erasure == 2
    assert erasure.erasure_id is not None
    with serving(path, reference) as served:
        yield Erased(served, erasure.erasure_id)


def test_status_and_metrics_count_disclosures_after_an_erasure_and_notices_due(
    erased: Erased,
) -> None:
    sc = erased.served
    status = sc.client.get("/api/v1/status", headers=sc.as_role(Role.auditor)).json()
    assert status["after_erasure"] == 2
    assert status["notices_due"] == 1  # escalion received member-0's data
    assert status["ingest"]["after_erasure"] == 0  # this service has ingested nothing
    text = scrape(sc)
    assert value(text, "disclosure_ledger_ledger_after_erasure_rows") == 2
    assert value(text, "disclosure_ledger_erasure_notices_due") == 1
    assert value(text, "disclosure_ledger_ingest_after_erasure_events_total") == 0

    # what the ingest thread adds to the service's stats after each batch
    sc.service.ingest_state.stats.add(IngestStats(accepted=3, after_erasure=1))
    status = sc.client.get("/api/v1/status", headers=sc.as_role(Role.auditor)).json()
    assert status["ingest"]["after_erasure"] == 1
    assert value(scrape(sc), "disclosure_ledger_ingest_after_erasure_events_total") == 1


def test_the_conformance_report_api_lists_them_first(erased: Erased) -> None:
    sc = erased.served
    answer = sc.client.get(
        "/api/v1/reports/conformance",
        params={"as_of": "2026-12-01"},
        headers=sc.as_role(Role.compliance),
    )
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["summary"]["after_erasure_events"] == 2
    assert [g["recipient_id"] for g in document["after_erasure"]["groups"]] == ["escalion"]
    assert len(document["after_erasure"]["rows"]) == 2
    assert list(document).index("after_erasure") < list(document).index("undeclared_flows")


def test_notices_are_listed_and_recorded_through_the_api_and_the_access_log_keeps_it(
    erased: Erased,
) -> None:
    sc = erased.served
    compliance = sc.as_role(Role.compliance)
    listed = sc.client.get("/api/v1/notices", headers=compliance).json()
    assert [(d["erasure_id"], d["recipient_id"]) for d in listed["due"]] == [
        (erased.erasure_id, "escalion")
    ]
    assert (
        sc.client.get("/api/v1/notices", headers=sc.as_role(Role.investigator)).status_code == 403
    )
    path = f"/api/v1/erasures/{erased.erasure_id}/notices"
    today = datetime.now(UTC).date().isoformat()
    refused = sc.client.post(
        path, json={"recipient_id": "hotjar", "sent_on": today}, headers=compliance
    )
    assert refused.status_code == 422
    assert "did not receive the erased subject's data" in refused.json()["detail"]
    unknown = sc.client.post(
        "/api/v1/erasures/no-such-id/notices",
        json={"recipient_id": "escalion", "sent_on": today},
        headers=compliance,
    )
    assert unknown.status_code == 422 and "no erasure 'no-such-id'" in unknown.json()["detail"]

    recorded = sc.client.post(
        path,
        json={"recipient_id": "escalion", "sent_on": today, "note": "letter ref 42"},
        headers=sc.as_role(Role.admin),
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["line"].startswith(f"recorded: escalion was notified on {today}")
    listed = sc.client.get("/api/v1/notices", headers=compliance).json()
    assert listed["due"] == [] and [n["note"] for n in listed["sent"]] == ["letter ref 42"]
    with sc.service.view() as view:
        logged = view.con.execute(
            "SELECT role, action, detail FROM access_log ORDER BY seq"
        ).fetchall()
    assert logged == [
        (
            "admin",
            "record erasure notice",
            f"erasure {erased.erasure_id}; recipient escalion; sent on {today}",
        )
    ]
    assert value(scrape(sc), "disclosure_ledger_erasure_notices_due") == 0


def test_the_console_shows_the_counts_and_records_a_notice(erased: Erased) -> None:
    client = erased.served.client
    csrf = sign_in(client, Role.compliance)
    dashboard = client.get("/").text
    assert re.search(r'id="after-erasure-count">2<', dashboard)
    assert "1 GDPR Art. 19 notice to recipients due" in dashboard
    assert "disclosures after an erasure" in dashboard
    page = client.get("/notices")
    assert page.status_code == 200 and erased.erasure_id in page.text
    assert 'id="record-notices"' in page.text
    today = datetime.now(UTC).date().isoformat()
    form = {"erasure_id": erased.erasure_id, "recipient_id": "escalion", "sent_on": today}
    assert client.post("/notices", data=form | {"csrf_token": "forged"}).status_code == 403
    done = client.post("/notices", data=form | {"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert "recorded: escalion was notified" in done.text
    assert 'id="record-notices"' not in done.text
    again = client.post("/notices", data=form | {"csrf_token": csrf})
    assert again.status_code == 400 and "already recorded" in again.text
    download = client.get("/notices?format=csv")
    assert download.status_code == 200 and "sent," + erased.erasure_id in download.text
