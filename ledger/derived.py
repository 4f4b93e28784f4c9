"""Derived data: what the ledger keeps beside the hashed columns so reports stay fast.

The leaf hash (:mod:`ledger.chain`) covers what each row asserts; nothing here is hashed.
Every derived value is a function of hashed columns, written by the one writer in the same
transaction as the rows it derives from, and :func:`check_derived` recomputes all of it,
set-wise, and names every disagreement.

``disclosures.ccpa_mask`` (USMALLINT)
    bit ``i`` (0 to 11) set when ``ccpa_letters`` holds letter ``A + i``; bit 12 when it
    holds anything else (the reports then name the unknown letter and stop). The CCPA
    report aggregates these bits instead of unnesting lists.
``disclosures.subject_key`` (UBIGINT)
    the pseudonym's first 16 characters read as a hexadecimal number (every pseudonym is a
    lower-case hex HMAC-SHA-256); for a pseudonym whose first 16 characters are not hex
    digits, the first 16 hex digits of its MD5. A fixed-width key: a person's rows are found
    by scanning it, and the CCPA report counts distinct subjects by it. Two pseudonyms share
    a key only by a 64-bit collision of HMAC outputs: among ``n`` subjects with probability
    about ``n² / 2^65`` (4·10⁻⁷ for 4 million subjects). The subject reports never mix two
    people (they also compare the pseudonym, or read a heavy subject's copy, which the writer
    keeps free of other pseudonyms: below), so only the CCPA count of distinct subjects
    could be off, by one.
``chain_heads`` (chain_id, head_seq, head_chain_hash)
    every chain's last row, so reports state heads without scanning the ledger.
``heavy_subjects`` (subject_key, subject_pseudonym) and ``heavy_subject_rows``
    the subjects with at least :data:`HEAVY_ROWS` rows (when last chosen: the writer does it
    on opening a ledger that has grown by half since, and ``disclosure-ledger migrate`` on
    request), and a copy of the columns the subject reports read of *every* row with one
    of their keys, sorted by ``subject_key`` (new rows are appended; each choice re-sorts). A
    person with thousands of rows spread over the whole ledger is then read from a few row
    groups instead of every one. Which subjects are heavy is a performance choice. What is
    checked: the copy holds exactly the rows with those keys, with their values, and each
    entry's key is its pseudonym's. That no *other* pseudonym has a heavy subject's key
    (else the copy would hold that person's rows too) is kept by the writer: a rebuild
    leaves such a key out, and an append that brings one drops it from the set. Only a
    64-bit collision of pseudonyms could call on it; checking it would cost every row's
    pseudonym a second time, and no tampering with derived data can break it (the rows
    themselves are hashed).

The writer (:class:`ledger.store.Ledger` opened for writing) migrates a ledger written
before this existed (adds the columns and tables and fills them, in one transaction), and
on opening and closing derives whatever rows were inserted without derived data (a bulk
load that bypassed :meth:`~ledger.store.Ledger.append_batch`). Reports that need derived
data refuse a ledger that was never migrated (:func:`require_derived`), naming the file and
the fix.

Every definition is one SQL expression below, used by the migration, the check and the
lookups. The append path computes the mask from the Arrow batch it is given with
pyarrow.compute (:func:`with_derived`; the check compares the two implementations on every
row) and the key in the INSERT itself.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from ledger.errors import LedgerError
from ledger.lake import cursor_of

if TYPE_CHECKING:
    from ledger.store import Ledger

DERIVED_FORMAT = "1"
"""``ledger_meta.derived_format``: the derived data this module writes and checks."""

LETTERS = "ABCDEFGHIJKL"
UNKNOWN_LETTER_BIT = 12
HEAVY_ROWS = 100
"""A subject with at least this many rows is copied into ``heavy_subject_rows``."""
REBUILD_MIN_ROWS = 100_000
REBUILD_GROWTH = 0.5
"""The writer, on opening, chooses the heavy subjects afresh when the ledger has grown by
``max(REBUILD_MIN_ROWS, REBUILD_GROWTH x its size at the last choice)`` rows since (a full
pass over the subject keys: seconds at 10 million rows, so never inside an append, whose
memory the consumer bounds). ``disclosure-ledger migrate`` does it on request."""

# -- the definitions -------------------------------------------------------------------------
MASK_SQL = (
    "list_reduce(list_transform(ccpa_letters, lambda l: 1 << ((coalesce(instr('"
    + LETTERS
    + "', l) * (length(l) = 1)::INTEGER, 0) + 12) % 13)), lambda a, b: a | b, 0)::USMALLINT"
)
"""``ccpa_mask`` of a row (instr gives 1..12 for a known letter, so bit 0..11; 0 -> bit 12)."""


def subject_key_sql(pseudonym: str) -> str:
    """``subject_key`` of the pseudonym expression ``pseudonym``."""
    return (
        f"coalesce(TRY_CAST('0x' || left({pseudonym}, 16) AS UBIGINT), "
        f"('0x' || left(md5({pseudonym}), 16))::UBIGINT)"
    )


SUBJECT_KEY_SQL = subject_key_sql("subject_pseudonym")

DERIVED_SELECT = f"{MASK_SQL} AS ccpa_mask, {SUBJECT_KEY_SQL} AS subject_key"
"""The derived columns of rows of the disclosures shape, for ``SELECT *, <this>``."""

APPEND_SELECT = f"SELECT *, {SUBJECT_KEY_SQL} AS subject_key"
"""Rows of :func:`with_derived` with their keys: ``{APPEND_SELECT} FROM view``."""

HEAVY_COLUMNS = (
    "subject_key",
    "subject_type",
    "occurred_at",
    "chain_id",
    "seq",
    "recipient_id",
    "recipient_category",
    "disclosure_kind",
    "ccpa_mask",
    "data_categories",
    "reference_version",
)
_HEAVY_LIST = ", ".join(HEAVY_COLUMNS)

HEAVY_DDL = """
CREATE TABLE IF NOT EXISTS heavy_subjects (
    subject_key UBIGINT NOT NULL, subject_pseudonym VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS heavy_subject_rows (
    subject_key UBIGINT NOT NULL, subject_type VARCHAR NOT NULL, occurred_at TIMESTAMP NOT NULL,
    chain_id VARCHAR NOT NULL, seq BIGINT NOT NULL, recipient_id VARCHAR NOT NULL,
    recipient_category VARCHAR NOT NULL, disclosure_kind VARCHAR NOT NULL,
    ccpa_mask USMALLINT NOT NULL, data_categories VARCHAR[] NOT NULL,
    reference_version VARCHAR NOT NULL
);
"""
DERIVED_DDL = (
    """
CREATE TABLE IF NOT EXISTS chain_heads (
    chain_id VARCHAR PRIMARY KEY, head_seq BIGINT NOT NULL, head_chain_hash BLOB NOT NULL
);
"""
    + HEAVY_DDL
)
DERIVED_TABLES = ("chain_heads", "heavy_subjects", "heavy_subject_rows")
DERIVED_COLUMNS = {"ccpa_mask": "USMALLINT", "subject_key": "UBIGINT"}


@functools.cache
def letters_of(mask: int) -> tuple[str, ...]:
    """The letters A to L whose bits are set in ``mask``, in order."""
    return tuple(letter for i, letter in enumerate(LETTERS) if mask >> i & 1)


# -- the mask, from an Arrow batch (the append path) -------------------------------------------
_LETTER_VALUES = pa.array(list(LETTERS))


def with_derived(table: pa.Table) -> pa.Table:
    """``table`` (disclosures columns) with ``ccpa_mask`` appended, as :data:`MASK_SQL`
    defines it, computed with pyarrow.compute (no row reaches Python)."""
    letters = table.column("ccpa_letters").combine_chunks()
    return table.append_column(pa.field("ccpa_mask", pa.uint16()), _masks(letters))


_SEPARATOR = "\x1f"


def _masks(letters: pa.ListArray) -> pa.Array:
    """Per row, the mask of its letters: each distinct letter list (a few dozen in a batch)
    is joined into one string and its mask computed once."""
    joined = pc.binary_join(letters, _SEPARATOR)  # null for a null list or a null letter
    ambiguous = pc.any(pc.match_substring(pc.list_flatten(letters), _SEPARATOR)).as_py()
    if ambiguous or joined.null_count != letters.null_count:
        return _masks_by_letter(letters)
    encoded = pc.dictionary_encode(joined)
    masks = [_mask_of(text.split(_SEPARATOR)) for text in encoded.dictionary.to_pylist()]
    by_row = pc.take(pa.array(masks, pa.uint16()), encoded.indices)
    # [] and [""] both join to "": an empty list has no letters
    return pc.if_else(pc.equal(pc.list_value_length(letters), 0), pa.scalar(0, pa.uint16()), by_row)


def _mask_of(letters: list[str]) -> int:
    mask = 0
    for letter in letters:
        known = len(letter) == 1 and letter in LETTERS
        mask |= 1 << (LETTERS.index(letter) if known else UNKNOWN_LETTER_BIT)
    return mask


def _masks_by_letter(letters: pa.ListArray) -> pa.Array:
    """The same, letter by letter (for letters holding the separator, or null letters)."""
    n = len(letters)
    position = pc.index_in(pc.list_flatten(letters), value_set=_LETTER_VALUES)  # null: not A-L
    bits = pc.shift_left(
        pa.scalar(1, pa.uint16()), pc.cast(pc.fill_null(position, UNKNOWN_LETTER_BIT), pa.uint16())
    )
    # OR per row: the sum of each row's distinct bits
    distinct = (
        pa.table({"row": pc.list_parent_indices(letters), "bit": bits})
        .group_by(["row", "bit"])
        .aggregate([])
    )
    per_row = distinct.group_by("row").aggregate([("bit", "sum")])
    where = pc.index_in(pa.array(range(n), pa.int64()), value_set=per_row.column("row"))
    masks = pc.cast(pc.fill_null(pc.take(per_row.column("bit_sum"), where), 0), pa.uint16())
    return pc.if_else(letters.is_null(), pa.scalar(None, pa.uint16()), masks)


# -- reading ---------------------------------------------------------------------------------
def _meta(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    found = con.execute("SELECT value FROM ledger_meta WHERE key = ?", [key]).fetchall()
    return str(found[0][0]) if found else None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views (on a lake, ``chain_heads`` and ``offsets`` are views of logs)."""
    return {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    }


def _disclosure_columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'disclosures'"
        ).fetchall()
    }


