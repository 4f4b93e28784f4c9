"""Derived data (ledger/derived.py): written with the rows, migrated into older files, and
every kind of disagreement with the hashed columns named by ``check_derived``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from disclosure_ledger.cli import main
from ledger import derived
from ledger.derived import check_derived, has_derived, rebuild_heavy, subject_lookup
from ledger.errors import LedgerError
from ledger.store import (
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Batch,
    Ledger,
    empty,
)
from reports.ccpa import ccpa_report, render_ccpa
from reports.subject import subject_report
from tests.unit.ledger_rows import CHAIN, TOPIC, disclosure_row, write_ledger

HEAVY = "ab" * 32  # a pseudonym as the consumer writes them: 64 hex digits
OTHER = "cd" * 32
CHAIN_1 = f"{TOPIC}/1"


def _mask(letters: list[str]) -> int:
    """The definition, independently of the SQL that writes and checks it."""
    mask = 0
    for letter in letters:
        known = len(letter) == 1 and letter in derived.LETTERS
        mask |= 1 << (derived.LETTERS.index(letter) if known else 12)
    return mask


def _key(pseudonym: str) -> int:
    if re.fullmatch("[0-9a-f]{16}", pseudonym[:16]):
        return int(pseudonym[:16], 16)
    return int(hashlib.md5(pseudonym.encode()).hexdigest()[:16], 16)


def _rows() -> list[dict[str, object]]:
    """Chain /0: HEAVY's rows 1-3 (A B; none; B), OTHER's 4 (K), subject-1's 5 (I J);
    chain /1: HEAVY's rows 1-3 (L A L; Z; C to H)."""
    rows = [
        disclosure_row(
            subject_pseudonym=HEAVY,
            ccpa_letters=letters,
            occurred_at=datetime(2025, 6, day, 12),
            chain_id=CHAIN if day % 2 else CHAIN_1,
        )
        for day, letters in enumerate(
            (["A", "B"], ["L", "A", "L"], [], ["Z"], ["B"], ["C", "D", "E", "F", "G", "H"]),
            start=1,
        )
    ]
    rows += [
        disclosure_row(subject_pseudonym=OTHER, ccpa_letters=["K"]),
        disclosure_row(subject_pseudonym="subject-1", ccpa_letters=["I", "J"]),
    ]
    return rows


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    path = write_ledger(tmp_path / "ledger.duckdb", _rows())
    with Ledger(path) as ledger:
        ledger.con.execute("BEGIN TRANSACTION")
        rebuild_heavy(ledger.con, heavy_rows=3)  # HEAVY has 6 rows, the others 1
        ledger.con.execute("COMMIT")
    return path


def _check(path: Path) -> list[tuple[str, int | None, str]]:
    with Ledger(path, read_only=True) as ledger:
        return check_derived(ledger)


def _sql(path: Path, *statements: str) -> None:
    """Tamper directly through DuckDB, as anyone with the file could."""
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def test_the_writer_derives_masks_keys_heads_and_the_heavy_copy(ledger_file: Path) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        con = ledger.con
        rows = con.execute(
            "SELECT ccpa_letters, ccpa_mask, subject_pseudonym, subject_key FROM disclosures"
        ).fetchall()
        heads = con.execute("SELECT * FROM chain_heads ORDER BY chain_id").fetchall()
        actual = con.execute(
            "SELECT chain_id, seq, chain_hash FROM disclosures "
            "QUALIFY seq = max(seq) OVER (PARTITION BY chain_id) ORDER BY chain_id"
        ).fetchall()
        heavy = con.execute("SELECT subject_key, subject_pseudonym FROM heavy_subjects").fetchall()
        copied = con.execute("SELECT count(*) FROM heavy_subject_rows").fetchall()
        assert check_derived(ledger) == []
    assert [(m, k) for _, m, _, k in rows] == [(_mask(ls), _key(p)) for ls, _, p, _ in rows]
    assert {m for _, m, _, _ in rows} >= {0, 1 << 12, 0b100000000001}  # [], ["Z"], A and L
    assert heads == actual and len(heads) == 2
    assert heavy == [(_key(HEAVY), HEAVY)]
    assert copied == [(6,)]


