"""The consumer group in the transport, with each client, against the real broker: members
split a topic's partitions, every partition starts where the listener says, a member that
leaves or is SIGKILLed hands its partitions over, and the listener's error reaches poll."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from kafka_transport import ClientConfigError, ConsumerTransport, open_consumer
from tests.conftest import ROOT
from tests.integration.reliability_support import LIVE_PROCESSES

pytestmark = pytest.mark.integration

PARTITIONS = 6
PER_PARTITION = 4
SESSION = 6.0  # the broker's least (group.min.session.timeout.ms): a SIGKILL is noticed soon
ALL = set(range(PARTITIONS))


def until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:g} s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str, kafka_client: str) -> str:
    """Six partitions of PER_PARTITION messages each (offsets 0..3)."""
    from producers.topics import ensure_topic

    name = f"test.group.{uuid.uuid4().hex[:12]}"
    ensure_topic(kafka_bootstrap, name, PARTITIONS)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.send(name, value=f"{p}-{i}".encode(), partition=p)
    producer.flush(10)
    producer.close()
    return name


def start_of(partition: int) -> int | None:
    """Where the tests' listener starts each partition: odd ones at offset 1, even ones at
    the earliest (None), which is 0."""
    return 1 if partition % 2 else None


class Member:
    """One member on a thread of its own that polls until stopped, then closes. It checks
    as it goes: the listener is called on the polling thread, no message of a partition
    the member does not own comes back, and the first one after each ``assigned`` is at
    the offset the listener returned."""

    def __init__(self, client: str, bootstrap: str, topic: str, group: str) -> None:
        self.topic = topic
        self.consumer: ConsumerTransport = open_consumer(
            client,  # type: ignore[arg-type]
            bootstrap,
            max_batch=100,
            timeout=10.0,
        )
        self.consumer.subscribe(topic, group, self, session_timeout=SESSION)
        self.events: list[tuple[str, list[int]]] = []
        self.expected: dict[int, int] = {}  # partition -> offset its next message must have
        self.firsts: list[tuple[int, int]] = []  # (partition, offset) checked against it
        self.wrong: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"member-{uuid.uuid4().hex[:6]}")
        self._thread.start()

    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        self._on_polling_thread("assigned")
        self.events.append(("assigned", partitions))
        self.expected.update({p: start_of(p) or 0 for p in partitions})
        return {p: start_of(p) for p in partitions}

    def revoked(self, topic: str, partitions: list[int]) -> None:
        self._on_polling_thread("revoked")
        self.events.append(("revoked", partitions))
        for p in partitions:
            self.expected.pop(p, None)

    def _on_polling_thread(self, call: str) -> None:
        if threading.current_thread() is not self._thread:
            self.wrong.append(f"{call} called on {threading.current_thread().name}")

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                for p, offset in self.consumer.poll(0.2, 100, lambda t, p, o, k, v: (p, o)):
                    if p not in self.consumer.assignment(self.topic):
                        self.wrong.append(f"a message of partition {p}, not owned")
                    if p in self.expected:
                        self.firsts.append((p, offset))
                        if offset != self.expected.pop(p):
                            self.wrong.append(f"partition {p} began at {offset}")
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()  # on this thread: revoked, then the member leaves

    def owned(self) -> set[int]:
        return self.consumer.assignment(self.topic)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the member did not stop"
        if self.error is not None:
            raise self.error


@pytest.fixture
def members(
    kafka_bootstrap: str, kafka_client: str, topic: str
) -> Iterator[Callable[[str], Member]]:
    made: list[Member] = []

    def make(group: str) -> Member:
        made.append(Member(kafka_client, kafka_bootstrap, topic, group))
        return made[-1]

    yield make
    for member in made:
        if member._thread.is_alive():
            member.close()


def test_two_members_split_the_partitions_and_the_survivor_of_a_close_gets_them_all(
    members: Callable[[str], Member],
) -> None:
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    first = members(group)
    until(lambda: first.owned() == ALL, "the first member owns every partition")
    second = members(group)

    def split() -> bool:
        mine, theirs = first.owned(), second.owned()
        return bool(mine) and bool(theirs) and mine | theirs == ALL and not mine & theirs

    until(split, "two members split the six partitions")
    # every partition began where the listener said (checked as read: firsts, wrong)
    until(
        lambda: {p for p, _ in first.firsts + second.firsts} == ALL,
        "each partition read from its start",
    )
    assert first.wrong == [] and second.wrong == []
    kept, left = first.owned(), second.owned()

    second.close()  # revokes its partitions (told to its listener), leaves the group
    assert second.events[-1] == ("revoked", sorted(left))
    until(lambda: first.owned() == ALL, "the survivor owns every partition again")
    assert first.events[-2:] == [("revoked", sorted(kept)), ("assigned", sorted(ALL))]
    until(lambda: not first.expected, "the survivor read each partition again from its start")
    first.close()
    assert first.wrong == [] and second.wrong == []
    assert all(offset == (start_of(p) or 0) for p, offset in first.firsts + second.firsts)


def test_the_partitions_of_a_sigkilled_member_go_to_the_survivor(
    members: Callable[[str], Member],
    kafka_bootstrap: str,
    kafka_client: str,
    topic: str,
    tmp_path: Path,
) -> None:
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    told, log = tmp_path / "told.txt", tmp_path / "member.log"
    with told.open("w") as out, log.open("w") as err:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.integration.group_member_process"),
                *(kafka_client, kafka_bootstrap, topic, group, str(SESSION)),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
    LIVE_PROCESSES.append(process)
    first = f"assigned {','.join(map(str, sorted(ALL)))}\n"  # the first member owns them all
    until(
        lambda: told.read_text().startswith(first),
        f"the member process owns every partition (its log: {log})",
    )
    survivor = members(group)
    until(lambda: survivor.owned() not in (set(), ALL), "the survivor owns some partitions")
    process.kill()
    process.wait(10)
    until(lambda: survivor.owned() == ALL, "the survivor owns every partition")
    assert survivor.events[-1] == ("assigned", sorted(ALL))
    until(lambda: not survivor.expected, "the survivor read each partition from its start")
    survivor.close()
    assert survivor.wrong == []


class Failing:
    def __init__(self, failing: str) -> None:
        self.failing = failing

    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        if self.failing == "assigned":
            raise LookupError("the ledger could not say where to start")
        return dict.fromkeys(partitions)

    def revoked(self, topic: str, partitions: list[int]) -> None:
        if self.failing == "revoked":
            raise LookupError("the ledger could not give the partitions up")


@pytest.mark.parametrize("failing", ["assigned", "revoked"])
def test_an_exception_of_the_listener_reaches_the_caller_of_poll(
    kafka_bootstrap: str, kafka_client: str, topic: str, failing: str
) -> None:
    consumer = open_consumer(
        kafka_client,  # type: ignore[arg-type]
        kafka_bootstrap,
        max_batch=100,
        timeout=10.0,
    )
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    consumer.subscribe(topic, group, Failing(failing), session_timeout=SESSION)
    read: list[int] = []
    if failing == "assigned":
        deadline = time.monotonic() + 30
        with pytest.raises(LookupError, match="where to start") as raised:
            while time.monotonic() < deadline:
                read.extend(consumer.poll(0.2, 100, lambda t, p, o, k, v: o))
        # and again: the consumer reads nothing more, whatever the caller does next
        with pytest.raises(LookupError) as again:
            consumer.poll(0.2, 100, lambda t, p, o, k, v: o)
        assert again.value is raised.value
        assert read == [] and consumer.assignment(topic) == set()
        consumer.close()
    else:
        until(lambda: bool(consumer.poll(0.2, 100, lambda t, p, o, k, v: o)), "a first message")
        with pytest.raises(LookupError, match="give the partitions up"):
            consumer.close()  # revokes on close


def test_a_session_timeout_the_broker_refuses_stops_the_consumer_naming_the_setting(
    kafka_bootstrap: str, kafka_client: str, topic: str
) -> None:
    """Not an outage to ride out: the consumer loop retries only a TransportError."""
    consumer = open_consumer(
        kafka_client,  # type: ignore[arg-type]
        kafka_bootstrap,
        max_batch=100,
        timeout=10.0,
    )
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    consumer.subscribe(topic, group, Failing("neither"), session_timeout=3.0)  # below 6 s
    deadline = time.monotonic() + 30
    with pytest.raises(ClientConfigError, match="DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT"):
        while time.monotonic() < deadline:
            consumer.poll(0.2, 100, lambda t, p, o, k, v: o)
    consumer.close()
