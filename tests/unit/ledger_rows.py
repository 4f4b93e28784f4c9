"""Real DuckDB ledger files with chosen rows, for report and query tests.

``disclosure_row(**overrides)`` is one valid ``disclosures`` row; ``write_ledger(path,
rows)`` numbers the rows per chain (``seq`` 1, 2, ...), gives them stand-in hashes
(``chain_hash = sha256("chain_id/seq")``: reports read hashes, they do not verify them)
and appends them through :meth:`Ledger.append_batch`, the one write path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ledger.store import (
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Batch,
    Ledger,
    empty,
)

TOPIC = "privacy.disclosures.v1"
CHAIN = f"{TOPIC}/0"


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


def write_ledger(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Append ``rows`` to the ledger file at ``path`` (created if absent); returns path."""
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
    return path
