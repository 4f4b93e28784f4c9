"""``/metrics``: Prometheus text without sign-in; the ledger and ingest at scrape time;
requests by route template (never the URL); the process-wide batch and query histograms;
one registry per app. And the example alert rules name only metrics the app exports."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from consumers.pipeline import SourceMessage
from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.metrics import TimedIngestor, observe_query_seconds
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.service.conftest import TOPIC, ServiceClient
from tests.service.test_verify_jobs import start_job, wait_for_job
from tests.unit.events import make_event

ALERTS = Path(__file__).resolve().parents[2] / "docs" / "prometheus-alerts.yml"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def scrape(sc: ServiceClient) -> str:
    answer = sc.client.get("/metrics")  # no credentials: Prometheus scrapes without
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return answer.text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def exported_names(text: str) -> set[str]:
    """Every series name the exposition can hold, from its ``# TYPE`` lines."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.M):
        base = name.removesuffix("_total") if kind == "counter" else name
        names.update(base + suffix for suffix in SUFFIXES.get(kind, ("",)))
    return names


def test_the_ledger_and_ingest_at_scrape_time(service_client: ServiceClient) -> None:
    text = scrape(service_client)
    assert value(text, "disclosure_ledger_ledger_rows") == 60
    assert value(text, "disclosure_ledger_quarantine_rows") == 0
    assert value(text, "disclosure_ledger_ingest_messages_total", outcome="accepted") == 0
    assert value(text, "disclosure_ledger_ingest_enabled") == 0  # the fixture does not ingest
    assert value(text, "disclosure_ledger_access_log_entries") == 0
    through = value(text, "disclosure_ledger_coverage_complete_through_timestamp_seconds")
    assert through is not None and through > 4_000_000_000  # the fixture: through 2100
    with service_client.service.view() as view:
        (position,) = view.con.execute(
            "SELECT next_offset FROM offsets WHERE kafka_partition = 1"
        ).fetchall()[0]
    assert value(text, "disclosure_ledger_partition_position", partition=f"{TOPIC}/1") == position

    with service_client.service.writable_view() as view:  # a probe: 5 messages wait on /0
        view.con.execute(
            "INSERT INTO partition_probes SELECT topic, kafka_partition, now()::TIMESTAMP, "
            "next_offset + 5 FROM offsets WHERE kafka_partition = 0"
        )
    text = scrape(service_client)
    assert value(text, "disclosure_ledger_partition_lag_messages", partition=f"{TOPIC}/0") == 5
    # a partition behind holds the coverage back to its last probe reached: none here
    assert value(text, "disclosure_ledger_coverage_complete_through_timestamp_seconds") == 0


def test_the_last_verify_is_exported(service_client: ServiceClient) -> None:
    assert value(scrape(service_client), "disclosure_ledger_verify_last_ok") is None
    wait_for_job(service_client, start_job(service_client))
    text = scrape(service_client)
    assert value(text, "disclosure_ledger_verify_last_ok") == 1
    assert value(text, "disclosure_ledger_verify_last_failures") == 0
    assert value(text, "disclosure_ledger_verify_running") == 0


def test_requests_are_counted_by_route_template_never_by_url(
    service_client: ServiceClient,
) -> None:
    client, auditor = service_client.client, service_client.as_role(Role.auditor)
    assert client.get("/api/v1/verify/job-named-member-77", headers=auditor).status_code == 404
    assert client.get("/no/such/page/member-78?subject_id=member-79").status_code == 404
    assert client.get("/api/v1/status", headers=auditor).status_code == 200
    text = scrape(service_client)
    counted = "disclosure_ledger_http_requests_total"
    assert value(text, counted, method="GET", route="/api/v1/verify/{job_id}", status="404") == 1
    assert value(text, counted, method="GET", route="(unmatched)", status="404") == 1
    assert value(text, counted, method="GET", route="/api/v1/status", status="200") == 1
    assert "member-7" not in text and "/no/such" not in text


def test_query_durations_and_batch_commits_are_histograms(
    service_client: ServiceClient, tmp_path: Path, reference: ReferenceData
) -> None:
    before = scrape(service_client)
    observe_query_seconds(0.2)
    codec = EventCodec()
    with (
        Ledger(tmp_path / "other.duckdb") as ledger,
        SubjectKeyStore(tmp_path / "keys.sqlite", TEST_SECRET) as keys,
    ):
        message = SourceMessage(TOPIC, 0, 0, b"k", codec.encode(make_event().to_avro()))
        TimedIngestor(ledger, keys, reference).ingest([message])
    after = scrape(service_client)
    for name in (
        "disclosure_ledger_query_duration_seconds_count",
        "disclosure_ledger_batch_commit_seconds_count",
    ):
        assert (value(after, name) or 0) == (value(before, name) or 0) + 1, name


def test_each_app_has_a_registry_of_its_own(tmp_path: Path) -> None:
    apps = [create_app(None, AccountStore(tmp_path / f"users-{n}.sqlite")) for n in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        first.get("/healthz")
        first.get("/healthz")
        second.get("/healthz")
        name = "disclosure_ledger_http_requests_total"
        labels = {"method": "GET", "route": "/healthz", "status": "200"}
        assert value(first.get("/metrics").text, name, **labels) == 2
        assert value(second.get("/metrics").text, name, **labels) == 1


def test_every_metric_an_alert_names_is_exported(service_client: ServiceClient) -> None:
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 5
    named = {m for expr in exprs for m in re.findall(r"\bdisclosure_ledger_[a-z0-9_]+", expr)}
    wanted = {"coverage", "lag", "verify", "quarantine", "ingest"}
    assert all(any(word in name for name in named) for word in wanted), named
    missing = named - exported_names(scrape(service_client))
    assert missing == set(), f"docs/prometheus-alerts.yml names metrics never exported: {missing}"
