"""Tampering with a ledger file directly through DuckDB, one kind per test, each detected
with the right kind and position; and random single-row edits, every one caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.pipeline import Ingestor, SourceMessage
from ledger.chain import GENESIS, chain_rows
from ledger.checkpoints import (
    CHECKPOINTS_DDL,
    Checkpointer,
    current_heads,
    ledger_checkpoint_lines,
    sign_checkpoint,
)
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import LEAF_SELECT, CheckpointSource, VerifyResult, verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CHAIN = f"{TOPIC}/0"
ROWS = 8
CODEC = EventCodec()
SIGNER = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
# verify scans a ledger in ranges of rows: the whole test ledger in one range, and ranges of
# 3 rows, so chains cross from one range to the next and are linked across them.
SCANS: dict[str, dict[str, Any]] = {
    "one range": {},
    "ranges of 3 rows": {"range_rows": 3},
}


def _message(offset: int, partition: int = 0) -> SourceMessage:
    event = make_event(
        subject={"id": f"member-{offset % 3}", "type": "member"},
        context={"note": f"row {offset}", "ticket": "T-é"},
    )
    return SourceMessage(TOPIC, partition, offset, b"key", CODEC.encode(event.to_avro()))


def build_ledger(
    path: Path,
    keys: SubjectKeyStore,
    reference: ReferenceData,
    *,
    rows: int = ROWS,
    checkpoint_every: int = 4,
) -> Path:
    """A ledger of ``rows`` rows in chain t.disclosures/0 (plus 2 in chain /1), checkpointed
    every ``checkpoint_every`` rows into ``path.checkpoints``."""
    with Ledger(path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            checkpoint_file(path),
            reference_version=reference.version,
            every_rows=checkpoint_every,
        )
        ingestor = Ingestor(ledger, keys, reference, checkpointer=checkpointer)
        for start in range(0, rows, 2):
            ingestor.ingest([_message(o) for o in range(start, min(start + 2, rows))])
        ingestor.ingest([_message(0, partition=1), _message(1, partition=1)])
        ingestor.shutdown()
    return path


def checkpoint_file(path: Path) -> Path:
    return path.with_name(path.name + ".checkpoints")


def run_verify(path: Path, *, scan: str = "one range", with_file: bool = True) -> VerifyResult:
    sources = (
        [CheckpointSource("file", checkpoint_file(path).read_text().splitlines())]
        if with_file
        else []
    )
    with Ledger(path, read_only=True) as ledger:
        return verify_ledger(
            ledger, checkpoints=sources, public_key=SIGNER.public_key(), **SCANS[scan]
        )


def chain_failures(result: VerifyResult) -> set[tuple[str, str, int | None]]:
    """(chain, kind, seq) of every failure that is not offset accounting."""
    return {(f.chain_id, f.kind, f.seq) for f in result.failures if not f.kind.startswith("offset")}


def tamper(path: Path, *statements: str, params: list[Any] | None = None) -> None:
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement, params or [])
    finally:
        con.close()


def recompute_chain(path: Path, chain: str) -> None:
    """What a forger with the code would do: recompute every leaf and link of a chain."""
    con = duckdb.connect(str(path))
    try:
        rows = (
            con.sql(
                f"SELECT {LEAF_SELECT} FROM disclosures WHERE chain_id = '{chain}' ORDER BY seq"
            )
            .to_arrow_table()
            .to_pylist()
        )
        leaves, links = chain_rows(rows, GENESIS)
        for row, leaf, link in zip(rows, leaves, links, strict=True):
            con.execute(
                "UPDATE disclosures SET leaf_hash = ?, chain_hash = ? "
                "WHERE chain_id = ? AND seq = ? AND event_id = ?::UUID",
                [leaf, link, chain, row["seq"], row["event_id"]],
            )
    finally:
        con.close()


@pytest.fixture
def ledger_file(tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData) -> Path:
    return build_ledger(tmp_path / "ledger.duckdb", key_store, reference)


# -- the untouched ledger ----------------------------------------------------------------
@pytest.mark.parametrize("scan", SCANS)
def test_an_untouched_ledger_verifies_with_its_checkpoints(ledger_file: Path, scan: str) -> None:
    result = run_verify(ledger_file, scan=scan)
    assert result.ok, [str(f) for f in result.failures]
    assert result.rows == ROWS + 2
    assert result.chains[CHAIN][0] == ROWS
    assert result.checkpoints >= 3 and result.signatures_checked


PLAIN_COLUMNS = ("context", "leaf_hash", "chain_hash")


def _compressions(path: Path) -> dict[str, set[str]]:
    """Column -> the compressions of its data segments on disk."""
    con = duckdb.connect(str(path))
    try:
        con.execute("CHECKPOINT")
        rows = con.execute(
            "SELECT column_name, compression FROM pragma_storage_info('disclosures') "
            "WHERE segment_type <> 'VALIDITY'"
        ).fetchall()
    finally:
        con.close()
    found: dict[str, set[str]] = {}
    for column, compression in rows:
        found.setdefault(str(column), set()).add(str(compression))
    return found


def test_hashes_and_contexts_are_stored_uncompressed(ledger_file: Path) -> None:
    """verify reads them without decompressing (store.py says why)."""
    found = _compressions(ledger_file)
    assert {column: found[column] for column in PLAIN_COLUMNS} == {
        column: {"Uncompressed"} for column in PLAIN_COLUMNS
    }


@pytest.mark.parametrize("scan", SCANS)
def test_a_ledger_whose_hashes_and_contexts_are_compressed_still_verifies(
    ledger_file: Path, scan: str
) -> None:
    """Ledgers created before the columns were stored plain keep their compression."""
    tamper(
        ledger_file,
        "SET force_compression = 'fsst'",  # DuckDB 1.5.5 stores random text plain otherwise
        "CREATE TABLE compressed AS SELECT * FROM disclosures",
        "DROP TABLE disclosures",
        "ALTER TABLE compressed RENAME TO disclosures",
    )
    assert _compressions(ledger_file)["context"] != {"Uncompressed"}
    result = run_verify(ledger_file, scan=scan)
    assert result.ok, [str(f) for f in result.failures]


@pytest.mark.parametrize("scan", SCANS)
def test_a_changed_derived_column_is_derived_data_altered_at_its_seq(
    ledger_file: Path, scan: str
) -> None:
    tamper(
        ledger_file,
        "UPDATE disclosures SET ccpa_mask = xor(ccpa_mask, 1) "
        f"WHERE chain_id = '{CHAIN}' AND seq = 3",
        "UPDATE disclosures SET subject_key = subject_key + 1 "
        f"WHERE chain_id = '{CHAIN}' AND seq = 5",
    )
    result = run_verify(ledger_file, scan=scan)
    assert chain_failures(result) == {
        (CHAIN, "derived data altered", 3),
        (CHAIN, "derived data altered", 5),
    }


# -- one kind of tampering per test ------------------------------------------------------
@pytest.mark.parametrize("scan", SCANS)
def test_one_changed_value_is_row_altered_at_its_seq(ledger_file: Path, scan: str) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET recipient_id = 'acme' WHERE chain_id = '{CHAIN}' AND seq = 3",
    )
    result = run_verify(ledger_file, scan=scan)
    assert chain_failures(result) == {(CHAIN, "row altered", 3)}


@pytest.mark.parametrize("scan", SCANS)
def test_a_deleted_row_is_row_deleted_at_its_seq(ledger_file: Path, scan: str) -> None:
    tamper(ledger_file, f"DELETE FROM disclosures WHERE chain_id = '{CHAIN}' AND seq = 5")
    result = run_verify(ledger_file, scan=scan)
    assert chain_failures(result) == {(CHAIN, "row deleted", 5)}
    assert any(f.kind == "offset missing" and "offset 4 " in f.detail for f in result.failures)


@pytest.mark.parametrize("scan", SCANS)
def test_a_forged_row_with_a_recomputed_chain_is_row_inserted(ledger_file: Path, scan: str) -> None:
    # A copy of seq 3 with another recipient and event id, placed right after it (claiming
    # the same Kafka offset), the rows after it renumbered, every hash recomputed.
    tamper(
        ledger_file,
        f"UPDATE disclosures SET seq = seq + 1 WHERE chain_id = '{CHAIN}' AND seq > 3",
        f"INSERT INTO disclosures SELECT * REPLACE (4 AS seq, uuid() AS event_id, "
        f"'acme' AS recipient_id) FROM disclosures WHERE chain_id = '{CHAIN}' AND seq = 3",
    )
    recompute_chain(ledger_file, CHAIN)
    result = run_verify(ledger_file, scan=scan)
    failures = chain_failures(result)
    assert (CHAIN, "row inserted", 4) in failures
    assert (CHAIN, "chain rewritten since a checkpoint", 4) in failures
    assert not {f for f in failures if f[1] in {"row altered", "row deleted", "rows reordered"}}
    assert any(f.kind == "offset doubled" for f in result.failures)


@pytest.mark.parametrize("scan", SCANS)
def test_two_swapped_rows_are_rows_reordered(ledger_file: Path, scan: str) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET seq = CASE seq WHEN 2 THEN 6 ELSE 2 END "
        f"WHERE chain_id = '{CHAIN}' AND seq IN (2, 6)",
    )
    result = run_verify(ledger_file, scan=scan)
    assert chain_failures(result) == {(CHAIN, "rows reordered", 2)}
    (failure,) = [f for f in result.failures if f.kind == "rows reordered"]
    assert "seq 2, 6" in failure.detail


@pytest.mark.parametrize("scan", SCANS)
def test_swapped_rows_with_a_recomputed_chain_are_still_rows_reordered(
    ledger_file: Path, scan: str
) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET seq = CASE seq WHEN 2 THEN 3 ELSE 2 END "
        f"WHERE chain_id = '{CHAIN}' AND seq IN (2, 3)",
    )
    recompute_chain(ledger_file, CHAIN)
    failures = chain_failures(run_verify(ledger_file, scan=scan))
    assert (CHAIN, "rows reordered", 2) in failures
    assert (CHAIN, "chain rewritten since a checkpoint", 4) in failures


@pytest.mark.parametrize("scan", SCANS)
def test_a_truncated_tail_is_caught_by_the_checkpoints(ledger_file: Path, scan: str) -> None:
    tamper(ledger_file, f"DELETE FROM disclosures WHERE chain_id = '{CHAIN}' AND seq > 5")
    result = run_verify(ledger_file, scan=scan)
    # the derived chain_heads table still names seq 8 as the head: one more witness
    assert chain_failures(result) == {
        (CHAIN, "chain truncated below a checkpoint", 6),
        (CHAIN, "derived data altered", None),
    }
    (failure,) = [f for f in result.failures if f.kind.startswith("chain truncated")]
    assert "recorded 8 rows" in failure.detail and "holds 5" in failure.detail


@pytest.mark.parametrize("scan", SCANS)
def test_a_chain_rewritten_and_re_signed_with_a_new_key_is_caught(
    ledger_file: Path, scan: str
) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET recipient_id = 'acme' WHERE chain_id = '{CHAIN}' AND seq = 6",
    )
    recompute_chain(ledger_file, CHAIN)
    forger = Ed25519PrivateKey.generate()
    with Ledger(ledger_file) as ledger:
        lines = len(ledger_checkpoint_lines(ledger))
        ledger.con.execute("DELETE FROM checkpoints")
        ledger.con.execute("DELETE FROM checkpoint_notes")  # the signed notes too
        forged = sign_checkpoint(forger, current_heads(ledger), "forged", 1_767_225_600_000)
        ledger.con.execute(CHECKPOINTS_DDL)
        ledger.con.execute(
            "INSERT INTO checkpoints VALUES (now()::TIMESTAMP, 'forged', ?, 2, ?)",
            [forged.key_id, forged.line],
        )
    assert lines >= 2
    # With only the ledger: its one checkpoint is not signed by the deployment's key.
    only_ledger = run_verify(ledger_file, scan=scan, with_file=False)
    # (and the derived chain_heads table still holds the head as it was before the rewrite)
    assert chain_failures(only_ledger) == {
        ("checkpoints", "bad signature", None),
        (CHAIN, "derived data altered", None),
    }
    # With the published checkpoint file: the chain no longer extends what was signed.
    failures = chain_failures(run_verify(ledger_file, scan=scan))
    assert (CHAIN, "chain rewritten since a checkpoint", 8) in failures
    assert ("checkpoints", "bad signature", None) in failures
    assert not {f for f in failures if f[1] in {"row altered", "row deleted", "row inserted"}}
    # rows 1..4 still match the checkpoint taken at 4 rows: the detail says where to look
    rewritten = [f for f in run_verify(ledger_file).failures if f.kind.startswith("chain rew")]
    assert any("rows up to seq 4 still match" in f.detail for f in rewritten)


def test_a_bad_checkpoint_line_in_the_file_is_a_bad_signature(ledger_file: Path) -> None:
    lines = checkpoint_file(ledger_file).read_text().splitlines()
    lines[0] = lines[0].replace("=4:", "=3:")  # the first checkpoint said 4 rows in chain 0
    checkpoint_file(ledger_file).write_text("\n".join(lines) + "\n")
    result = run_verify(ledger_file)
    assert [(f.chain_id, f.kind) for f in result.failures] == [("checkpoints", "bad signature")]
    assert "file, checkpoint 1" in result.failures[0].detail


@pytest.mark.parametrize("scan", SCANS)
def test_a_sub_millisecond_timestamp_edit_is_caught(ledger_file: Path, scan: str) -> None:
    """+250 µs keeps the millisecond epoch_ms reads (only the whole-millisecond check sees
    it); +1,750 µs moves it to another (the leaf differs too)."""
    tamper(
        ledger_file,
        f"UPDATE disclosures SET occurred_at = occurred_at + INTERVAL 250 MICROSECOND "
        f"WHERE chain_id = '{CHAIN}' AND seq = 2",
        f"UPDATE disclosures SET ingested_at = ingested_at + INTERVAL 1750 MICROSECOND "
        f"WHERE chain_id = '{CHAIN}' AND seq = 4",
    )
    failures = run_verify(ledger_file, scan=scan).failures
    assert sorted((f.chain_id, f.kind, f.seq) for f in failures) == [
        (CHAIN, "row altered", 2),
        (CHAIN, "row altered", 4),
        (CHAIN, "row altered", 4),
    ]


def test_verify_reports_progress(ledger_file: Path) -> None:
    seen: list[tuple[int, int]] = []
    with Ledger(ledger_file, read_only=True) as ledger:
        verify_ledger(
            ledger,
            range_rows=3,
            progress=lambda done, total: seen.append((done, total)),
        )
    assert seen[-1] == (ROWS + 2, ROWS + 2) and len(seen) >= 3
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})


# -- ranges of rows ----------------------------------------------------------------------
def test_every_range_size_finds_what_one_range_finds(ledger_file: Path) -> None:
    """Chains cross from one range of rows to the next: every range size must link them as
    one range does, and find the same failures at the same places."""
    with Ledger(ledger_file, read_only=True) as ledger:
        for rows in range(1, ROWS + 4):
            assert verify_ledger(ledger, range_rows=rows).ok, rows
    tamper(
        ledger_file,
        f"UPDATE disclosures SET purpose = 'x' WHERE chain_id = '{CHAIN}' AND seq = 3",
        f"DELETE FROM disclosures WHERE chain_id = '{CHAIN}' AND seq = 6",
        f"UPDATE disclosures SET ccpa_mask = xor(ccpa_mask, 4) WHERE chain_id = '{CHAIN}' "
        "AND seq = 2",
    )
    whole = chain_failures(run_verify(ledger_file))
    assert (CHAIN, "row altered", 3) in whole and (CHAIN, "row deleted", 6) in whole
    assert (CHAIN, "derived data altered", 2) in whole
    sources = [CheckpointSource("file", checkpoint_file(ledger_file).read_text().splitlines())]
    with Ledger(ledger_file, read_only=True) as ledger:
        for rows in range(1, ROWS + 4):
            result = verify_ledger(
                ledger,
                checkpoints=sources,
                public_key=SIGNER.public_key(),
                range_rows=rows,
            )
            assert chain_failures(result) == whole, rows


def test_odd_values_a_forger_could_write_hash_alike_in_every_scan(ledger_file: Path) -> None:
    """Texts of every length around DuckDB's inline-string limit (12 bytes), null and empty
    list items, edge UUIDs and times before 1970, written and rehashed as a forger would,
    must encode in the scan's SQL as ledger.chain encodes them."""
    uuids = [
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "80000000-0000-0000-8000-000000000000",
        "7fffffff-ffff-ffff-7fff-ffffffffffff",
    ]
    lists: list[list[str | None]] = [[], ["a", None, ""], ["c" * 13, "d"]]
    con = duckdb.connect(str(ledger_file))
    try:
        con.execute("DELETE FROM checkpoints")
        con.execute("DELETE FROM checkpoint_notes")  # the signed notes too
        for seq in range(1, ROWS + 1):
            con.execute(
                "UPDATE disclosures SET purpose = ?, recipient_id = ?, legal_reference = ?, "
                "data_categories = ?, event_id = ?::UUID, occurred_at = ?::TIMESTAMP, "
                "sensitive = ? WHERE chain_id = ? AND seq = ?",
                [
                    "y" * (4 * seq + 2),  # 6 to 34 bytes
                    "é" * (seq - 1) + "x" * (seq * 3 % 7) + "\x00" * (seq == ROWS),
                    None if seq % 2 else "§ " + "r" * seq,
                    lists[seq % 3],
                    uuids[seq % 4],
                    f"1960-01-0{seq} 00:00:00.123",
                    seq % 2 == 0,
                    CHAIN,
                    seq,
                ],
            )
    finally:
        con.close()
    recompute_chain(ledger_file, CHAIN)
    tamper(  # and the head the reports' derived table keeps
        ledger_file,
        "UPDATE chain_heads h SET head_chain_hash = d.chain_hash FROM disclosures d "
        "WHERE d.chain_id = h.chain_id AND d.seq = h.head_seq",
    )
    for scan in SCANS:
        result = run_verify(ledger_file, scan=scan, with_file=False)
        assert result.ok, (scan, [str(f) for f in result.failures])
    tamper(
        ledger_file,
        f"UPDATE disclosures SET event_id = '{uuids[2][:-1]}1'::UUID "
        f"WHERE chain_id = '{CHAIN}' AND seq = 4",
    )
    assert chain_failures(run_verify(ledger_file, with_file=False)) == {(CHAIN, "row altered", 4)}