def test_appends_move_the_heads_and_extend_the_heavy_copy(ledger_file: Path) -> None:
    write_ledger(ledger_file, [disclosure_row(subject_pseudonym=HEAVY, ccpa_letters=["A"])] * 2)
    with Ledger(ledger_file, read_only=True) as ledger:
        assert ledger.con.execute("SELECT count(*) FROM heavy_subject_rows").fetchall() == [(8,)]
        assert ledger.con.execute(
            f"SELECT head_seq FROM chain_heads WHERE chain_id = '{CHAIN}'"
        ).fetchall() == [(7,)]
    assert _check(ledger_file) == []


def test_a_pseudonym_colliding_with_a_heavy_subjects_key_drops_it_from_the_heavy_set(
    ledger_file: Path,
) -> None:
    twin = HEAVY[:16] + "0" * 48  # same subject_key, another person
    write_ledger(ledger_file, [disclosure_row(subject_pseudonym=twin)])
    with Ledger(ledger_file, read_only=True) as ledger:
        assert ledger.con.execute("SELECT count(*) FROM heavy_subjects").fetchall() == [(0,)]
        assert ledger.con.execute("SELECT count(*) FROM heavy_subject_rows").fetchall() == [(0,)]
        assert not subject_lookup(ledger.con.cursor(), HEAVY)[1]
        assert check_derived(ledger) == []
    with Ledger(ledger_file) as ledger:  # and a rebuild leaves the shared key out
        ledger.con.execute("BEGIN TRANSACTION")
        rebuild_heavy(ledger.con, heavy_rows=1)
        ledger.con.execute("COMMIT")
        keys = ledger.con.execute("SELECT subject_key FROM heavy_subjects").fetchall()
    assert (_key(HEAVY),) not in keys and len(keys) == 2  # OTHER and subject-1


def test_the_writer_chooses_the_heavy_set_afresh_when_it_opens_a_grown_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(derived, "REBUILD_MIN_ROWS", 4)
    monkeypatch.setattr(derived, "HEAVY_ROWS", 3)
    path = write_ledger(tmp_path / "l.duckdb", _rows()[:2])
    write_ledger(path, _rows()[2:])  # 8 rows now: grown by 8 >= 4, but appends never choose
    with Ledger(path, read_only=True) as ledger:
        assert ledger.con.execute("SELECT count(*) FROM heavy_subjects").fetchall() == [(0,)]
    with Ledger(path):  # the writer, opening, does
        pass
    with Ledger(path, read_only=True) as ledger:
        assert ledger.con.execute("SELECT subject_pseudonym FROM heavy_subjects").fetchall() == [
            (HEAVY,)
        ]
        assert check_derived(ledger) == []


# -- every kind of tampering, caught -----------------------------------------------------------
def _row_of(seq: int, chain: str = CHAIN) -> str:
    return f"chain_id = '{chain}' AND seq = {seq}"