def has_derived(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the ledger on ``con`` was written or migrated with this derived data."""
    if "ledger_meta" not in _tables(con):
        return False
    return _meta(con, "derived_format") == DERIVED_FORMAT


def require_derived(ledger: Ledger) -> None:
    """Raise, naming the file and the fix, if ``ledger`` has no derived data (yet)."""
    if not has_derived(ledger.con):
        raise LedgerError(
            f"ledger file {ledger.path} was written before this release's derived data "
            f"(ccpa_mask, subject_key, chain_heads, heavy subjects) that the reports read; "
            f"migrate it once: `disclosure-ledger migrate --ledger {ledger.path}` (or run "
            "`disclosure-ledger consume` on it), then ask again"
        )


def subject_lookup(cursor: duckdb.DuckDBPyConnection, pseudonym: str) -> tuple[int, bool]:
    """(subject_key, whether the subject's rows are in ``heavy_subject_rows``)."""
    key = subject_key_sql("$p")
    [(subject_key, heavy)] = cursor.execute(
        f"SELECT {key}, EXISTS (SELECT 1 FROM heavy_subjects "
        f"WHERE subject_key = {key} AND subject_pseudonym = $p)",
        {"p": pseudonym},
    ).fetchall()
    return int(subject_key), bool(heavy)


# -- writing ---------------------------------------------------------------------------------
def ensure_derived(con: duckdb.DuckDBPyConnection, *, opening: bool = False) -> None:
    """On the writer's connection: migrate an older ledger, and derive any rows that lack
    derived data or chains whose head is stale (bulk loads that bypassed append_batch);
    ``opening``, also choose the heavy subjects afresh if the ledger has grown enough since.
    One transaction; nothing to do costs two narrow scans."""
    tables = _tables(con)
    columns = _disclosure_columns(con)
    migrate = (
        _meta(con, "derived_format") != DERIVED_FORMAT
        or not set(DERIVED_TABLES) <= tables
        or not set(DERIVED_COLUMNS) <= columns
    )
    if not migrate and not _stale(con):
        if opening and _grown(con):
            refresh_heavy(con)
        return
    con.execute("BEGIN TRANSACTION")
    try:
        for name, kind in DERIVED_COLUMNS.items():
            if name not in columns:
                con.execute(f"ALTER TABLE disclosures ADD COLUMN {name} {kind}")
        con.execute(DERIVED_DDL)
        con.execute(
            f"UPDATE disclosures SET ccpa_mask = {MASK_SQL}, subject_key = {SUBJECT_KEY_SQL} "
            "WHERE ccpa_mask IS NULL OR subject_key IS NULL"
        )
        _rebuild_chain_heads(con)
        rebuild_heavy(con)
        con.execute(
            "MERGE INTO ledger_meta USING (SELECT 'derived_format' AS key, ?::VARCHAR AS value) "
            "USING (key) WHEN MATCHED THEN UPDATE WHEN NOT MATCHED THEN INSERT",
            [DERIVED_FORMAT],
        )
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _stale(con: duckdb.DuckDBPyConnection) -> bool:
    """Rows without derived values, or chain heads that are not the chains' last rows."""
    if _scalar(
        con, "SELECT count(*) FROM disclosures WHERE ccpa_mask IS NULL OR subject_key IS NULL"
    ):
        return True
    return bool(
        _scalar(
            con,
            """
            SELECT count(*) FROM (
                SELECT chain_id, max(seq) AS s FROM disclosures GROUP BY chain_id
            ) d FULL JOIN chain_heads h USING (chain_id)
            WHERE d.s IS DISTINCT FROM h.head_seq
            """,
        )
    )


def _rebuild_chain_heads(con: duckdb.DuckDBPyConnection) -> None:
    # on a lake, chain_heads is a view of chain_head_log (LAKE_LOG_DDL)
    table = "chain_head_log" if "chain_head_log" in _tables(con) else "chain_heads"
    con.execute(f"DELETE FROM {table}")
    con.execute(
        f"""
        INSERT INTO {table}
        SELECT d.chain_id, d.seq, d.chain_hash FROM disclosures d
        SEMI JOIN ({_HEAD_SEQS}) t ON d.chain_id = t.chain_id AND d.seq = t.head_seq
        WHERE d.seq >= (SELECT min(head_seq) FROM ({_HEAD_SEQS}))
        QUALIFY row_number() OVER (PARTITION BY d.chain_id ORDER BY d.rowid DESC) = 1
        """
    )


_HEAD_SEQS = "SELECT chain_id, max(seq) AS head_seq FROM disclosures GROUP BY chain_id"


def _grown(con: duckdb.DuckDBPyConnection) -> bool:
    rows = int(_scalar(con, "SELECT coalesce(sum(head_seq), 0) FROM chain_heads"))
    last = int(_meta(con, "heavy_rebuilt_at_rows") or 0)
    return rows - last >= max(REBUILD_MIN_ROWS, int(REBUILD_GROWTH * last))


def refresh_heavy(con: duckdb.DuckDBPyConnection) -> None:
    """Choose the heavy subjects afresh, in a transaction of its own (the writer's)."""
    con.execute("BEGIN TRANSACTION")
    try:
        rebuild_heavy(con)
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def rebuild_heavy(con: duckdb.DuckDBPyConnection, *, heavy_rows: int | None = None) -> None:
    """Choose the heavy subjects afresh and rewrite their rows' copy, sorted by key.

    Run inside the caller's transaction. A key that two pseudonyms share is left out.
    """
    con.execute("DROP TABLE IF EXISTS heavy_subjects")
    con.execute("DROP TABLE IF EXISTS heavy_subject_rows")
    # created with their NOT NULL columns, then filled: DuckLake cannot SET NOT NULL on a
    # table created in the same transaction, as CREATE TABLE AS would need (docs/ducklake.md)
    con.execute(HEAVY_DDL)
    con.execute(
        """
        INSERT INTO heavy_subjects
        WITH many AS (
            SELECT subject_key FROM disclosures GROUP BY subject_key HAVING count(*) >= $n
        )
        SELECT subject_key, min(subject_pseudonym) AS subject_pseudonym
        FROM disclosures SEMI JOIN many USING (subject_key)
        GROUP BY subject_key
        HAVING min(subject_pseudonym) = max(subject_pseudonym)
        ORDER BY subject_key
        """,
        {"n": HEAVY_ROWS if heavy_rows is None else heavy_rows},
    )
    con.execute(
        f"""
        INSERT INTO heavy_subject_rows BY NAME
        SELECT {_HEAVY_LIST} FROM disclosures SEMI JOIN heavy_subjects USING (subject_key)
        ORDER BY subject_key, chain_id, seq
        """
    )
    con.execute(
        "MERGE INTO ledger_meta USING (SELECT 'heavy_rebuilt_at_rows' AS key, ?::VARCHAR AS value) "
        "USING (key) WHEN MATCHED THEN UPDATE WHEN NOT MATCHED THEN INSERT",
        [str(_scalar(con, "SELECT count(*) FROM disclosures"))],
    )


def append_derived(
    con: duckdb.DuckDBPyConnection, incoming: str, *, insert_only: bool = False
) -> None:
    """Inside the append transaction, after ``incoming`` (disclosures columns, registered
    view) was inserted into ``disclosures``: move the chain heads, extend the heavy
    subjects' copy. ``insert_only`` (a lake): the heads are appended to ``chain_head_log``,
    whose newest row per chain the ``chain_heads`` view reads, so that writers of other
    chains never write a row this commit writes (:data:`LAKE_LOG_DDL`)."""
    heads = (
        "SELECT chain_id, max(seq) AS head_seq, arg_max(chain_hash, seq) AS head_chain_hash "
        f"FROM {incoming} GROUP BY chain_id"
    )
    if insert_only:
        con.execute(f"INSERT INTO chain_head_log {heads}")
    else:
        con.execute(
            f"""
            MERGE INTO chain_heads USING ({heads}) AS s USING (chain_id)
            WHEN MATCHED AND s.head_seq >= chain_heads.head_seq THEN UPDATE
            WHEN NOT MATCHED THEN INSERT
            """
        )
    if not _scalar(con, "SELECT count(*) FROM heavy_subjects"):
        return
    # the batch's rows of heavy keys, the key computed once
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _heavy_batch AS
        SELECT {_HEAVY_LIST}, subject_pseudonym FROM ({APPEND_SELECT} FROM {incoming})
        SEMI JOIN heavy_subjects USING (subject_key)
        """
    )
    try:
        # Another pseudonym under a heavy subject's key (a 64-bit collision): drop the key
        # from the heavy set rather than let that person's rows into the copy.
        colliding = """
            SELECT DISTINCT b.subject_key FROM _heavy_batch b JOIN heavy_subjects h
            USING (subject_key) WHERE b.subject_pseudonym <> h.subject_pseudonym
        """
        shared = [int(r[0]) for r in con.execute(colliding).fetchall()]
        for table in ("heavy_subject_rows", "heavy_subjects", "_heavy_batch") if shared else ():
            con.execute(f"DELETE FROM {table} WHERE list_contains($k, subject_key)", {"k": shared})
        con.execute(f"INSERT INTO heavy_subject_rows SELECT {_HEAVY_LIST} FROM _heavy_batch")
    finally:
        con.execute("DROP TABLE _heavy_batch")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    found = con.execute(sql).fetchall()
    return found[0][0] if found else None


# -- checking --------------------------------------------------------------------------------
Finding = tuple[str, int | None, str]


def check_derived(ledger: Ledger, *, rows: bool = True) -> list[Finding]:
    """Every row or entry whose derived data disagrees with the hashed columns.

    Returns ``(chain_id, seq, detail)`` per disagreeing row; ``(chain_id, None, detail)``
    for a chain head; ``("", None, detail)`` for what belongs to no chain (a missing table,
    a heavy subject entry). A ledger never migrated holds no derived data: nothing to check,
    ``[]`` (the reports refuse it). Set-wise SQL, one read transaction; about four scans of
    narrow columns (see ``tests/unit/test_derived.py`` and the README for the cost).
    ``rows=False`` leaves out the per-row ``ccpa_mask`` and ``subject_key`` checks, for a
    caller that makes them in its own scan of those columns (``verify`` asks for them:
    about 0.4 s of CPU a million rows).
    """
    cursor = cursor_of(ledger.con)
    try:
        cursor.execute("SET enable_progress_bar = false")
        cursor.execute("BEGIN TRANSACTION")
        try:
            return _check(cursor, rows)
        finally:
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()


def _check(cursor: duckdb.DuckDBPyConnection, rows: bool) -> list[Finding]:
    tables = _tables(cursor)
    columns = _disclosure_columns(cursor) if "disclosures" in tables else set()
    present = (set(DERIVED_TABLES) & tables) | (set(DERIVED_COLUMNS) & columns)
    marked = "ledger_meta" in tables and _meta(cursor, "derived_format") is not None
    if not marked and not present:
        return []
    missing = [f"table {t}" for t in DERIVED_TABLES if t not in tables] + [
        f"column disclosures.{c}" for c in DERIVED_COLUMNS if c not in columns
    ]
    findings: list[Finding] = [("", None, f"derived {what} is missing") for what in missing]
    if not marked:
        findings.append(("", None, "ledger_meta has no derived_format"))
    elif _meta(cursor, "derived_format") != DERIVED_FORMAT:
        findings.append(
            ("", None, f"derived_format is {_meta(cursor, 'derived_format')!r}, "
             f"not {DERIVED_FORMAT!r}")
        )  # fmt: skip
    if missing:
        return findings
    if rows:
        findings += _check_masks(cursor)
        findings += _check_keys(cursor)
    findings += _check_heads(cursor)
    findings += _check_heavy(cursor)
    return findings


def _check_masks(cursor: duckdb.DuckDBPyConnection) -> list[Finding]:
    # Rows grouped by (hash of their letter list, stored mask): a few dozen groups, each
    # checked on one of its lists. A wrong mask lands in a group of its own.
    groups = cursor.execute(
        f"""
        WITH g AS (
            SELECT hash(ccpa_letters) AS h, ccpa_mask, any_value(ccpa_letters) AS ccpa_letters
            FROM disclosures GROUP BY ALL
        )
        SELECT h, ccpa_mask, {MASK_SQL} AS expected, ccpa_letters FROM g
        WHERE ccpa_mask IS DISTINCT FROM {MASK_SQL}
        """
    ).fetchall()
    findings: list[Finding] = []
    for h, mask, expected, letters in groups:
        rows = cursor.execute(
            "SELECT chain_id, seq FROM disclosures WHERE hash(ccpa_letters) = $h "
            "AND ccpa_mask IS NOT DISTINCT FROM $m ORDER BY chain_id, seq",
            {"h": h, "m": mask},
        ).fetchall()
        findings += [
            (c, int(s), f"ccpa_mask {mask} is not {expected}, the mask of ccpa_letters {letters}")
            for c, s in rows
        ]
    return findings


def _check_keys(cursor: duckdb.DuckDBPyConnection) -> list[Finding]:
    # subject_key_sql, split so that the MD5 is computed only for rows whose pseudonym does
    # not start with 16 hex digits (none, in a ledger the consumer wrote)
    rows = cursor.execute(
        f"""
        SELECT chain_id, seq, k, {subject_key_sql("p")} FROM (
            SELECT chain_id, seq, subject_key AS k, subject_pseudonym AS p,
                   TRY_CAST('0x' || left(subject_pseudonym, 16) AS UBIGINT) AS hex_key
            FROM disclosures
        )
        WHERE k IS DISTINCT FROM hex_key
          AND (hex_key IS NOT NULL OR k IS DISTINCT FROM {subject_key_sql("p")})
        ORDER BY chain_id, seq
        """
    ).fetchall()
    return [
        (chain, int(seq), f"subject_key {key} is not {expected}, the key of its pseudonym")
        for chain, seq, key, expected in rows
    ]


def _check_heads(cursor: duckdb.DuckDBPyConnection) -> list[Finding]:
    rows = cursor.execute(
        f"""
        WITH actual AS (
            SELECT d.chain_id, d.seq AS head_seq, d.chain_hash AS head_chain_hash
            FROM disclosures d SEMI JOIN ({_HEAD_SEQS}) t
                ON d.chain_id = t.chain_id AND d.seq = t.head_seq
            WHERE d.seq >= (SELECT min(head_seq) FROM ({_HEAD_SEQS}))
        ), stored AS (
            SELECT chain_id, head_seq, head_chain_hash, count(*) OVER (PARTITION BY chain_id) AS n
            FROM chain_heads
        )
        SELECT coalesce(a.chain_id, s.chain_id), a.head_seq, a.head_chain_hash,
               s.head_seq, s.head_chain_hash, s.n
        FROM actual a FULL JOIN stored s USING (chain_id)
        WHERE a.head_seq IS DISTINCT FROM s.head_seq
           OR a.head_chain_hash IS DISTINCT FROM s.head_chain_hash OR s.n > 1
        ORDER BY 1, 4
        """
    ).fetchall()
    findings: list[Finding] = []
    for chain, seq, head, stored_seq, stored_head, n in rows:
        if seq is None:
            detail = f"chain_heads names seq {stored_seq} of a chain the ledger does not hold"
        elif stored_seq is None:
            detail = f"chain_heads has no entry; the head is seq {seq}"
        elif n and n > 1:
            detail = f"chain_heads has {n} entries for the chain"
        elif stored_seq != seq:
            detail = f"chain_heads says head seq {stored_seq}; the chain's last row is seq {seq}"
        else:
            detail = (
                f"chain_heads head hash {bytes(stored_head).hex()} is not the chain_hash of "
                f"seq {seq}, {bytes(head).hex()}"
            )
        findings.append((str(chain or ""), None, detail))
    return findings


_HEAVY_COMPARED = [c for c in HEAVY_COLUMNS if c not in ("chain_id", "seq")]


def _check_heavy(cursor: duckdb.DuckDBPyConnection) -> list[Finding]:
    findings: list[Finding] = [
        ("", None, f"heavy_subjects lists subject_key {k} {n} times")
        for k, n in cursor.execute(
            "SELECT subject_key, count(*) FROM heavy_subjects GROUP BY ALL HAVING count(*) > 1 "
            "ORDER BY 1"
        ).fetchall()
    ]
    findings += [
        ("", None, f"heavy_subjects lists subject_key {k}, which is not its pseudonym's key {e}")
        for k, e in cursor.execute(
            f"SELECT subject_key, {SUBJECT_KEY_SQL} FROM heavy_subjects "
            f"WHERE subject_key IS DISTINCT FROM {SUBJECT_KEY_SQL} ORDER BY 1"
        ).fetchall()
    ]
    findings += [
        (
            str(c or ""),
            None if s is None else int(s),
            f"heavy_subject_rows holds this row {n} times",
        )
        for c, s, n in cursor.execute(
            "SELECT chain_id, seq, count(*) FROM heavy_subject_rows GROUP BY ALL "
            "HAVING count(*) > 1 ORDER BY 1, 2"
        ).fetchall()
    ]
    differs = " OR ".join(f"d.{c} IS DISTINCT FROM r.{c}" for c in _HEAVY_COMPARED)
    which = ", ".join(f"d.{c} IS DISTINCT FROM r.{c}" for c in _HEAVY_COMPARED)
    rows = cursor.execute(
        f"""
        WITH d AS (
            SELECT {_HEAVY_LIST} FROM disclosures SEMI JOIN heavy_subjects USING (subject_key)
        )
        SELECT coalesce(d.chain_id, r.chain_id), coalesce(d.seq, r.seq),
               d.chain_id IS NULL, r.chain_id IS NULL, r.subject_key, [{which}]
        FROM d FULL JOIN heavy_subject_rows r ON d.chain_id = r.chain_id AND d.seq = r.seq
        WHERE d.chain_id IS NULL OR r.chain_id IS NULL OR {differs}
        ORDER BY 1, 2
        """
    ).fetchall()
    for chain, seq, extra, missing, key, flags in rows:
        if extra:
            detail = (
                f"heavy_subject_rows holds an entry (subject_key {key}) for no row of a heavy "
                "subject"
            )
        elif missing:
            detail = "a heavy subject's row is missing from heavy_subject_rows"
        else:
            wrong = [c for c, bad in zip(_HEAVY_COMPARED, flags, strict=True) if bad]
            detail = f"heavy_subject_rows differs from the row in {', '.join(wrong)}"
        findings.append((str(chain or ""), None if seq is None else int(seq), detail))
    return findings
