"""Shared by the ``test_reliability_*`` tests: the run's random seed, fast pre-encoded
traffic with duplicates and poison, the consumer as a subprocess, and the one assertion
that matters: the ledger holds exactly what was sent, each offset accounted for once.

The seed is drawn once per test run and printed by every test that uses it; set
``DISCLOSURE_LEDGER_TEST_SEED`` to replay a failure with the same traffic and kill times.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import psutil

from disclosure_ledger.commands.key_material import default_key_store
from disclosure_ledger.simulate import simulate
from ledger.key_check import KeyStoreAccess
from ledger.lake import LakeLocation
from ledger.pseudonyms import SubjectKeyStore
from ledger.quarantine import read_quarantine
from ledger.state_db import StateLocation
from ledger.store import Ledger
from ledger.verify import verify_ledger
from producers.publisher import DisclosurePublisher
from schemas.codec import MAGIC, EventCodec, latest_schema, shipped_schemas, without_logical_types

SEED_ENV = "DISCLOSURE_LEDGER_TEST_SEED"
_RUN_SEED = secrets.randbelow(2**31)
CLI = Path(sys.executable).with_name("disclosure-ledger")
SIM_START = datetime(2025, 11, 1, tzinfo=UTC)
SIM_END = datetime(2026, 11, 1, tzinfo=UTC)


def run_seed(test: str) -> int:
    """This run's seed (or ``$DISCLOSURE_LEDGER_TEST_SEED``), printed for replay."""
    text = os.environ.get(SEED_ENV)
    seed = int(text) if text else _RUN_SEED
    print(f"{test}: random seed {seed} (replay with {SEED_ENV}={seed})")
    return seed


@dataclass(frozen=True)
class Sent:
    """One message as sent: what it is, and for a valid event its id and subject."""

    key: bytes | None
    value: bytes | None
    kind: str  # "valid", "duplicate", or the name of a poison kind
    event_id: str | None = None
    subject: tuple[str, str] | None = None
    schema_version: int | None = None


class EventFactory:
    """Valid events, fast: a pool of simulated events (so every flow classifies), each
    re-issued with a fresh event_id spliced into its pre-encoded bytes."""

    def __init__(self, rng: random.Random, *, pool: int = 200, write_version: int | None = None):
        self.rng = rng
        self.codec = EventCodec(write_version=write_version)
        self.records: list[dict[str, Any]] = []
        self._parts: list[tuple[bytes, bytes, bytes, tuple[str, str]]] = []
        for event in simulate(pool, rng.randrange(2**31), SIM_START, SIM_END):
            value = self.codec.encode(event.to_avro())
            event_id = str(event.event_id).encode()
            at = value.index(event_id)
            assert value[at - 1] == 0x48  # zig-zag length 36, right after the header
            subject = (event.subject.type.value, event.subject.id)
            self._parts.append((event.subject.id.encode(), value[:at], value[at + 36 :], subject))
            self.records.append(self.codec.decode(value)[1])

    def make(self) -> Sent:
        key, head, tail, subject = self.rng.choice(self._parts)
        event_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return Sent(
            key,
            head + event_id.encode() + tail,
            "valid",
            event_id,
            subject,
            self.codec.write_version,
        )


def _plain_writer(version: int | None = None) -> tuple[bytes, Any]:
    """(header, parsed schema without logical types) to write raw, even invalid, values."""
    schema = latest_schema() if version is None else shipped_schemas()[version - 1]
    return MAGIC + schema.fingerprint, fastavro.parse_schema(
        without_logical_types(schema.schema_json)
    )