TAMPERING: dict[str, tuple[list[str], Callable[[list[tuple[str, int | None, str]]], bool]]] = {
    "ccpa_mask changed": (
        [f"UPDATE disclosures SET ccpa_mask = 7 WHERE {_row_of(3)}"],
        lambda f: (CHAIN, 3, "ccpa_mask 7 is not 2, the mask of ccpa_letters ['B']") in f,
    ),
    "ccpa_mask emptied": (
        [f"UPDATE disclosures SET ccpa_mask = NULL WHERE {_row_of(1, CHAIN_1)}"],
        lambda f: any(c == CHAIN_1 and s == 1 and "ccpa_mask None" in d for c, s, d in f),
    ),
    "subject_key changed": (
        [f"UPDATE disclosures SET subject_key = 42 WHERE {_row_of(4)}"],
        lambda f: (CHAIN, 4, f"subject_key 42 is not {_key(OTHER)}, the key of its pseudonym") in f,
    ),
    "chain head seq": (
        [f"UPDATE chain_heads SET head_seq = 2 WHERE chain_id = '{CHAIN}'"],
        lambda f: (CHAIN, None, "chain_heads says head seq 2; the chain's last row is seq 5") in f,
    ),
    "chain head hash": (
        [f"UPDATE chain_heads SET head_chain_hash = unhex(sha256('x')) WHERE chain_id = '{CHAIN}'"],
        lambda f: any(c == CHAIN and s is None and "head hash" in d for c, s, d in f),
    ),
    "chain head missing": (
        [f"DELETE FROM chain_heads WHERE chain_id = '{CHAIN_1}'"],
        lambda f: (CHAIN_1, None, "chain_heads has no entry; the head is seq 3") in f,
    ),
    "chain head invented": (
        ["INSERT INTO chain_heads VALUES ('t/9', 3, unhex(sha256('x')))"],
        lambda f: ("t/9", None, "chain_heads names seq 3 of a chain the ledger does not hold") in f,
    ),
    "chain head doubled": (
        [
            "ALTER TABLE chain_heads RENAME TO ch",
            "CREATE TABLE chain_heads AS SELECT * FROM ch UNION ALL SELECT * FROM ch",
            "DROP TABLE ch",
        ],
        lambda f: (CHAIN, None, "chain_heads has 2 entries for the chain") in f,
    ),
    "heavy row missing": (
        [f"DELETE FROM heavy_subject_rows WHERE {_row_of(3)}"],
        lambda f: (CHAIN, 3, "a heavy subject's row is missing from heavy_subject_rows") in f,
    ),
    "heavy row invented": (
        [
            "INSERT INTO heavy_subject_rows SELECT * REPLACE (99 AS seq) FROM heavy_subject_rows "
            "LIMIT 1"
        ],
        lambda f: any(s == 99 and "for no row of a heavy subject" in d for _, s, d in f),
    ),
    "heavy row altered": (
        [f"UPDATE heavy_subject_rows SET recipient_id = 'acme' WHERE {_row_of(2, CHAIN_1)}"],
        lambda f: (CHAIN_1, 2, "heavy_subject_rows differs from the row in recipient_id") in f,
    ),
    "heavy row list altered": (
        [f"UPDATE heavy_subject_rows SET data_categories = ['x'] WHERE {_row_of(1)}"],
        lambda f: (CHAIN, 1, "heavy_subject_rows differs from the row in data_categories") in f,
    ),
    "heavy row doubled": (
        [f"INSERT INTO heavy_subject_rows SELECT * FROM heavy_subject_rows WHERE {_row_of(1)}"],
        lambda f: (CHAIN, 1, "heavy_subject_rows holds this row 2 times") in f,
    ),
    "heavy subject under a wrong key": (
        ["UPDATE heavy_subjects SET subject_pseudonym = 'x'"],
        lambda f: any(c == "" and "not its pseudonym's key" in d for c, _, d in f),
    ),
    "heavy subject doubled": (
        ["INSERT INTO heavy_subjects SELECT * FROM heavy_subjects"],
        lambda f: ("", None, f"heavy_subjects lists subject_key {_key(HEAVY)} 2 times") in f,
    ),
    "derived table dropped": (
        ["DROP TABLE chain_heads"],
        lambda f: f == [("", None, "derived table chain_heads is missing")],
    ),
    "derived column dropped": (
        ["ALTER TABLE disclosures DROP COLUMN subject_key"],
        lambda f: ("", None, "derived column disclosures.subject_key is missing") in f,
    ),
    "format changed": (
        ["UPDATE ledger_meta SET value = '0' WHERE key = 'derived_format'"],
        lambda f: ("", None, "derived_format is '0', not '1'") in f,
    ),
}


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_tampering_with_derived_data_is_named(ledger_file: Path, kind: str) -> None:
    statements, caught = TAMPERING[kind]
    assert _check(ledger_file) == []
    _sql(ledger_file, *statements)
    findings = _check(ledger_file)
    assert findings, kind
    assert caught(findings), findings


