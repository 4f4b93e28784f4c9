"""The consumer group's settings and what a member tells its listener, without a broker
(tests/integration/test_consumer_group.py runs the group on the real one)."""

from __future__ import annotations

import os
import socket

import pytest
from pydantic import ValidationError

from disclosure_ledger.settings import Settings
from kafka_transport import ClientConfigError, confluent_installed, kafka_python
from kafka_transport.group import GroupTimeouts, Membership, member_name


def test_no_group_unless_set_and_a_ten_second_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISCLOSURE_LEDGER_CONSUMER_GROUP", raising=False)
    monkeypatch.delenv("DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT", raising=False)
    assert Settings().consumer_group is None
    assert Settings().group_session_timeout == 10.0
    monkeypatch.setenv("DISCLOSURE_LEDGER_CONSUMER_GROUP", "  ")
    assert Settings().consumer_group is None
    monkeypatch.setenv("DISCLOSURE_LEDGER_CONSUMER_GROUP", "ledger")
    monkeypatch.setenv("DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT", "6")
    assert (Settings().consumer_group, Settings().group_session_timeout) == ("ledger", 6.0)
    monkeypatch.setenv("DISCLOSURE_LEDGER_GROUP_SESSION_TIMEOUT", "0")
    with pytest.raises(ValidationError, match="group_session_timeout"):
        Settings()


def test_the_heartbeat_is_a_third_of_the_session_at_most_three_seconds() -> None:
    assert GroupTimeouts.of(6.0, None).heartbeat_interval == 2.0
    assert GroupTimeouts.of(45.0, None).heartbeat_interval == 3.0
    with pytest.raises(ClientConfigError, match="below the session timeout"):
        GroupTimeouts.of(6.0, 6.0)


def test_members_are_named_after_their_process_and_commit_nothing() -> None:
    name = member_name()
    assert name.endswith(f"@{socket.gethostname()}:{os.getpid()}")
    timeouts = GroupTimeouts.of(6.0, None)
    config = kafka_python.group_config({"group_id": None}, "ledger", timeouts)
    assert config["group_id"] == "ledger" and config["client_id"] == name
    assert config["enable_auto_commit"] is False
    assert (config["session_timeout_ms"], config["heartbeat_interval_ms"]) == (6000, 2000)
    if confluent_installed():
        from kafka_transport import confluent

        config = confluent.group_config({}, "ledger", timeouts)
        assert (config["group.id"], config["client.id"]) == ("ledger", name)
        assert config["enable.auto.commit"] is False
        assert config["partition.assignment.strategy"] == "range"


class Told:
    def __init__(self, starts: dict[int, int | None]) -> None:
        self.starts = starts
        self.calls: list[tuple[str, list[int]]] = []

    def assigned(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        self.calls.append(("assigned", partitions))
        return self.starts

    def revoked(self, topic: str, partitions: list[int]) -> None:
        self.calls.append(("revoked", partitions))


def test_the_listener_hears_only_of_what_the_member_owns() -> None:
    told = Told({0: 5, 1: None})
    membership = Membership("t", told)
    assert membership.assigned([]) == {}  # never called with nothing
    assert membership.assigned([1, 0]) == {0: 5, 1: None}
    membership.revoked([1, 2])  # 2 was never this member's
    assert told.calls == [("assigned", [0, 1]), ("revoked", [1])]
    assert membership.owned == {0}


def test_a_start_missing_from_the_listener_is_its_failure_and_ends_the_telling() -> None:
    told = Told({0: 5})
    membership = Membership("t", told)
    assert membership.assigned([0, 1]) is None  # the client reads none of them
    with pytest.raises(ValueError, match=r"no start offset for t partition\(s\) \[1\]"):
        membership.check()
    membership.revoked([0, 1])
    assert membership.assigned([0]) is None
    assert told.calls == [("assigned", [0, 1])]


def test_the_kafka_python_join_workaround_still_matches_its_coordinator() -> None:
    """kafka_python.keep_unfinished_joins reads the coordinator's ``_join_task``: an upgrade
    of kafka-python that renames it must fail here, not stall a member."""
    import inspect

    from kafka.coordinator.base import BaseCoordinator

    source = inspect.getsource(BaseCoordinator.join_group_async)
    assert "self._join_task" in source and "while self.need_rejoin()" in source
