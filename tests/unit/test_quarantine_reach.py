"""Erasure reaches the quarantine: a message whose subject is known is sealed under that
subject's key; one whose subject cannot be known is purged after the retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers.pipeline import Ingestor, SourceMessage
from ledger.erasure import erase_subject
from ledger.errors import LedgerError
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import (
    UNREADABLE_ERASED,
    deployment_sealed,
    purge_quarantine,
    read_quarantine,
    sealed_quarantine,
)
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
QUARANTINED_AT = datetime(2026, 1, 1)
POISON = b"\xc3\x01not an event"


def _ingest(
    ledger: Ledger, keys: SubjectKeyStore, reference: ReferenceData, *messages: SourceMessage
) -> None:
    at = int(QUARANTINED_AT.replace(tzinfo=UTC).timestamp() * 1000)
    Ingestor(ledger, keys, reference, clock_ms=lambda: at).ingest(list(messages))


def _refused(subject_id: str, subject_type: str = "member") -> bytes:
    """Decodes, but the reference data refuses it (an unknown purpose): quarantined."""
    event = make_event(
        subject={"id": subject_id, "type": subject_type}, purpose="marketing.mind_reading"
    )
    return CODEC.encode(event.to_avro())


def _accepted(subject_id: str, subject_type: str = "member") -> bytes:
    return CODEC.encode(make_event(subject={"id": subject_id, "type": subject_type}).to_avro())


def test_an_erased_subjects_quarantined_messages_open_before_and_not_after_the_erasure(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        _ingest(
            ledger,
            key_store,
            reference,
            SourceMessage(TOPIC, 0, 0, b"member-7", _accepted("member-7")),
            # the body names the subject
            SourceMessage(TOPIC, 0, 1, b"member-7", _refused("member-7")),
            # undecodable: only the Kafka key names the subject, held as a member
            SourceMessage(TOPIC, 0, 2, b"member-7", POISON),
        )
        key_id = key_store.secrets_for("member", "member-7")
        assert key_id is not None
        before = read_quarantine(ledger, key_store)
        assert [(q.offset, q.sealed_with, q.unreadable) for q in before] == [
            (1, key_id.key_id, None),
            (2, key_id.key_id, None),
        ]
        assert before[0].value is not None
        assert CODEC.decode(before[0].value)[1]["subject"]["id"] == "member-7"
        assert before[1].value == POISON and before[1].key == b"member-7"

        erase_subject(ledger, key_store, "member", "member-7", actor="dpo")

        after = read_quarantine(ledger, key_store)
        assert [(q.offset, q.key, q.value, q.unreadable) for q in after] == [
            (1, None, None, UNREADABLE_ERASED),
            (2, None, None, UNREADABLE_ERASED),
        ]
        # the sealed bytes are still there (evidence that something was quarantined), but
        # no key in the system opens them, and the retention purge leaves them alone
        assert all(q.value is not None for q in sealed_quarantine(ledger))
        later = QUARANTINED_AT + timedelta(days=400)
        assert purge_quarantine(ledger, retention_days=30, now=later).purged == 0
        assert verify_ledger(ledger).ok


def test_a_kafka_key_naming_no_known_subject_or_two_leaves_the_deployment_key(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        _ingest(
            ledger,
            key_store,
            reference,
            SourceMessage(TOPIC, 0, 0, b"x-1", _accepted("x-1", "member")),
            SourceMessage(TOPIC, 0, 1, b"x-1", _accepted("x-1", "guest")),
            SourceMessage(TOPIC, 0, 2, b"x-1", POISON),  # a member and a guest: which?
            SourceMessage(TOPIC, 0, 3, b"never-seen", POISON),  # no key is made from it
            SourceMessage(TOPIC, 0, 4, b"\xff\xfe", POISON),  # not UTF-8
            SourceMessage(TOPIC, 0, 5, None, POISON),
        )
        assert key_store.secrets_for("member", "never-seen") is None
        assert key_store.secrets_for("guest", "never-seen") is None
        found = read_quarantine(ledger, key_store)
        assert [(q.offset, q.sealed_with, q.value) for q in found] == [
            (offset, None, POISON) for offset in (2, 3, 4, 5)
        ]
        # the deployment key alone opens them (rows sealed before keep opening this way)
        assert [q.value for q in read_quarantine(ledger, key_store.quarantine_key)] == [POISON] * 4


def test_unknown_subjects_messages_are_purged_after_the_retention_and_verify_stays_clean(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    with Ledger(ledger_path) as ledger:
        _ingest(
            ledger,
            key_store,
            reference,
            SourceMessage(TOPIC, 0, 0, b"stranger", POISON),
            SourceMessage(TOPIC, 0, 1, b"member-8", _refused("member-8")),
            SourceMessage(TOPIC, 0, 2, b"m", _accepted("member-9")),
        )
        held = deployment_sealed(ledger, retention_days=30)
        assert (held.count, held.purge_by) == (1, QUARANTINED_AT + timedelta(days=30))

        within = purge_quarantine(ledger, retention_days=30, now=_utc(days=29))
        assert within.purged == 0
        assert read_quarantine(ledger, key_store)[0].value == POISON

        done = purge_quarantine(ledger, retention_days=30, now=_utc(days=31))
        assert done.purged == 1
        first, second = read_quarantine(ledger, key_store)
        assert (first.offset, first.key, first.value) == (0, None, None)
        assert first.purged_at == QUARANTINED_AT + timedelta(days=31)
        assert first.unreadable is not None and "purged" in first.unreadable
        assert first.error  # the error text and the position stay
        assert second.value is not None and second.purged_at is None  # a subject's: kept
        (stored,) = ledger.con.execute(
            "SELECT count(*) FROM quarantine WHERE purged_at IS NOT NULL "
            "AND message_key IS NULL AND message_value IS NULL"
        ).fetchall()
        assert stored == (1,)
        assert deployment_sealed(ledger, retention_days=30).count == 0
        # every offset still accounted for exactly once: the row stays, purged
        result = verify_ledger(ledger)
        assert result.ok, result.failures
        assert purge_quarantine(ledger, retention_days=30, now=_utc(days=60)).purged == 0


def test_a_retention_under_one_day_is_refused_naming_the_setting(
    ledger_path: Path,
) -> None:
    with Ledger(ledger_path) as ledger, pytest.raises(LedgerError, match="RETENTION_DAYS"):
        purge_quarantine(ledger, retention_days=0)


def _utc(*, days: int) -> datetime:
    return (QUARANTINED_AT + timedelta(days=days)).replace(tzinfo=UTC)


def test_the_consumer_purges_on_its_own_once_the_retention_has_passed(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    """`consume` and `serve` purge on the committing thread, hourly: no second writer."""
    start = int(QUARANTINED_AT.replace(tzinfo=UTC).timestamp() * 1000)
    clock = [start]
    with Ledger(ledger_path) as ledger:
        ingestor = Ingestor(
            ledger, key_store, reference, clock_ms=lambda: clock[0], quarantine_retention_days=30
        )
        ingestor.ingest([SourceMessage(TOPIC, 0, 0, b"stranger", POISON)])
        clock[0] = start + 31 * 86_400_000
        assert ingestor.checkpoint_if_due() is None  # idle: the purge is due all the same
        (row,) = sealed_quarantine(ledger)
        assert (row.value, row.purged_at) == (None, QUARANTINED_AT + timedelta(days=31))
        assert verify_ledger(ledger).ok
