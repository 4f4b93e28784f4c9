"""Poison messages, one test per kind: each is quarantined with an error saying what was
wrong, copied to the dead-letter topic with its source, and the consumer carries on.

One topic holds every kind, each between two valid events; one ``disclosure-ledger
consume --dead-letter-topic`` run ingests it. A naive timestamp or an unknown enum symbol
cannot be written as Avro by the publisher library (the model refuses it), so those come
through ``publish`` as JSON lines, which names the line and field and sends nothing.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from disclosure_ledger.cli import main
from disclosure_ledger.commands.key_material import default_key_store
from ledger.key_check import KeyStoreAccess
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import SEALED_PREFIX, read_quarantine, sealed_quarantine, unseal
from ledger.store import Ledger
from producers.topics import ensure_topic
from schemas.codec import EventCodec
from tests.integration.reliability_support import (
    POISON,
    ConsumerProcess,
    EventFactory,
    Sent,
    assert_ledger_holds_exactly,
    poison,
    run_seed,
    send,
)
from tests.unit.events import make_event

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Poisoned:
    topic: str
    dead_letter_topic: str
    messages: list[Sent]
    positions: list[tuple[int, int]]
    ledger_path: Path
    consumer: ConsumerProcess


POISON_SECRET = secrets.token_hex(32)
SUBJECT_KNOWN_KIND = "truncated"


@pytest.fixture(scope="module")
def poisoned(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, client_env: dict[str, str]
) -> Poisoned:
    rng = random.Random(run_seed("poison"))
    topic = f"test.disclosures.poison.{uuid.uuid4().hex[:8]}"
    dead_letters = f"{topic}.dlq"
    ensure_topic(kafka_bootstrap, topic, 2)
    ensure_topic(kafka_bootstrap, dead_letters, 1)
    factory = EventFactory(rng, pool=20)
    messages: list[Sent] = []
    for kind in sorted(POISON):
        bad = poison(kind, rng, factory.make())
        if kind == SUBJECT_KNOWN_KIND:
            # its Kafka key names the subject of the valid event just before it: sealed under
            # that subject's key (the others' keys name no subject: the deployment key)
            before = factory.make()
            messages += [before, Sent(before.key, bad.value, bad.kind), factory.make()]
            continue
        messages += [factory.make(), bad, factory.make()]
    positions = send(kafka_bootstrap, topic, messages)
    folder = tmp_path_factory.mktemp("poison")
    ledger_path = folder / "ledger.duckdb"
    consumer = ConsumerProcess(
        kafka_bootstrap,
        topic,
        ledger_path,
        folder / "consume.log",
        "--until-idle",
        "1",
        "--batch-size",
        "7",
        "--dead-letter-topic",
        dead_letters,
        env={"DISCLOSURE_LEDGER_SUBJECT_SECRET": POISON_SECRET, **client_env},
    )
    assert consumer.wait(timeout=120) == 0, consumer.summary()
    return Poisoned(topic, dead_letters, messages, positions, ledger_path, consumer)


def _keys(ledger_path: Path, ledger: Ledger) -> SubjectKeyStore:
    return SubjectKeyStore(
        default_key_store(ledger_path),
        POISON_SECRET.encode(),
        access=KeyStoreAccess.read,
        ledger=ledger,
    )


def _quarantine(ledger_path: Path) -> dict[tuple[int, int], tuple[bytes | None, str]]:
    with Ledger(ledger_path, read_only=True) as ledger, _keys(ledger_path, ledger) as keys:
        rows = read_quarantine(ledger, keys)
    return {(q.partition, q.offset): (q.value, q.error) for q in rows}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_each_poison_kind_is_quarantined_saying_what_was_wrong(
    poisoned: Poisoned, kind: str
) -> None:
    at = next(i for i, m in enumerate(poisoned.messages) if m.kind == kind)
    position = poisoned.positions[at]
    quarantined = _quarantine(poisoned.ledger_path)
    assert position in quarantined, f"{kind} at {position} was not quarantined"
    value, error = quarantined[position]
    print(f"{kind}: {error}")
    assert value == poisoned.messages[at].value  # the raw bytes, kept as evidence
    assert POISON[kind][1] in error
    # ... and the valid events on either side of it are in the ledger
    with Ledger(poisoned.ledger_path, read_only=True) as ledger:
        neighbours = {m.event_id for m in (poisoned.messages[at - 1], poisoned.messages[at + 1])}
        found = ledger.con.execute(
            "SELECT count(*) FROM disclosures WHERE event_id::VARCHAR IN (SELECT unnest(?))",
            [sorted(e for e in neighbours if e)],
        ).fetchone()
    assert found == (2,)


def test_poison_loses_nothing_else_and_every_offset_is_accounted_for(
    poisoned: Poisoned, kafka_bootstrap: str
) -> None:
    contents = assert_ledger_holds_exactly(
        poisoned.ledger_path,
        poisoned.topic,
        poisoned.messages,
        poisoned.positions,
        bootstrap=kafka_bootstrap,
        secret=POISON_SECRET.encode(),
    )
    assert contents.quarantined == len(POISON)
    assert contents.rows == 2 * len(POISON)
    assert f"{len(POISON)} quarantined" in poisoned.consumer.output()


def _read_all(bootstrap: str, topic: str) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_dead_letter_copies_carry_the_sealed_bytes_with_their_source_and_key(
    poisoned: Poisoned, kafka_bootstrap: str
) -> None:
    """A copy in the dead-letter topic is sealed exactly as the quarantine row (never the
    raw bytes), and a header says under which key, so an erasure reaches it too."""
    copies = _read_all(kafka_bootstrap, poisoned.dead_letter_topic)
    raw = _quarantine(poisoned.ledger_path)
    with Ledger(poisoned.ledger_path, read_only=True) as ledger:
        stored = {(q.partition, q.offset): q for q in sealed_quarantine(ledger)}
        with _keys(poisoned.ledger_path, ledger) as keys:
            deployment_key = keys.quarantine_key
            subject_keys = {
                q.sealed_with: keys.subject_quarantine_key(q.sealed_with)
                for q in stored.values()
                if q.sealed_with is not None
            }
    assert len(copies) == len(stored) == len(POISON)
    sealed_with = []
    for copy in copies:
        headers = {name: value.decode() for name, value in copy.headers}
        assert headers["__connect.errors.topic"] == poisoned.topic
        position = (
            int(headers["__connect.errors.partition"]),
            int(headers["__connect.errors.offset"]),
        )
        row = stored[position]
        value, error = raw[position]
        assert copy.key == row.key and copy.key is not None
        assert copy.key.startswith(SEALED_PREFIX)  # the subject id, sealed
        assert copy.value == row.value  # sealed exactly as stored
        assert headers["__connect.errors.exception.message"] == error
        header = headers["disclosure-ledger.sealed-with"]
        sealed_with.append(header)
        assert header == (
            "deployment-key" if row.sealed_with is None else f"subject-key:{row.sealed_with}"
        )
        key = deployment_key if row.sealed_with is None else subject_keys[row.sealed_with]
        assert key is not None
        if value is not None:  # a message may come with no value at all
            assert copy.value is not None and copy.value.startswith(SEALED_PREFIX)
            assert copy.value != value
            assert unseal(key, poisoned.topic, *position, "value", copy.value) == value
    assert sealed_with.count("deployment-key") == len(POISON) - 1
    assert f"{len(POISON)} dead-lettered" in poisoned.consumer.output()


@pytest.fixture
def capture(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], tuple[str, str]]]:
    def read() -> tuple[str, str]:
        captured = capsys.readouterr()
        return captured.out, captured.err

    yield read


def test_publish_refuses_naive_timestamps_and_unknown_symbols_naming_line_and_field(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    capture: Callable[[], tuple[str, str]],
) -> None:
    topic = new_topic()
    good = [make_event(), make_event(legal_reference="DPA-2025-014 s.4")]
    naive = make_event().to_json_line().replace('.000Z"', '"')
    unknown_symbol = make_event().to_json_line().replace('"payment_provider"', '"data_broker"')
    empty_categories = make_event().to_json_line().replace('["user.financial"]', "[]")
    lines = [
        good[0].to_json_line(),
        naive,
        unknown_symbol,
        empty_categories,
        good[1].to_json_line(),
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code = main(["publish", "--bootstrap-servers", kafka_bootstrap, "--topic", topic, str(source)])
    out, err = capture()
    assert code == 1
    assert f"{source}:2: field occurred_at: " in err and "offset" in err
    assert f"{source}:3: field recipient.category: " in err
    assert f"{source}:4: field data_categories: " in err
    assert "2 delivered, 0 not delivered, 3 invalid line(s) not sent" in out
    codec = EventCodec()
    sent = [
        codec.decode(record.value)[1]["event_id"] for record in _read_all(kafka_bootstrap, topic)
    ]
    assert sent == [str(event.event_id) for event in good]