def _write(header: bytes, schema: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    buffer.write(header)
    fastavro.schemaless_writer(buffer, schema, record)
    return buffer.getvalue()


def _with_extra_recipient_category(record: dict[str, Any]) -> bytes:
    """A record written by a producer whose RecipientCategory enum has a symbol more than
    the schema its fingerprint names: on the wire, an enum index the reader lacks."""
    latest = latest_schema()
    schema_json = without_logical_types(latest.schema_json)
    for field_ in schema_json["fields"]:
        if field_["name"] == "recipient":
            for inner in field_["type"]["fields"]:
                if inner["name"] == "category":
                    inner["type"]["symbols"] = [*inner["type"]["symbols"], "data_broker"]
    changed = {**record, "recipient": {"id": "acme-data", "category": "data_broker"}}
    return _write(MAGIC + latest.fingerprint, fastavro.parse_schema(schema_json), changed)


# Each poison kind: how to make it from a valid message and its decoded record, and the
# words its quarantine error must contain.
PoisonMaker = Callable[[random.Random, bytes, dict[str, Any]], bytes | None]
POISON: dict[str, tuple[PoisonMaker, str]] = {
    "truncated": (
        lambda rng, value, _: value[: rng.randrange(11, len(value) - 1)],
        "does not match schema",
    ),
    "truncated_header": (lambda rng, value, _: value[: rng.randrange(0, 10)], "shorter than"),
    "wrong_magic": (lambda rng, value, _: b"\x00\x01" + value[2:], "instead of c301"),
    "json_not_avro": (
        lambda rng, value, record: json.dumps({"event_id": record["event_id"]}).encode(),
        "instead of c301",
    ),
    "unknown_fingerprint": (
        lambda rng, value, _: value[:2] + rng.randbytes(8) + value[10:],
        "is not one of the shipped schemas",
    ),
    "body_of_another_version": (
        # a v2 body labelled with v1's fingerprint: one byte (legal_reference) too many
        lambda rng, value, _: MAGIC + shipped_schemas()[0].fingerprint + value[10:],
        "trailing bytes",
    ),
    "empty_categories": (
        lambda rng, value, record: _write(*_plain_writer(), {**record, "data_categories": []}),
        "data_categories is empty",
    ),
    "bad_event_id": (
        lambda rng, value, record: _write(*_plain_writer(), {**record, "event_id": "order-17"}),
        "not a lower-case RFC 4122 UUID",
    ),
    "unknown_enum_symbol": (
        lambda rng, value, record: _with_extra_recipient_category(record),
        "field recipient.category: enum index 8 is outside the 8 RecipientCategory symbols",
    ),
    "tombstone": (lambda rng, value, _: None, "no value"),
}


def poison(kind: str, rng: random.Random, valid: Sent) -> Sent:
    make, _ = POISON[kind]
    assert valid.value is not None
    record = EventCodec().decode(valid.value)[1]
    return Sent(f"poison-{rng.randrange(10**6)}".encode(), make(rng, valid.value, record), kind)


def traffic(
    rng: random.Random,
    factory: EventFactory,
    valid: int,
    *,
    duplicates: int = 0,
    poison_count: int = 0,
    cross_partition_share: float = 0.2,
) -> list[Sent]:
    """``valid`` distinct events, plus re-sends of earlier ones (some under another key,
    so on another partition) and poison of every kind, at random places."""
    messages = [factory.make() for _ in range(valid)]
    for _ in range(duplicates):
        at = rng.randrange(1, len(messages) + 1)
        recent = [m for m in messages[max(0, at - 50) : at] if m.kind == "valid"]
        original = rng.choice(recent or [m for m in messages if m.kind == "valid"])
        key = original.key
        if rng.random() < cross_partition_share:
            key = f"re-publisher-{rng.randrange(10**6)}".encode()
        messages.insert(
            at,
            Sent(
                key,
                original.value,
                "duplicate",
                original.event_id,
                original.subject,
                original.schema_version,
            ),
        )
    kinds = sorted(POISON)
    for number in range(poison_count):
        at = rng.randrange(0, len(messages) + 1)
        messages.insert(at, poison(kinds[number % len(kinds)], rng, factory.make()))
    return messages


def send(bootstrap: str, topic: str, messages: Sequence[Sent]) -> list[tuple[int, int]]:
    """Send with the publisher library, in order; returns each message's (partition, offset)."""
    with DisclosurePublisher(bootstrap, topic) as publisher:
        futures = [publisher.send_encoded(m.key, m.value) for m in messages]
        publisher.flush(timeout=120)
        acks = [future.get(timeout=0) for future in futures]
    return [(ack.partition, ack.offset) for ack in acks]


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in probe.partitions_for_topic(topic)]
        return {tp.partition: o for tp, o in probe.end_offsets(partitions).items() if o}
    finally:
        probe.close()


