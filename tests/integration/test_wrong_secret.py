"""``consume`` under a wrong subject secret, through the real broker (issue 16, part 3).

It stops before taking a message: no row, no offset, no key, and the messages it refused
wait on the topic for the consumer with the right secret.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from disclosure_ledger.cli import default_key_store, main
from ledger.store import Ledger
from producers.publisher import DisclosurePublisher
from tests.unit.events import make_event

pytestmark = pytest.mark.integration


def _publish(bootstrap: str, topic: str, subjects: list[str]) -> None:
    events = [make_event(subject={"id": s, "type": "member"}) for s in subjects]
    with DisclosurePublisher(bootstrap, topic) as publisher:
        assert publisher.publish_many(events).ok


def _ledger_state(path: Path, topic: str) -> tuple[int, dict[int, int]]:
    with Ledger(path, read_only=True) as ledger:
        rows = int(ledger.con.execute("SELECT count(*) FROM disclosures").fetchall()[0][0])
        return rows, ledger.stored_offsets(topic)


def test_consume_under_another_secret_takes_nothing_and_leaves_it_for_the_right_one(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    subject_secret_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = new_topic()
    ledger_path = tmp_path / "ledger.duckdb"
    key_store = default_key_store(ledger_path)
    consume = [
        "consume",
        "--ledger",
        str(ledger_path),
        "--topic",
        topic,
        "--bootstrap-servers",
        kafka_bootstrap,
        "--until-idle",
        "2",
        "--no-checkpoints",
    ]
    _publish(kafka_bootstrap, topic, ["member-1", "member-2", "member-3"])
    assert main(consume) == 0
    assert "3 appended" in capsys.readouterr().out
    before = (_ledger_state(ledger_path, topic), key_store.read_bytes())

    _publish(kafka_bootstrap, topic, ["member-4", "member-5"])  # new subjects: new keys
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secrets.token_hex(32))
    code = main(consume)
    out, err = capsys.readouterr()
    assert code == 1
    assert str(key_store) in err and "does not match the one" in err and "created with" in err
    assert "appended" not in out
    assert (_ledger_state(ledger_path, topic), key_store.read_bytes()) == before

    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", subject_secret_env)
    assert main(consume) == 0
    assert "2 messages from" in capsys.readouterr().out
    assert _ledger_state(ledger_path, topic) == (5, {0: 5})
