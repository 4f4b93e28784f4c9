"""The access log as evidence: created with the ledger, chained, covered by verify and by
the signed checkpoints; tampering with it is caught and named; nothing in the code changes
or deletes an entry; an erasure unlinks it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from ledger.access_log import ACCESS_CHAIN, AccessEntry, AccessLog, access_log_head
from ledger.checkpoints import Checkpointer, ledger_checkpoint_lines, parse_checkpoint
from ledger.erasure import erase_subject
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from ledger.verify import VerifyResult
from reference import ReferenceData
from tests.unit.test_tamper import (
    SIGNER,
    build_ledger,
    chain_failures,
    checkpoint_file,
    run_verify,
    tamper,
)

ENTRIES = 6
ROOT = Path(__file__).resolve().parents[2]


def entry(n: int, pseudonym: str | None = None) -> AccessEntry:
    return AccessEntry(
        actor=f"user-{n % 2}",
        role="investigator",
        action="query",
        reason=f"CASE-{n}",
        rows_returned=n,
        subject_pseudonym=pseudonym,
        query_text=f"SELECT * FROM disclosures LIMIT {n}",
        detail="format=csv ünïcödé" if n % 3 == 0 else None,
    )


def append_entries(path: Path, count: int = ENTRIES, *, checkpoint: bool = True) -> None:
    """``count`` entries, then (``checkpoint``) a signed checkpoint that covers them."""
    log = AccessLog()
    with Ledger(path) as ledger:
        for n in range(1, count + 1):
            log.append(ledger.con, entry(n))
        if checkpoint:
            Checkpointer(
                ledger, SIGNER, checkpoint_file(path), reference_version="test"
            ).checkpoint()


@pytest.fixture
def ledger_file(tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData) -> Path:
    path = build_ledger(tmp_path / "ledger.duckdb", key_store, reference)
    append_entries(path)
    return path


def access_failures(result: VerifyResult) -> set[tuple[str, int | None]]:
    return {(f.kind, f.seq) for f in result.failures if f.chain_id == ACCESS_CHAIN}


def test_a_new_ledger_has_the_access_log_for_readers(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    Ledger(path).close()
    with Ledger(path, read_only=True) as reader:
        assert reader.con.execute("SELECT count(*) FROM access_log").fetchall() == [(0,)]
        assert access_log_head(reader.con) is None


def test_an_untouched_access_log_verifies_and_its_head_is_reported(ledger_file: Path) -> None:
    result = run_verify(ledger_file)
    assert result.ok, [str(f) for f in result.failures]
    assert result.access_entries == ENTRIES
    with Ledger(ledger_file, read_only=True) as ledger:
        head = access_log_head(ledger.con)
    assert head is not None
    assert result.chains[ACCESS_CHAIN] == (ENTRIES, head[1].hex())


def test_the_last_checkpoint_signs_the_access_log_head(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        last = parse_checkpoint(ledger_checkpoint_lines(ledger)[-1])
        head = access_log_head(ledger.con)
    named = {h.chain_id: (h.length, h.head) for h in last.heads}
    assert head is not None and named[ACCESS_CHAIN] == head
    assert last.verify(SIGNER.public_key()) is None
    assert f"{ACCESS_CHAIN}={ENTRIES}:{head[1].hex()}" in checkpoint_file(ledger_file).read_text()


def test_checkpoints_written_before_the_access_log_still_verify(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """Entries no checkpoint covers yet, and lines that do not name the access log."""
    path = build_ledger(tmp_path / "ledger.duckdb", key_store, reference)
    append_entries(path, checkpoint=False)
    with Ledger(path, read_only=True) as ledger:
        lines = ledger_checkpoint_lines(ledger)
    assert lines and all(f" {ACCESS_CHAIN}=" not in line for line in lines)
    result = run_verify(path)
    assert result.ok, [str(f) for f in result.failures]
    assert result.chains[ACCESS_CHAIN][0] == ENTRIES


def test_the_checkpointer_writes_a_checkpoint_when_only_the_access_log_moved(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", key_store, reference)
    with Ledger(path) as ledger:
        now = [0]
        checkpointer = Checkpointer(
            ledger,
            SIGNER,
            checkpoint_file(path),
            reference_version="test",
            every_seconds=60,
            clock_ms=lambda: now[0],
        )
        now[0] = 120_000
        assert checkpointer.after_batch(0) is None  # nothing moved since the last one
        AccessLog().append(ledger.con, entry(1))
        written = checkpointer.after_batch(0)
        assert written is not None
        assert (ACCESS_CHAIN, 1) in {(h.chain_id, h.length) for h in written.heads}
        now[0] = 240_000
        assert checkpointer.after_batch(0) is None  # covered now
        AccessLog().append(ledger.con, entry(2))
        final = checkpointer.shutdown()
        assert final is not None
        assert (ACCESS_CHAIN, 2) in {(h.chain_id, h.length) for h in final.heads}


# -- tampering, each named as the access log's ----------------------------------------------
def test_an_altered_field_is_a_row_altered_at_its_seq(ledger_file: Path) -> None:
    tamper(ledger_file, "UPDATE access_log SET reason = 'nothing to see' WHERE seq = 3")
    result = run_verify(ledger_file)
    assert access_failures(result) == {("row altered", 3)}
    assert any("access_log seq 3: row altered" in str(f) for f in result.failures)


def test_a_changed_row_count_and_a_moved_time_are_caught(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        "UPDATE access_log SET rows_returned = 0 WHERE seq = 2",
        "UPDATE access_log SET accessed_at = accessed_at + INTERVAL 1 MILLISECOND WHERE seq = 5",
    )
    assert access_failures(run_verify(ledger_file)) == {("row altered", 2), ("row altered", 5)}


def test_a_sub_millisecond_time_is_caught(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        "UPDATE access_log SET accessed_at = accessed_at + INTERVAL 1 MICROSECOND WHERE seq = 4",
    )
    assert access_failures(run_verify(ledger_file)) == {("row altered", 4)}


def test_a_deleted_entry_is_a_row_deleted_at_its_seq(ledger_file: Path) -> None:
    tamper(ledger_file, "DELETE FROM access_log WHERE seq = 4")
    result = run_verify(ledger_file)
    assert access_failures(result) == {("row deleted", 4)}
    assert chain_failures(result) - {(ACCESS_CHAIN, "row deleted", 4)} == set()


def test_reordered_entries_are_rows_reordered(ledger_file: Path) -> None:
    tamper(
        ledger_file,
        "UPDATE access_log SET seq = CASE seq WHEN 2 THEN 100 WHEN 5 THEN 2 END "
        "WHERE seq IN (2, 5)",
        "UPDATE access_log SET seq = 5 WHERE seq = 100",
    )
    result = run_verify(ledger_file)
    assert access_failures(result) == {("rows reordered", 2)}
    (failure,) = [f for f in result.failures if f.chain_id == ACCESS_CHAIN]
    assert "seq 2 was written as seq 5" in failure.detail
    assert "seq 5 was written as seq 2" in failure.detail


def test_a_replaced_chain_hash_breaks_the_link(ledger_file: Path) -> None:
    tamper(ledger_file, "UPDATE access_log SET chain_hash = unhex(sha256('x')) WHERE seq = 3")
    assert access_failures(run_verify(ledger_file)) == {("row altered", 3)}


def test_a_truncated_access_log_fails_against_an_earlier_checkpoint(ledger_file: Path) -> None:
    tamper(ledger_file, f"DELETE FROM access_log WHERE seq > {ENTRIES - 2}")
    result = run_verify(ledger_file)
    assert access_failures(result) == {("chain truncated below a checkpoint", ENTRIES - 1)}


def test_an_emptied_access_log_fails_against_an_earlier_checkpoint(ledger_file: Path) -> None:
    tamper(ledger_file, "DELETE FROM access_log")
    result = run_verify(ledger_file)
    assert access_failures(result) == {("chain truncated below a checkpoint", 1)}


def test_a_rewritten_access_log_fails_against_its_checkpoint(ledger_file: Path) -> None:
    """A forger who recomputes every hash after a change: the checkpoint still shows it."""
    from ledger.access_log import ACCESS_LEAF_SELECT, access_leaf
    from ledger.chain import GENESIS, link_hash

    tamper(ledger_file, "UPDATE access_log SET actor = 'someone else' WHERE seq = 2")
    con = duckdb.connect(str(ledger_file))
    try:
        rows = con.execute(f"SELECT {ACCESS_LEAF_SELECT} FROM access_log ORDER BY seq")
        names = [d[0] for d in rows.description or []]
        previous = GENESIS
        for row in rows.fetchall():
            fields = dict(zip(names, row, strict=True))
            leaf = access_leaf(fields)
            previous = link_hash(previous, leaf)
            con.execute(
                "UPDATE access_log SET leaf_hash = ?, chain_hash = ? WHERE seq = ?",
                [leaf, previous, fields["seq"]],
            )
    finally:
        con.close()
    result = run_verify(ledger_file)
    assert access_failures(result) == {("chain rewritten since a checkpoint", ENTRIES)}


# -- no interface changes an entry ------------------------------------------------------------
def test_no_code_updates_or_deletes_the_access_log() -> None:
    """Only INSERT: no statement in the project's code changes or removes an entry (a lake's
    ``access_log_fence``, which serialises appends, is another table)."""
    writes = re.compile(
        r"(UPDATE\s+access_log|DELETE\s+FROM\s+access_log|TRUNCATE\s+access_log|"
        r"DROP\s+TABLE\s+(IF\s+EXISTS\s+)?access_log|ALTER\s+TABLE\s+access_log)\b",
        re.IGNORECASE,
    )
    packages = ("ledger", "reports", "consumers", "disclosure_ledger", "producers", "schemas")
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for package in packages
        for path in (ROOT / package).rglob("*.py")
        for match in writes.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def test_an_entry_cannot_be_appended_without_a_reason(tmp_path: Path) -> None:
    from ledger.errors import LedgerError

    with Ledger(tmp_path / "l.duckdb") as ledger:
        with pytest.raises(LedgerError, match="stated reason"):
            AccessLog().append(ledger.con, AccessEntry("a", "investigator", "query", " ", 0))
        assert ledger.con.execute("SELECT count(*) FROM access_log").fetchall() == [(0,)]


# -- erasure unlinks it -----------------------------------------------------------------------
def test_after_an_erasure_the_access_log_pseudonym_no_longer_follows_from_the_id(
    tmp_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    path = build_ledger(tmp_path / "ledger.duckdb", key_store, reference)
    subject = ("member", "member-1")
    pseudonym = key_store.pseudonym(*subject)
    assert pseudonym is not None
    with Ledger(path) as ledger:
        AccessLog().append(ledger.con, entry(1, pseudonym))
        recorded = ledger.con.execute("SELECT subject_pseudonym FROM access_log").fetchall()
        assert recorded == [(pseudonym,)]
        assert erase_subject(ledger, key_store, *subject, actor="dpo").erased
    # the id no longer gives the pseudonym the access log holds: no key, so no pseudonym,
    # and a key made afresh for the same id gives another
    assert key_store.pseudonym(*subject) is None
    assert key_store.pseudonyms([subject]) != [pseudonym]
    result = run_verify(path)
    assert result.ok, [str(f) for f in result.failures]  # the entry itself is unchanged