@dataclass
class LedgerContents:
    rows: int
    duplicates: int
    quarantined: int
    schema_versions: dict[str, int] = field(default_factory=dict)  # event_id -> version


def subject_secret() -> bytes:
    """The secret the consumer under test ran with: the env var the subprocess tests set
    (fixture ``subject_secret_env``), else the in-process ``key_store`` fixture's."""
    from tests.conftest import TEST_SECRET

    return os.environ.get("DISCLOSURE_LEDGER_SUBJECT_SECRET", "").encode() or TEST_SECRET


def assert_ledger_holds_exactly(
    ledger_path: Path | LakeLocation,
    topic: str,
    messages: Sequence[Sent],
    positions: Sequence[tuple[int, int]],
    *,
    bootstrap: str | None = None,
    context: str = "",
    secret: bytes | None = None,
    key_store: StateLocation | None = None,
) -> LedgerContents:
    """The ledger holds each distinct valid event once, every re-send as a duplicate
    pointing at it, every poison message in quarantine with its bytes, stored offsets at
    the topic's end, and verifies (chains and offset accounting). ``ledger_path`` may be a
    lake; ``key_store``: the key store, when not the one beside the ledger."""
    with Ledger(ledger_path, read_only=True) as ledger:
        rows = ledger.con.execute(
            "SELECT event_id::VARCHAR, kafka_partition, kafka_offset, chain_id, seq, "
            "subject_pseudonym, schema_version FROM disclosures WHERE topic = ?",
            [topic],
        ).fetchall()
        duplicates = ledger.con.execute(
            "SELECT event_id::VARCHAR, kafka_partition, kafka_offset, original_chain_id, "
            "original_seq FROM duplicates WHERE topic = ?",
            [topic],
        ).fetchall()
        # the key store opens what is sealed under a subject's key (ledger/quarantine.py)
        with SubjectKeyStore(
            key_store or default_key_store(ledger_path),
            secret or subject_secret(),
            access=KeyStoreAccess.read,
            ledger=ledger,
        ) as keys:
            quarantined = [
                (q.partition, q.offset, q.value, q.error)
                for q in read_quarantine(ledger, keys, topic=topic)
            ]
        stored = ledger.stored_offsets(topic)
        verified = verify_ledger(ledger)
    where = f" ({context})" if context else ""
    assert verified.ok, f"ledger does not verify{where}: {verified.failures[:10]}"

    occurrences: dict[str, set[tuple[int, int]]] = defaultdict(set)
    poison_at: dict[tuple[int, int], Sent] = {}
    subject_of: dict[str, tuple[str, str]] = {}
    for message, position in zip(messages, positions, strict=True):
        if message.kind in ("valid", "duplicate"):
            assert message.event_id is not None and message.subject is not None
            occurrences[message.event_id].add(position)
            subject_of[message.event_id] = message.subject
        else:
            poison_at[position] = message

    row_ids = [r[0] for r in rows]
    assert len(row_ids) == len(set(row_ids)), f"an event_id was appended twice{where}"
    assert set(row_ids) == set(occurrences), (
        f"ledger rows differ from the distinct valid events{where}: "
        f"{len(set(occurrences) - set(row_ids))} missing, "
        f"{len(set(row_ids) - set(occurrences))} unexpected"
    )
    row_at = {r[0]: (r[1], r[2]) for r in rows}
    chain_seq = {r[0]: (r[3], r[4]) for r in rows}
    for event_id, position in row_at.items():
        assert position in occurrences[event_id], f"row {event_id} at a position never sent"
    expected_duplicates = {
        (event_id, position)
        for event_id, places in occurrences.items()
        for position in places
        if position != row_at[event_id]
    }
    assert {(d[0], (d[1], d[2])) for d in duplicates} == expected_duplicates, (
        f"duplicates differ{where}"
    )
    assert len(duplicates) == len(expected_duplicates), f"a duplicate recorded twice{where}"
    for event_id, _, _, chain, seq in duplicates:
        assert chain_seq[event_id] == (chain, seq), f"duplicate {event_id} points elsewhere"

    assert {(q[0], q[1]) for q in quarantined} == set(poison_at), f"quarantine differs{where}"
    assert len(quarantined) == len(poison_at), f"a message quarantined twice{where}"
    for partition, offset, value, error in quarantined:
        sent = poison_at[(partition, offset)]
        assert (None if value is None else bytes(value)) == sent.value
        assert POISON[sent.kind][1] in error, f"{sent.kind}: {error}"

    pseudonyms: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event_id, *_, pseudonym, _ in rows:
        pseudonyms[subject_of[event_id]].add(pseudonym)
    assert all(len(p) == 1 for p in pseudonyms.values()), f"a subject has two pseudonyms{where}"
    assert len({next(iter(p)) for p in pseudonyms.values()}) == len(pseudonyms)

    expected_next: dict[int, int] = {}
    for partition, offset in positions:
        expected_next[partition] = max(expected_next.get(partition, 0), offset + 1)
    if bootstrap is not None:
        assert end_offsets(bootstrap, topic) == expected_next, "topic holds unexpected messages"
    assert stored == expected_next, f"stored offsets {stored} != topic ends {expected_next}"
    return LedgerContents(
        rows=len(rows),
        duplicates=len(duplicates),
        quarantined=len(quarantined),
        schema_versions={r[0]: r[6] for r in rows},
    )


