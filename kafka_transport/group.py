"""The consumer group, shared by both clients: members named after their process, the
group's timeouts, what the member owns as its listener was told, and (for kafka-python)
running the listener on the polling thread.

The rebalance protocol is eager (the "range" assignor, with either client, so one group
may mix them): at each rebalance a member is told ``revoked`` for everything it owns, the
group reassigns, and it is told ``assigned`` for everything it owns then. Cooperative
rebalancing moves fewer partitions, but its two rounds and partial assignments would
complicate the guarantee the ledger needs (no message of a partition after its revoke,
the first one after an assign at the ledger's offset), and a rebalance is rare: when a
service starts, stops or dies.

The listener's exceptions never reach the client library (both swallow or merely log them
in some versions, and kafka-python's would leave the partitions at the broker's offsets):
:class:`Membership` keeps the first one and the transport raises it from ``poll`` (and
``close``), that call and every later ``poll``. A consumer whose listener failed returns
no message any more: close it (leaving the group) and open another.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from kafka_transport.errors import ClientConfigError

if TYPE_CHECKING:
    from kafka_transport import RebalanceListener

T = TypeVar("T")

DEFAULT_SESSION_TIMEOUT = 10.0
"""Seconds without a heartbeat after which the group drops a member (its partitions go to
the others): the ``DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT`` setting's default. The broker
accepts what lies between its ``group.min.session.timeout.ms`` (6 s by default) and
``group.max.session.timeout.ms`` (30 min)."""

ASSIGNOR = "range"
"""Both clients' eager "range" assignor: a group may mix kafka-python and librdkafka members."""


def member_name() -> str:
    """The client id this process's members give the broker (``hostname:pid``): the broker's
    member id starts with it, so its logs and ``kafka-consumer-groups --describe`` name
    the instance."""
    return f"disclosure-ledger@{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class GroupTimeouts:
    """The session timeout and heartbeat interval a member joins with, in seconds."""

    session_timeout: float
    heartbeat_interval: float

    @classmethod
    def of(cls, session_timeout: float, heartbeat_interval: float | None) -> GroupTimeouts:
        """Checked: a heartbeat well within the session (None: a third of it, at most 3 s,
        Kafka's own default)."""
        if session_timeout <= 0:
            raise ClientConfigError(
                f"the group session timeout must be positive, not {session_timeout:g} s "
                "(DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT; the broker accepts 6 s to 30 min "
                "by default)"
            )
        if heartbeat_interval is None:
            heartbeat_interval = min(3.0, session_timeout / 3)
        if not 0 < heartbeat_interval < session_timeout:
            raise ClientConfigError(
                f"the group heartbeat interval ({heartbeat_interval:g} s) must be positive and "
                f"below the session timeout ({session_timeout:g} s); a third of it is usual"
            )
        return cls(session_timeout, heartbeat_interval)

    def refused(self, why: str) -> ClientConfigError:
        """The error for a broker that refused this session timeout (not an outage:
        retrying cannot help)."""
        return ClientConfigError(
            f"the broker refused the consumer group's session timeout of "
            f"{self.session_timeout:g} s ({why}); set DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT "
            "within the broker's group.min.session.timeout.ms and "
            "group.max.session.timeout.ms (6 s to 30 min by default)"
        )

    @property
    def session_ms(self) -> int:
        return int(self.session_timeout * 1000)

    @property
    def heartbeat_ms(self) -> int:
        return max(1, int(self.heartbeat_interval * 1000))


class Membership:
    """What one member owns of ``topic``, as its listener was told, and the listener's first
    failure. Called by the client's rebalance callbacks, on the polling thread."""

    def __init__(self, topic: str, listener: RebalanceListener) -> None:
        self.topic = topic
        self.listener = listener
        self.owned: set[int] = set()
        self.failure: BaseException | None = None

    def assigned(self, partitions: Iterable[int]) -> dict[int, int | None] | None:
        """The listener's start offset of each partition, or None when it failed (or had
        failed before): then the client must read none of them."""
        given = sorted(set(partitions))
        if self.failure is not None:
            return None
        if not given:  # the listener is never called with nothing
            return {}
        try:
            starts = dict(self.listener.assigned(self.topic, given))
            missing = [p for p in given if p not in starts]
            if missing:
                raise ValueError(
                    f"the rebalance listener's assigned() returned no start offset for "
                    f"{self.topic} partition(s) {missing}; return one (None: the earliest) "
                    "for every partition it is given"
                )
        except Exception as exc:  # raised from poll (see the module docstring)
            self.failure = exc
            return None
        self.owned.update(given)
        return {p: starts[p] for p in given}

    def revoked(self, partitions: Iterable[int]) -> None:
        """Tell the listener these partitions are gone (those it was told it owned)."""
        gone = sorted(self.owned.intersection(partitions))
        self.owned.difference_update(gone)
        if not gone or self.failure is not None:
            return
        try:
            self.listener.revoked(self.topic, gone)
        except Exception as exc:
            self.failure = exc

    def check(self) -> None:
        """Raise the listener's failure, if any."""
        if self.failure is not None:
            raise self.failure


class _Ask(Generic[T]):
    """One call the client's thread asks the polling thread to make."""

    def __init__(self, call: Callable[[], T]) -> None:
        self.call = call
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.call()
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            self.done.set()


class PollingThread:
    """Keeps the listener on the polling thread when the client calls back on its own.

    kafka-python 3 runs its rebalance callbacks on its I/O thread while the caller waits
    inside ``poll``/``close``. Here those client calls run on a worker thread of this
    object's, while the caller's thread (:meth:`call`) runs whatever the callbacks
    :meth:`ask` for: the listener sees the thread that polls, as with librdkafka, and the
    I/O thread keeps heartbeating while the listener works. A call the caller stopped
    waiting for (an interrupt) leaves its asks to the next :meth:`call` (``close``
    serves them); the worker is a daemon thread, so it never holds up the interpreter's
    exit."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._asks: queue.SimpleQueue[_Ask[object] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._work, name=name, daemon=True)
        self._worker.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def call(self, client_call: Callable[[], T]) -> T:
        """``client_call()`` on the worker; meanwhile, on this thread, what it asks for."""
        outcome: list[tuple[T | None, BaseException | None]] = []

        def job() -> None:
            try:
                outcome.append((client_call(), None))
            except BaseException as exc:
                outcome.append((None, exc))
            finally:
                self._asks.put(None)  # wakes call(); one of an earlier call is ignored

        self._jobs.put(job)
        while True:
            ask = self._asks.get()
            if ask is not None:
                ask.run()
            elif outcome:
                value, error = outcome[0]
                if error is not None:
                    raise error
                return value  # type: ignore[return-value]

    def ask(self, call: Callable[[], T]) -> _Ask[T]:
        """From the client's thread: have the polling thread run ``call`` (wait on ``done``)."""
        ask = _Ask(call)
        self._asks.put(ask)  # type: ignore[arg-type]
        return ask

    def close(self) -> None:
        self._jobs.put(None)
        self._worker.join(10.0)
