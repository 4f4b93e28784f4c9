"""The ingest pipeline on raw bytes and a real DuckDB file (no broker needed)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from ledger.chain import GENESIS, link_hash
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import read_quarantine
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from reports.ccpa import ccpa_report
from schemas.codec import EventCodec
from tests.conftest import LedgerLocation, raw_connection
from tests.unit.events import make_event
from tests.unit.ledger_rows import record_coverage_in

TOPIC = "t.disclosures"
CODEC = EventCodec()


def _message(offset: int, value: bytes | None, partition: int = 0) -> SourceMessage:
    return SourceMessage(TOPIC, partition, offset, b"key", value)


def _encoded(**changes: object) -> bytes:
    return CODEC.encode(make_event(**changes).to_avro())


def _ingestor(ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData) -> Ingestor:
    return Ingestor(ledger, keys, reference, clock_ms=lambda: 1_767_225_600_000)


def test_batch_becomes_chained_rows_and_offsets(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    values = [_encoded(subject={"id": f"member-{i}", "type": "member"}) for i in range(3)]
    with Ledger(ledger_location) as ledger:
        stats = _ingestor(ledger, key_store, reference).ingest(
            [_message(i, v) for i, v in enumerate(values)]
        )
        assert (stats.accepted, stats.duplicates, stats.quarantined) == (3, 0, 0)
        rows = ledger.con.execute(
            "SELECT seq, kafka_offset, leaf_hash, chain_hash, reference_version, ccpa_letters "
            "FROM disclosures ORDER BY seq"
        ).fetchall()
        assert [(r[0], r[1]) for r in rows] == [(1, 0), (2, 1), (3, 2)]
        previous = GENESIS
        for row in rows:
            assert bytes(row[3]) == link_hash(previous, bytes(row[2]))
            previous = bytes(row[3])
        assert rows[0][4] == reference.version
        assert rows[0][5] == sorted(reference.ccpa_letters("user.financial"))
        assert ledger.stored_offsets(TOPIC) == {0: 3}
        assert verify_ledger(ledger).ok


def test_duplicates_within_and_across_batches_point_at_the_original(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    first = _encoded()
    with Ledger(ledger_location) as ledger:
        ingestor = _ingestor(ledger, key_store, reference)
        ingestor.ingest([_message(0, first), _message(1, first)])
        ingestor.ingest([_message(2, first)])
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchone() == (1,)
        duplicates = ledger.con.execute(
            "SELECT kafka_offset, original_chain_id, original_seq FROM duplicates ORDER BY 1"
        ).fetchall()
        assert duplicates == [(1, f"{TOPIC}/0", 1), (2, f"{TOPIC}/0", 1)]
        assert ledger.stored_offsets(TOPIC) == {0: 3}
        assert verify_ledger(ledger).ok


def test_poison_and_reference_violations_are_quarantined_with_raw_bytes(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    poison = b"\xc3\x01garbage"
    unknown_key = _encoded(data_categories=["user.not_a_category"])
    # registered as a payment provider, named by the event as a service provider
    miscategorised = _encoded(recipient={"id": "escalion", "category": "service_provider"})
    with Ledger(ledger_location) as ledger:
        stats = _ingestor(ledger, key_store, reference).ingest(
            [
                _message(0, poison),
                _message(1, _encoded()),
                _message(2, miscategorised),
                _message(3, unknown_key),
                _message(4, None),
            ]
        )
        assert (stats.accepted, stats.quarantined) == (1, 4)
        rows = [(q.offset, q.value, q.error) for q in read_quarantine(ledger, key_store)]
        assert rows[0][1] == poison
        assert rows[1][1] == miscategorised
        assert "escalion" in rows[1][2] and "recipients.yaml" in rows[1][2]
        assert "user.not_a_category" in rows[2][2] and "categories.yaml" in rows[2][2]
        assert "no value" in rows[3][2]
        assert ledger.stored_offsets(TOPIC) == {0: 5}
        assert verify_ledger(ledger).ok


def test_unregistered_recipient_is_recorded_flagged_and_counted_by_its_category(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """A disclosure to a recipient missing from the registry happened: it is evidence,
    kept in the chain, flagged, and reported under the category the event carries."""
    unregistered = make_event(
        recipient={"id": "acme-analytics", "category": "service_provider"},
        data_categories=["user.device.ip_address"],
        purpose="analytics.reporting",
    )
    with Ledger(ledger_location) as ledger:
        stats = _ingestor(ledger, key_store, reference).ingest(
            [_message(0, _encoded()), _message(1, CODEC.encode(unregistered.to_avro()))]
        )
        assert (stats.accepted, stats.quarantined) == (2, 0)
        assert read_quarantine(ledger, key_store) == []
        row = ledger.con.execute(
            "SELECT recipient_id, recipient_category, flags, ccpa_letters, declared "
            "FROM disclosures WHERE event_id = ?",
            [str(unregistered.event_id)],
        ).fetchone()
        assert row is not None
        recipient, category, flags, letters, _ = row
        assert (recipient, category) == ("acme-analytics", "service_provider")
        assert flags[0] == "unregistered_recipient"
        assert letters == sorted(reference.ccpa_letters("user.device.ip_address"))
        assert verify_ledger(ledger).ok
        record_coverage_in(ledger.con, datetime(2026, 4, 2))  # the sources' watermarks
        report = ccpa_report(ledger, date(2026, 4, 1))
    counted = {c.letter: c.recipient_categories for c in report.business_purpose}
    assert all("service_provider" in counted[letter] for letter in letters)


def test_restart_continues_each_chain_where_the_ledger_left_it(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_location) as ledger:
        _ingestor(ledger, key_store, reference).ingest(
            [_message(0, _encoded()), _message(0, _encoded(), partition=1)]
        )
    with Ledger(ledger_location) as ledger:
        _ingestor(ledger, key_store, reference).ingest([_message(1, _encoded())])
        assert ledger.con.execute(
            "SELECT chain_id, seq, kafka_offset FROM disclosures ORDER BY ALL"
        ).fetchall() == [(f"{TOPIC}/0", 1, 0), (f"{TOPIC}/0", 2, 1), (f"{TOPIC}/1", 1, 0)]
        assert verify_ledger(ledger).ok


def test_no_raw_subject_id_in_any_column_of_any_table(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    secret_id = "member-8843-unique-raw-id"
    with Ledger(ledger_location) as ledger:
        accepted = _encoded(subject={"id": secret_id, "type": "member"})
        # a rejected message keyed by the subject id, its body naming them too
        rejected = _encoded(
            subject={"id": secret_id, "type": "member"}, purpose="marketing.mind_reading"
        )
        _ingestor(ledger, key_store, reference).ingest(
            [
                _message(0, accepted),
                SourceMessage(TOPIC, 0, 1, secret_id.encode(), rejected),
            ]
        )
        assert ledger.con.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        tables = [
            r[0] for r in ledger.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
        assert "quarantine" in tables
        for table in tables:
            hits = ledger.con.execute(
                f"SELECT count(*) FROM {table} t WHERE contains(CAST(t AS VARCHAR), ?)",
                [secret_id],
            ).fetchone()
            assert hits == (0,), table
        # nothing is lost: the deployment secret's holder gets the raw bytes back
        (held,) = read_quarantine(ledger, key_store)
        assert (held.key, held.value) == (secret_id.encode(), rejected)
        pseudonym = ledger.con.execute("SELECT subject_pseudonym FROM disclosures").fetchone()
        assert pseudonym == (key_store.pseudonym("member", secret_id),)


def test_tampering_is_detected(
    ledger_location: LedgerLocation, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_location) as ledger:
        _ingestor(ledger, key_store, reference).ingest([_message(i, _encoded()) for i in range(4)])
    con = raw_connection(ledger_location)
    con.execute("UPDATE disclosures SET recipient_id = 'someone-else' WHERE seq = 2")
    con.execute("DELETE FROM disclosures WHERE seq = 4")
    con.close()
    with Ledger(ledger_location, read_only=True) as ledger:
        result = verify_ledger(ledger)
    kinds = {(f.kind, f.seq) for f in result.failures}
    assert ("row altered", 2) in kinds
    assert any(f.kind == "offset missing" and "offset 3 " in f.detail for f in result.failures)
    assert not result.ok


def test_second_writer_is_refused_naming_file_and_process(ledger_path: Path) -> None:
    import subprocess
    import sys

    from ledger.errors import LedgerLockedError

    with Ledger(ledger_path):
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from ledger.store import Ledger\n"
                "try:\n    Ledger(Path(sys.argv[1]))\nexcept Exception as e:\n"
                "    print(type(e).__name__, e)",
                str(ledger_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    assert probe.stdout.startswith(LedgerLockedError.__name__)
    assert str(ledger_path) in probe.stdout and "process" in probe.stdout


@pytest.mark.parametrize("read_only", [True])
def test_missing_ledger_file_is_a_clear_error(tmp_path: Path, read_only: bool) -> None:
    from ledger.errors import LedgerError

    with pytest.raises(LedgerError, match="does not exist"):
        Ledger(tmp_path / "nope.duckdb", read_only=read_only)


def test_sealed_quarantine_bytes_open_only_with_the_key_and_at_their_own_row() -> None:
    from ledger.errors import LedgerError
    from ledger.quarantine import quarantine_key, seal, unseal

    key = quarantine_key(b"s" * 32)
    sealed = seal(key, TOPIC, 0, 7, "value", b"raw bytes")
    assert sealed is not None and b"raw bytes" not in sealed
    assert unseal(key, TOPIC, 0, 7, "value", sealed) == b"raw bytes"
    assert seal(key, TOPIC, 0, 7, "key", None) is None
    with pytest.raises(LedgerError, match="does not open"):
        unseal(quarantine_key(b"t" * 32), TOPIC, 0, 7, "value", sealed)
    with pytest.raises(LedgerError, match="does not open"):
        unseal(key, TOPIC, 0, 8, "value", sealed)  # moved to another offset
    with pytest.raises(LedgerError, match="does not open"):
        unseal(key, TOPIC, 0, 7, "key", sealed)  # swapped between key and value


def _row_groups(ledger: Ledger) -> list[tuple[int, int, list[int]]]:
    return [
        (int(group), int(rows), list(blocks))
        for group, rows, blocks in ledger.con.execute(
            "SELECT row_group_id, max(count) FILTER (WHERE column_id = 0), "
            "list(DISTINCT block_id ORDER BY block_id) FILTER (WHERE block_id >= 0) "
            "FROM pragma_storage_info('disclosures') GROUP BY ALL ORDER BY 1"
        ).fetchall()
    ]


def test_checkpoints_never_rewrite_rows_already_on_disk(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """The consumer's memory must not grow with the ledger: a checkpoint adds the new rows
    as row groups and leaves earlier ones as they are (DuckDB's vacuum would merge them,
    reading back and rewriting more of the ledger as it grows), and DuckDB's buffer pool is
    bounded instead of 80% of the machine's memory."""
    with Ledger(ledger_path) as ledger:
        ingestor = _ingestor(ledger, key_store, reference)
        layouts = []
        for batch in range(3):
            ingestor.ingest([_message(batch * 4 + i, _encoded()) for i in range(4)])
            ledger.con.execute("CHECKPOINT")
            layouts.append(_row_groups(ledger))
        assert [[rows for _, rows, _ in layout] for layout in layouts] == [[4], [4, 4], [4, 4, 4]]
        assert layouts[2][:2] == layouts[1] and layouts[1][:1] == layouts[0]
        limit = ledger.con.execute(
            "SELECT value FROM duckdb_settings() WHERE name = 'memory_limit'"
        ).fetchall()[0][0]
        assert limit.endswith(("MiB", "KiB")), limit
        assert verify_ledger(ledger).ok