# Every child process a test starts, so that one failing half-way does not leave them
# running into the next test (see tests/integration/conftest.py).
LIVE_PROCESSES: list[subprocess.Popen[Any]] = []


def stop_leftover_processes() -> None:
    """SIGKILL and reap whatever child a test left running (on a failure half-way); a
    finished one is only reaped."""
    while LIVE_PROCESSES:
        process = LIVE_PROCESSES.pop()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


class ConsumerProcess:
    """``disclosure-ledger consume --no-checkpoints`` as a child process, its log in a file."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        ledger_path: Path,
        log_path: Path,
        *options: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self.out_path = log_path.with_suffix(".out")
        command = [
            str(CLI),
            "consume",
            "--bootstrap-servers",
            bootstrap,
            "--topic",
            topic,
            "--ledger",
            str(ledger_path),
            # Signed checkpoints are another guarantee, tested on their own.
            "--no-checkpoints",
            *options,
        ]
        with self.log_path.open("wb") as err, self.out_path.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        self.started = time.monotonic()
        LIVE_PROCESSES.append(self.process)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.log()))

    def wait_for_log(self, pattern: str, times: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(pattern) < times:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"consumer exited ({self.process.returncode}) before logging {pattern!r} "
                    f"{times} time(s):\n{self.log()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {pattern!r} x{times} in {timeout} s:\n{self.log()[-3000:]}"
                )
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return int(self.process.wait(timeout=timeout))

    def kill(self) -> bool:
        """SIGKILL; whether it was still running."""
        if self.process.poll() is not None:
            return False
        self.process.kill()
        self.process.wait(timeout=30)
        return True

    def summary(self) -> str:
        return (
            f"exit {self.process.returncode}\n--- stdout\n{self.output()}"
            f"\n--- log\n{self.log()[-4000:]}"
        )


def kinds(messages: Iterable[Sent]) -> dict[str, int]:
    counted: dict[str, int] = defaultdict(int)
    for message in messages:
        counted[message.kind] += 1
    return dict(counted)