def test_an_exception_in_the_progress_callback_stops_the_scan(ledger_file: Path) -> None:
    """Ctrl-C or a failing callback ends the verify with that exception (the ranges not yet
    read are dropped), and the ledger can be verified again afterwards."""

    class Stop(Exception):
        pass

    def stop(done: int, total: int) -> None:
        raise Stop(done)

    with Ledger(ledger_file, read_only=True) as ledger:
        with pytest.raises(Stop):
            verify_ledger(ledger, range_rows=1, progress=stop)
        assert verify_ledger(ledger, range_rows=1).ok


def test_a_column_whose_type_was_altered_still_has_its_edit_found(ledger_file: Path) -> None:
    """A forger who changes a column's type (event_id to text) and writes what is no longer
    a UUID must still meet "row altered", not an error: the leaf encodes the event id as its
    text, whatever the column's type."""
    tamper(
        ledger_file,
        "ALTER TABLE disclosures ALTER event_id TYPE VARCHAR",
        f"UPDATE disclosures SET event_id = 'not-a-uuid' WHERE chain_id = '{CHAIN}' AND seq = 3",
    )
    result = run_verify(ledger_file)
    assert chain_failures(result) == {(CHAIN, "row altered", 3)}


def _a_writer_can_open(path: Path) -> bool:
    """Whether another process can open the ledger file as its writer."""
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(path)!r}).close()"],
        capture_output=True,
        text=True,
        check=False,
    )
    return opened.returncode == 0


