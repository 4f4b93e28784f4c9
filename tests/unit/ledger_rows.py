"""Real DuckDB ledger files with chosen rows, for report and query tests.

``disclosure_row(**overrides)`` is one valid ``disclosures`` row; ``write_ledger(path,
rows)`` numbers the rows per chain (``seq`` 1, 2, ...), gives them stand-in hashes
(``chain_hash = sha256("chain_id/seq")``: reports read hashes, they do not verify them)
and appends them through :meth:`Ledger.append_batch`, the one write path. It then records
coverage evidence (:func:`record_coverage`) so that reports over the ledger are complete,
unless told ``complete_through=None``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from ledger.store import (
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Batch,
    Ledger,
    empty,
)
from tests.conftest import LedgerLocation, raw_connection

TOPIC = "privacy.disclosures.v1"
CHAIN = f"{TOPIC}/0"
COMPLETE_THROUGH = datetime(2100, 1, 1)
"""Test ledgers are complete through here by default: after every as-of a test can ask."""
STAND_IN_SOURCE = "test-source"
"""The expected source of a test ledger whose reference data declares none."""


def stand_in_hash(chain_id: str, seq: int) -> bytes:
    return hashlib.sha256(f"{chain_id}/{seq}".encode()).digest()


def disclosure_row(**overrides: Any) -> dict[str, Any]:
    """A valid row; ``chain_id``, ``seq``, offsets and hashes are set by write_ledger."""
    row: dict[str, Any] = {
        "chain_id": CHAIN,
        "topic": TOPIC,
        "event_id": str(uuid.uuid4()),
        "occurred_at": datetime(2025, 6, 1, 12, 0),
        "subject_pseudonym": "subject-1",
        "subject_type": "member",
        "recipient_id": "escalion",
        "recipient_category": "payment_provider",
        "data_categories": ["user.financial.credit_card"],
        "purpose": "essential.service.payment_processing",
        "legal_basis": "contract",
        "disclosure_kind": "business_purpose",
        "producer_service": "billing",
        "producer_version": "1.0.0",
        "context": json.dumps({}),
        "schema_version": 1,
        "reference_version": "test-1",
        "ccpa_letters": ["B"],
        "business_purpose": "5",
        "sensitive": False,
        "declared": True,
        "flags": [],
        "ingested_at": datetime(2025, 6, 1, 12, 0, 1),
    }
    row.update(overrides)
    return row


def write_ledger(
    path: LedgerLocation,
    rows: Iterable[Mapping[str, Any]],
    *,
    complete_through: datetime | None = COMPLETE_THROUGH,
) -> LedgerLocation:
    """Append ``rows`` to the ledger at ``path`` (a file or a lake, created if absent); returns
    path.
    The ledger is then complete through ``complete_through`` (None: no evidence)."""
    with Ledger(path) as ledger:
        heads: dict[str, int] = {
            chain: head.seq
            for chain, head in ledger.chain_heads(
                [
                    r[0]
                    for r in ledger.con.execute(
                        "SELECT DISTINCT chain_id FROM disclosures"
                    ).fetchall()
                ]
            ).items()
        }
        numbered = []
        for given in rows:
            row = dict(given)
            chain = str(row["chain_id"])
            seq = heads.get(chain, 0) + 1
            heads[chain] = seq
            partition = int(chain.rsplit("/", 1)[1])
            row.update(
                seq=seq,
                kafka_partition=partition,
                kafka_offset=seq - 1,
                leaf_hash=hashlib.sha256(f"leaf {chain}/{seq}".encode()).digest(),
                chain_hash=stand_in_hash(chain, seq),
            )
            numbered.append(row)
        accepted = pa.Table.from_pylist(numbered, schema=DISCLOSURE_COLUMNS)
        ledger.append_batch(
            Batch(
                accepted=accepted,
                quarantined=empty(QUARANTINE_COLUMNS),
                duplicates=empty(DUPLICATE_COLUMNS),
                next_offsets={},
            )
        )
        if complete_through is not None:
            record_coverage_in(ledger.con, complete_through)
    return path


def record_coverage(path: LedgerLocation, through: datetime) -> None:
    """Coverage evidence, written straight into the tables the consumer keeps it in: a
    watermark at ``through`` from every expected source on every partition. A ledger whose
    reference data declares no sources gets :data:`STAND_IN_SOURCE` as its one source; a
    partition no offset was committed for (rows written by :func:`write_ledger`) gets a
    probe at ``through`` that its position has reached, so it is known and complete.
    (A plain connection: opening the ledger as its writer would do more than this.)"""
    con = raw_connection(path)
    try:
        record_coverage_in(con, through)
    finally:
        con.close()


def record_coverage_in(con: duckdb.DuckDBPyConnection, through: datetime) -> None:
    """:func:`record_coverage` through an open connection."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "ref_sources" not in tables:
        con.execute("CREATE TABLE ref_sources (reference_version VARCHAR, source VARCHAR)")
    versions = [
        r[0] for r in con.execute("SELECT DISTINCT reference_version FROM disclosures").fetchall()
    ] or ["test-1"]
    for version in versions:
        declared = con.execute(
            "SELECT count(*) FROM ref_sources WHERE reference_version = ?", [version]
        ).fetchone()
        if not declared or not declared[0]:
            con.execute(
                "INSERT INTO ref_sources (reference_version, source) VALUES (?, ?)",
                [version, STAND_IN_SOURCE],
            )
    sources = [r[0] for r in con.execute("SELECT DISTINCT source FROM ref_sources").fetchall()]
    committed = {
        (str(t), int(p))
        for t, p in con.execute("SELECT topic, kafka_partition FROM offsets").fetchall()
    }
    written = {
        (str(t), int(p))
        for t, p in con.execute(
            "SELECT DISTINCT topic, kafka_partition FROM disclosures"
        ).fetchall()
    }
    if not committed and not written:
        written = {(TOPIC, 0)}  # an empty ledger: one partition, read and found empty
    for topic, partition in sorted(written - committed):
        con.execute("INSERT INTO partition_probes VALUES (?, ?, ?, 0)", [topic, partition, through])
    for topic, partition in sorted(committed | written):
        for source in sources:
            # each watermark takes the partition's next offset, as one read from Kafka
            # would, so verify's offset accounting stays exact
            offset = _next_offset(con, topic, partition)
            con.execute(
                "INSERT INTO watermarks VALUES (?, ?, ?, ?, ?, ?)",
                [topic, partition, offset, source, through, through],
            )
            if "offset_log" in tables:  # a lake: offsets is a view of this log
                if (topic, partition) not in committed:
                    continue  # as the UPDATE below finds no row
                con.execute(
                    "INSERT INTO offset_log VALUES (?, ?, ?, now()::TIMESTAMP)",
                    [topic, partition, offset + 1],
                )
            else:
                con.execute(
                    "UPDATE offsets SET next_offset = ? WHERE topic = ? AND kafka_partition = ?",
                    [offset + 1, topic, partition],
                )


def _next_offset(con: duckdb.DuckDBPyConnection, topic: str, partition: int) -> int:
    """The offset after every one the ledger accounts for on this partition."""
    found = con.execute(
        "SELECT max(o) FROM ("
        + " UNION ALL ".join(
            f"SELECT max(kafka_offset) + 1 AS o FROM {table} "
            "WHERE topic = $topic AND kafka_partition = $partition"
            for table in ("disclosures", "duplicates", "quarantine", "watermarks")
        )
        + " UNION ALL SELECT next_offset FROM offsets "
        "WHERE topic = $topic AND kafka_partition = $partition)",
        {"topic": topic, "partition": partition},
    ).fetchone()
    return int(found[0]) if found and found[0] is not None else 0