def test_a_tampered_mask_is_found_even_when_another_row_has_that_mask(ledger_file: Path) -> None:
    # row 1 (A, B: mask 3) given row 2's mask (B: 2): its group is (hash of [A, B], 2)
    _sql(ledger_file, f"UPDATE disclosures SET ccpa_mask = 2 WHERE {_row_of(1)}")
    assert (CHAIN, 1, "ccpa_mask 2 is not 3, the mask of ccpa_letters ['A', 'B']") in _check(
        ledger_file
    )


# -- older ledgers and bulk loads ----------------------------------------------------------------
def _make_old(path: Path) -> None:
    """What a ledger written before derived data looks like."""
    _sql(
        path,
        "ALTER TABLE disclosures DROP COLUMN ccpa_mask",
        "ALTER TABLE disclosures DROP COLUMN subject_key",
        "DROP TABLE chain_heads",
        "DROP TABLE heavy_subjects",
        "DROP TABLE heavy_subject_rows",
        "DELETE FROM ledger_meta WHERE key <> 'format_version'",
    )


def test_an_older_ledger_is_refused_by_reports_and_migrated_by_the_writer(
    ledger_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger(ledger_file, read_only=True) as ledger:
        before = render_ccpa(
            ccpa_report(ledger, date(2025, 6, 4), generated_at=datetime(2026, 1, 2)), "json"
        )
    _make_old(ledger_file)
    with Ledger(ledger_file, read_only=True) as ledger:
        assert not has_derived(ledger.con)
        assert check_derived(ledger) == []  # nothing derived, nothing to disagree
        with pytest.raises(LedgerError) as refused:
            ccpa_report(ledger, date(2026, 1, 1))
        with pytest.raises(LedgerError):
            subject_report(
                ledger, _Keys(), subject_type="member", subject_id="m", as_of=date(2026, 1, 1)
            )
    assert str(ledger_file) in str(refused.value)
    assert f"disclosure-ledger migrate --ledger {ledger_file}" in str(refused.value)

    assert main(["migrate", "--ledger", str(ledger_file)]) == 0
    assert "derived data written" in capsys.readouterr().out
    with Ledger(ledger_file, read_only=True) as ledger:
        assert has_derived(ledger.con)
        assert check_derived(ledger) == []
        after = render_ccpa(
            ccpa_report(ledger, date(2025, 6, 4), generated_at=datetime(2026, 1, 2)), "json"
        )
    assert after == before
    assert main(["migrate", "--ledger", str(ledger_file)]) == 0
    assert "heavy subjects chosen afresh" in capsys.readouterr().out


class _Keys:
    def pseudonym(self, subject_type: str, subject_id: str) -> str | None:
        return HEAVY


def test_a_failed_migration_changes_nothing(
    ledger_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_old(ledger_file)

    def fail(con: duckdb.DuckDBPyConnection, **_: object) -> None:
        raise duckdb.InvalidInputException("disk full, say")

    monkeypatch.setattr(derived, "rebuild_heavy", fail)  # the last step of the migration
    with pytest.raises(LedgerError) as failed:
        Ledger(ledger_file)
    assert str(ledger_file) in str(failed.value) and "disk full, say" in str(failed.value)
    with Ledger(ledger_file, read_only=True) as ledger:  # the lock was released, and
        assert not has_derived(ledger.con)  # the transaction rolled back whole
        columns = {r[0] for r in ledger.con.execute("DESCRIBE disclosures").fetchall()}
        assert not {"ccpa_mask", "subject_key"} & columns
        tables = {
            r[0] for r in ledger.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        assert not {"chain_heads", "heavy_subjects", "heavy_subject_rows"} & tables
    monkeypatch.undo()
    with Ledger(ledger_file):
        pass
    assert _check(ledger_file) == []


def test_rows_bulk_loaded_around_append_batch_are_derived_when_the_writer_closes(
    ledger_file: Path,
) -> None:
    extra = pa.Table.from_pylist(
        [
            {
                **disclosure_row(subject_pseudonym=HEAVY),
                "seq": 7,
                "kafka_partition": 0,
                "kafka_offset": 6,
                "leaf_hash": b"l" * 32,
                "chain_hash": b"c" * 32,
            }
        ],
        schema=DISCLOSURE_COLUMNS,
    )
    with Ledger(ledger_file) as ledger:
        ledger.con.register("extra", extra)
        ledger.con.execute("INSERT INTO disclosures BY NAME SELECT * FROM extra")
        ledger.con.unregister("extra")
    with Ledger(ledger_file, read_only=True) as ledger:
        assert ledger.con.execute(
            f"SELECT head_seq FROM chain_heads WHERE chain_id = '{CHAIN}'"
        ).fetchall() == [(7,)]
        assert check_derived(ledger) == []


def test_an_empty_batch_and_an_empty_ledger_have_consistent_derived_data(tmp_path: Path) -> None:
    path = tmp_path / "empty.duckdb"
    with Ledger(path) as ledger:
        ledger.append_batch(
            Batch(
                accepted=empty(DISCLOSURE_COLUMNS),
                quarantined=empty(QUARANTINE_COLUMNS),
                duplicates=empty(DUPLICATE_COLUMNS),
            )
        )
    assert _check(path) == []


PSEUDONYMS = [
    HEAVY,
    "0" * 64,
    "f" * 64,
    "0123456789abcdef",  # exactly 16 hex digits
    "0123456789ABCDEF" + "0" * 48,  # upper case: SQL reads it, the batch path leaves it to SQL
    "0123456789abcde",  # 15
    "0123_56789abcdef" + "0" * 48,
    "subject-1",
    "",
    "é" * 20,
    "0123456789abcdeé",
]
LETTER_LISTS = [
    [],
    ["A"],
    ["L", "A", "L"],
    ["Z"],
    ["AB"],
    [""],
    ["a"],
    [None],
    list("ABCDEFGHIJKL"),
]


def test_the_batch_path_computes_what_the_sql_definitions_say() -> None:
    rows = [
        {"subject_pseudonym": p, "ccpa_letters": LETTER_LISTS[i % len(LETTER_LISTS)]}
        for i, p in enumerate(PSEUDONYMS * 3)
    ]
    rows[4]["ccpa_letters"] = None
    table = pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [("subject_pseudonym", pa.string()), ("ccpa_letters", pa.list_(pa.string()))]
        ),
    ).slice(1)  # offsets that do not start at 0
    with duckdb.connect() as con:
        con.register("t", derived.with_derived(table))
        found = con.execute(
            f"SELECT ccpa_mask, {derived.MASK_SQL}, subject_key, subject_pseudonym "
            f"FROM ({derived.APPEND_SELECT} FROM t)"
        ).fetchall()
    assert [(m, k) for m, _, k, _ in found] == [(m, _key_sql(p)) for _, m, _, p in found]
    expected = [_mask([x or "" for x in ls]) for ls in LETTER_LISTS[1:]]
    expected[3] = None  # a null list: no mask, as in SQL
    assert [m for m, *_ in found[: len(LETTER_LISTS) - 1]] == expected
    assert {p: k for _, _, k, p in found if re.fullmatch("[0-9a-f]{16}.*", p)} == {
        p: _key(p) for p in PSEUDONYMS if re.fullmatch("[0-9a-f]{16}.*", p)
    }


def _key_sql(pseudonym: str) -> int:
    with duckdb.connect() as con:
        return int(
            con.execute(f"SELECT {derived.subject_key_sql('$p')}", {"p": pseudonym}).fetchall()[0][
                0
            ]
        )


@pytest.mark.parametrize("odd", [["A\x1fB"], ["A", None], None])
def test_the_batch_masks_of_odd_letter_lists_are_the_sql_ones(odd: list[str | None] | None) -> None:
    table = pa.table(
        {"ccpa_letters": pa.array([["A", "B"], odd, [], [""], ["B"]], pa.list_(pa.string()))}
    )
    with duckdb.connect() as con:
        con.register("t", derived.with_derived(table))
        found = con.execute(f"SELECT ccpa_mask, {derived.MASK_SQL} FROM t").fetchall()
    assert [m for m, _ in found] == [s for _, s in found]
    assert [m for m, _ in found][2:] == [0, 1 << 12, 2]
