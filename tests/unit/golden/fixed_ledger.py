"""The fixed small ledger the report golden files are computed from.

Simulated traffic of the platform (seeded, so the same events every time, with a known
fraction of undeclared flows) over 18 months, plus a few disclosures written by hand for
what the simulator never produces by default: transfers to the survey provider after its
processing contract (and its SCCs) lapsed on 2026-07-01, which the consumer flags. All of
it goes through the real ingest pipeline (:class:`consumers.pipeline.Ingestor`) with a
real subject key store, so the ledger holds what a consumer would have written.

Keys in the key store are random, so pseudonyms and chain hashes differ from one build
to the next; the golden tests mask hashes, and every other value is fixed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.simulate import simulate
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import (
    DISCLOSURE_COLUMNS,
    DUPLICATE_COLUMNS,
    QUARANTINE_COLUMNS,
    Batch,
    Ledger,
    empty,
)
from reference import ReferenceData
from schemas.codec import EventCodec
from schemas.model import DisclosureEvent
from tests.conftest import LedgerLocation
from tests.unit.ledger_rows import COMPLETE_THROUGH, STAND_IN_SOURCE, record_coverage

TOPIC = "privacy.disclosures.v1"
PARTITIONS = 3
SECRET = b"golden-secret-" + b"0" * 18
SEED = 20261101
EVENTS = 1500
START = datetime(2025, 5, 1, tzinfo=UTC)
END = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = date(2026, 11, 1)
GENERATED_AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
INGESTED_AT_MS = 1_793_000_000_000
WATERMARK_AT = datetime(2026, 11, 1, 9, 0)
"""Every expected source's watermark on every partition: the reports as of AS_OF are
complete (coverage WATERMARK_AT less the allowance for late events)."""
HEAVY_SUBJECT = ("member", "member-0000001")  # the simulator's most active member
UNSAFE_SUBJECT = ("member", "member-0000777")  # written by hand, to the survey provider


@dataclass(frozen=True)
class FixedLedger:
    path: Path
    key_store: Path
    events: tuple[DisclosureEvent, ...]  # every event ingested, in ingest order


def _unsafe_transfers() -> list[DisclosureEvent]:
    """Survey requests after 2026-07-01: the registry then says 'no safeguard'."""
    return [
        DisclosureEvent.model_validate(
            {
                "event_id": str(uuid.UUID(int=0x5EED_0000 + n, version=4)),
                "occurred_at": datetime(2026, 8, 3 + 7 * n, 10, 15, tzinfo=UTC),
                "subject": {"id": UNSAFE_SUBJECT[1], "type": UNSAFE_SUBJECT[0]},
                "recipient": {"id": "survey-provider", "category": "service_provider"},
                "data_categories": ["user.contact.email"],
                "purpose": "functional.service.improve",
                "legal_basis": "legitimate_interests",
                "producer": {"service": "marketing", "version": "5.3.0"},
                "context": {},
            }
        )
        for n in range(3)
    ]


def fixed_events(reference: ReferenceData) -> list[DisclosureEvent]:
    simulated = list(simulate(EVENTS, SEED, START, END, reference=reference, undeclared_rate=0.03))
    return sorted(simulated + _unsafe_transfers(), key=lambda e: e.occurred_at)


def build_fixed_ledger(folder: Path, reference: ReferenceData) -> FixedLedger:
    """Ingest the fixed events into ``folder/ledger.duckdb`` (key store beside it)."""
    path = folder / "ledger.duckdb"
    key_store = folder / "ledger.duckdb.keys.sqlite"
    events = fixed_events(reference)
    codec = EventCodec()
    messages = [
        SourceMessage(
            TOPIC,
            i % PARTITIONS,
            i // PARTITIONS,
            e.subject.id.encode(),
            codec.encode(e.to_avro()),
        )
        for i, e in enumerate(events)
    ]
    with Ledger(path) as ledger, SubjectKeyStore(key_store, SECRET) as keys:
        ingestor = Ingestor(ledger, keys, reference, clock_ms=lambda: INGESTED_AT_MS)
        for start in range(0, len(messages), 500):
            stats = ingestor.ingest(messages[start : start + 500])
            if stats.quarantined or stats.duplicates:
                raise AssertionError(f"the fixed events must all be accepted: {stats}")
    record_coverage(path, WATERMARK_AT)
    return FixedLedger(path, key_store, tuple(events))


def store_reference(
    path: LedgerLocation,
    reference: ReferenceData,
    *,
    complete_through: datetime | None = COMPLETE_THROUGH,
) -> None:
    """Store the reference tables in a ledger (a test ledger written row by row lacks
    them), as the consumer does with the first batch it ingests; then coverage evidence for
    the sources it declares."""
    tables = reference.to_arrow_tables()
    with Ledger(path) as ledger:
        if "ref_sources" in tables and _only_stand_in_sources(ledger):
            # the reference declares its sources: the stand-in write_ledger made goes
            ledger.con.execute("DROP TABLE ref_sources")
        ledger.append_batch(
            Batch(
                accepted=empty(DISCLOSURE_COLUMNS),
                quarantined=empty(QUARANTINE_COLUMNS),
                duplicates=empty(DUPLICATE_COLUMNS),
                reference_tables=tables,
            )
        )
    if complete_through is not None:
        record_coverage(path, complete_through)


def _only_stand_in_sources(ledger: Ledger) -> bool:
    found = ledger.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ref_sources'"
    ).fetchone()
    if not found or not found[0]:
        return False
    sources = ledger.con.execute("SELECT DISTINCT source FROM ref_sources").fetchall()
    return {r[0] for r in sources} <= {STAND_IN_SOURCE}
