"""Coverage: how far the ledger is complete, from watermarks and partition probes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ledger.coverage import DEFAULT_ALLOWANCE, ledger_coverage
from ledger.store import Ledger

TOPIC = "privacy.disclosures.v1"
T0 = datetime(2026, 11, 1, 12, 0)


def _ledger(tmp_path: Path, partitions: int = 2) -> duckdb.DuckDBPyConnection:
    with Ledger(tmp_path / "l.duckdb"):
        pass
    con = duckdb.connect(str(tmp_path / "l.duckdb"))
    for p in range(partitions):
        con.execute("INSERT INTO offsets VALUES (?, ?, 100, now()::TIMESTAMP)", [TOPIC, p])
    return con


def _watermark(con: duckdb.DuckDBPyConnection, source: str, partition: int, at: datetime) -> None:
    con.execute(
        "INSERT INTO watermarks VALUES (?, ?, 0, ?, ?, now()::TIMESTAMP)",
        [TOPIC, partition, source, at],
    )


def test_a_source_is_complete_through_its_earliest_partition_less_the_allowance(
    tmp_path: Path,
) -> None:
    con = _ledger(tmp_path)
    _watermark(con, "billing", 0, T0 + timedelta(hours=2))
    _watermark(con, "billing", 0, T0 + timedelta(hours=3))  # the latest on 0 counts
    _watermark(con, "billing", 1, T0 + timedelta(hours=1))
    coverage = ledger_coverage(con, expected_sources=["billing"])
    assert coverage.complete_through == T0.replace(tzinfo=UTC) + timedelta(hours=1) - (
        DEFAULT_ALLOWANCE
    )
    assert coverage.covers(T0.replace(tzinfo=UTC))
    assert not coverage.covers(T0.replace(tzinfo=UTC) + timedelta(hours=1))
    assert [h.name for h in coverage.holding_back] == ["billing"]


def test_a_watermark_missing_on_one_partition_proves_nothing_and_names_it(tmp_path: Path) -> None:
    con = _ledger(tmp_path, partitions=3)
    for p in (0, 2):
        _watermark(con, "billing", p, T0)
    coverage = ledger_coverage(con, expected_sources=["billing"])
    assert coverage.complete_through is None
    assert not coverage.covers(datetime(2000, 1, 1, tzinfo=UTC))
    (held,) = coverage.holding_back
    assert held.name == "billing" and f"{TOPIC}/1" in held.detail
    assert "complete through no known time" in coverage.describe()


def test_a_stalled_source_holds_back_the_others(tmp_path: Path) -> None:
    con = _ledger(tmp_path, partitions=1)
    _watermark(con, "billing", 0, T0 + timedelta(days=30))
    _watermark(con, "support", 0, T0)
    coverage = ledger_coverage(con, expected_sources=["billing", "support", "fraud"])
    assert coverage.complete_through is None  # fraud never sent one
    assert [h.name for h in coverage.holding_back] == ["fraud"]
    coverage = ledger_coverage(con, expected_sources=["billing", "support"])
    assert coverage.complete_through == T0.replace(tzinfo=UTC) - DEFAULT_ALLOWANCE
    assert [h.name for h in coverage.holding_back] == ["support"]
    assert coverage.to_json()["holding_back"][0]["name"] == "support"


def test_no_expected_sources_means_nothing_is_proven(tmp_path: Path) -> None:
    con = _ledger(tmp_path)
    _watermark(con, "billing", 0, T0)
    coverage = ledger_coverage(con)  # the ledger holds no ref_sources
    assert coverage.complete_through is None
    assert "sources.yaml" in coverage.describe()


def test_expected_sources_come_from_the_newest_rows_reference_version(tmp_path: Path) -> None:
    con = _ledger(tmp_path, partitions=1)
    con.execute("CREATE TABLE ref_sources (reference_version VARCHAR, source VARCHAR)")
    con.execute("INSERT INTO ref_sources VALUES ('v1', 'billing'), ('v1', 'support')")
    _watermark(con, "billing", 0, T0)
    assert ledger_coverage(con).complete_through is None  # support never sent one
    _watermark(con, "support", 0, T0 + timedelta(hours=1))
    assert ledger_coverage(con).complete_through == T0.replace(tzinfo=UTC) - DEFAULT_ALLOWANCE


def test_a_partition_is_complete_through_the_last_probe_its_position_has_passed(
    tmp_path: Path,
) -> None:
    con = _ledger(tmp_path, partitions=1)  # next_offset 100
    _watermark(con, "billing", 0, T0 + timedelta(hours=5))
    for minutes, end in ((0, 90), (10, 100), (20, 130)):
        con.execute(
            "INSERT INTO partition_probes VALUES (?, 0, ?, ?)",
            [TOPIC, T0 + timedelta(minutes=minutes), end],
        )
    coverage = ledger_coverage(con, expected_sources=["billing"], allowance=timedelta(0))
    assert coverage.complete_through == T0.replace(tzinfo=UTC) + timedelta(minutes=10)
    (held,) = coverage.holding_back
    assert held.kind == "partition" and "lag 30" in held.detail


@pytest.mark.parametrize("end", [101, 500])
def test_a_partition_whose_position_reached_no_probe_proves_nothing(
    tmp_path: Path, end: int
) -> None:
    con = _ledger(tmp_path, partitions=1)
    _watermark(con, "billing", 0, T0)
    con.execute("INSERT INTO partition_probes VALUES (?, 0, ?, ?)", [TOPIC, T0, end])
    coverage = ledger_coverage(con, expected_sources=["billing"])
    assert coverage.complete_through is None
    assert f"lag {end - 100}" in coverage.holding_back[0].detail