def test_the_file_stays_locked_against_writers_until_the_verified_ledger_closes(
    ledger_file: Path,
) -> None:
    """verify reads through the ledger's own connection: while the verified ledger is open,
    no writer can open the file under it."""
    with Ledger(ledger_file, read_only=True) as ledger:
        assert verify_ledger(ledger).ok
        assert not _a_writer_can_open(ledger_file)
    assert _a_writer_can_open(ledger_file)


def test_the_writer_verifies_its_own_ledger(ledger_file: Path) -> None:
    with Ledger(ledger_file) as ledger:
        assert verify_ledger(ledger).ok


# -- random single-row edits -------------------------------------------------------------
@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory, reference: ReferenceData) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("pristine")
    with SubjectKeyStore(folder / "keys.sqlite", b"k" * 32) as keys:
        yield build_ledger(folder / "ledger.duckdb", keys, reference)


TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8)


def _changed(column: str, kind: str, value: Any, draw: Callable[..., Any]) -> tuple[str, Any]:
    """A SQL expression and parameter that give ``column`` a different value."""
    if kind in {"VARCHAR"}:
        new = draw(TEXT.filter(lambda t: t != value))
        return "?", new
    if kind in {"BIGINT", "INTEGER"}:
        delta = draw(st.integers(min_value=-5, max_value=5).filter(lambda d: d != 0))
        return f"{column} + ?", delta
    if kind in {"USMALLINT", "UBIGINT"}:  # derived columns (ledger/derived.py)
        return f"xor({column}, ?)", draw(st.integers(min_value=1, max_value=255))
    if kind == "BOOLEAN":
        return "NOT " + column + " AND ?", True
    if kind == "VARCHAR[]":
        new = draw(st.lists(TEXT, max_size=3).filter(lambda v: v != value))
        return "?::VARCHAR[]", new
    if kind == "TIMESTAMP":
        ms = draw(st.integers(min_value=-(10**9), max_value=10**9).filter(lambda d: d != 0))
        return f"{column} + to_milliseconds(?)", ms
    if kind == "UUID":
        return "?::UUID", str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    if kind == "BLOB":
        new = draw(st.binary(min_size=32, max_size=32).filter(lambda b: b != value))
        return "?", new
    raise AssertionError(kind)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_every_random_single_row_edit_is_caught(
    pristine: Path, tmp_path: Path, data: st.DataObject
) -> None:
    path = tmp_path / f"edit-{uuid.uuid4().hex}.duckdb"
    shutil.copy(pristine, path)
    shutil.copy(checkpoint_file(pristine), checkpoint_file(path))
    con = duckdb.connect(str(path))
    try:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'disclosures' "
            "ORDER BY column_index"
        ).fetchall()
        column, kind = data.draw(st.sampled_from(columns), label="column")
        seq = data.draw(st.integers(min_value=1, max_value=ROWS), label="seq")
        value = con.execute(
            f"SELECT {column} FROM disclosures WHERE chain_id = ? AND seq = ?", [CHAIN, seq]
        ).fetchall()[0][0]
        expression, parameter = _changed(column, kind, value, data.draw)
        con.execute(
            f"UPDATE disclosures SET {column} = {expression} WHERE chain_id = ? AND seq = ?",
            [parameter, CHAIN, seq],
        )
    finally:
        con.close()
    for scan in SCANS:
        result = run_verify(path, scan=scan)
        assert not result.ok, f"an edit of {column} at seq {seq} went unnoticed ({scan})"


def test_offset_accounting_still_names_a_missing_or_doubled_offset(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        "INSERT INTO quarantine (topic, kafka_partition, kafka_offset, message_key, "
        "message_value, error, quarantined_at) "
        "VALUES ('t.disclosures', 0, 3, NULL, NULL, 'forged', now())",
        "UPDATE offsets SET next_offset = next_offset + 1 WHERE kafka_partition = 1",
    )
    result = run_verify(ledger_file)
    assert sorted((f.kind, f.detail.split(" of ")[0]) for f in result.failures) == [
        ("offset doubled", "offset 3"),
        ("offset missing", "offset 2"),
    ]


def test_an_edited_chain_hash_is_row_altered_at_that_row_only(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        f"UPDATE disclosures SET chain_hash = unhex(sha256('x')) WHERE chain_id = '{CHAIN}' "
        "AND seq = 5",
    )
    assert chain_failures(run_verify(ledger_file, with_file=False)) == {(CHAIN, "row altered", 5)}
