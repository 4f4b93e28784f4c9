"""`consume` into a DuckLake from a real broker, through the CLI: the rows land in the lake
(never in a DuckDB file at the lake's local path), and `verify` and a report read them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from disclosure_ledger.cli import main
from producers.publisher import DisclosurePublisher
from tests.conftest import LakeLocation, LedgerLocation, cli_argument
from tests.unit.events import make_event

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("ledger_backend", ["ducklake"], indirect=True),
]


def test_consume_appends_to_a_lake_that_verify_and_a_report_then_read(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    ledger_location: LedgerLocation,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert isinstance(ledger_location, LakeLocation)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    topic = new_topic(partitions=2)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    with DisclosurePublisher(kafka_bootstrap, topic, watermark_every=None) as publisher:
        for i in range(6):
            publisher.publish(
                make_event(occurred_at=yesterday, subject={"id": f"member-{i}", "type": "member"})
            )
    lake = cli_argument(ledger_location)
    argv = ["consume", "--ledger", lake, "--topic", topic, "--until-idle", "1", "--no-checkpoints"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "6 appended" in out and "into ducklake:postgres:" in out
    assert not ledger_location.local_path.exists()  # no DuckDB file made beside the lake
    assert main(argv) == 0  # a second run resumes at the lake's offsets: nothing doubled
    assert "0 appended" in capsys.readouterr().out

    assert main(["verify", "--ledger", lake]) == 0
    assert "6 rows; verified" in capsys.readouterr().out
    report = ["report", "ccpa", "--ledger", lake, "--allow-incomplete", "--format", "json"]
    assert main([*report, "--as-of", datetime.now(UTC).date().isoformat()]) == 0
    assert '"coverage"' in capsys.readouterr().out
