"""Opening a ledger file that this installation cannot use says why, and what to do."""

from __future__ import annotations

import gzip
from pathlib import Path

import duckdb
import pytest

from ledger.errors import LedgerError, LedgerLockedError, LedgerVersionError
from ledger.store import Ledger

# A ledger-shaped file (one table, `disclosures`) written by DuckDB 2.0.0, gzipped: its
# header says storage version 999 and "v2.0.0", which DuckDB 1.5.5 cannot read.
WRITTEN_BY_2_0_0 = Path(__file__).parents[1] / "data" / "written-by-duckdb-2.0.0.duckdb.gz"


@pytest.fixture
def newer_file(tmp_path: Path) -> Path:
    path = tmp_path / "newer.duckdb"
    path.write_bytes(gzip.decompress(WRITTEN_BY_2_0_0.read_bytes()))
    return path


@pytest.mark.parametrize("read_only", [True, False])
def test_a_file_written_by_a_newer_duckdb_is_refused_naming_both_versions(
    newer_file: Path, read_only: bool
) -> None:
    before = newer_file.read_bytes()
    with pytest.raises(LedgerVersionError) as refused:
        Ledger(newer_file, read_only=read_only)
    message = str(refused.value)
    assert str(newer_file) in message
    assert "DuckDB v2.0.0" in message  # who wrote it, from the file's header
    assert f"DuckDB {duckdb.__version__}" in message  # what reads it here
    assert "EXPORT DATABASE" in message  # what to do
    assert newer_file.read_bytes() == before  # nothing written to it


def test_a_corrupt_file_is_not_mistaken_for_a_locked_one(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.duckdb"
    with Ledger(path):
        pass
    data = bytearray(path.read_bytes())
    data[20:28] = b"\xff" * 8  # inside the checksummed main header
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError) as refused:
        Ledger(path, read_only=True)
    assert not isinstance(refused.value, LedgerLockedError)
    assert "held by" not in str(refused.value)
    assert "Restore it from a copy" in str(refused.value)
