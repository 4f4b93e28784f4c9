"""An event published after an erasure, through a real broker, comes out of the ledger
service flagged ``after_erasure``: counted in its status, and the GDPR Art. 19 notice due
is listed and recorded through the CLI with ``--server``.

One small flow: ``consume`` two events, erase one subject (the library, as the CLI does
with an approver), publish one more event about them, ``serve`` ingests it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from disclosure_ledger.cli import main
from disclosure_ledger.service.auth.roles import Role
from ledger.erasure import erase_subject
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.integration.reliability_support import CLI, Sent, send
from tests.integration.service_process import ServiceProcess, issue_token
from tests.unit.events import make_event

pytestmark = pytest.mark.integration

ERASED = ("member", "member-erased-5501")
KEPT = ("member", "member-kept-5502")
CODEC = EventCodec()


def _event(subject: tuple[str, str]) -> Sent:
    event = make_event(subject={"id": subject[1], "type": subject[0]})
    return Sent(
        subject[1].encode(), CODEC.encode(event.to_avro()), "valid", str(event.event_id), subject
    )


def test_an_event_published_after_an_erasure_is_flagged_and_its_notice_listed(
    kafka_bootstrap: str,
    new_topic: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert callable(new_topic)
    topic = new_topic()
    secret = TEST_SECRET.decode()
    monkeypatch.setenv("DISCLOSURE_LEDGER_SUBJECT_SECRET", secret)
    env = {**os.environ, "DISCLOSURE_LEDGER_SUBJECT_SECRET": secret}
    ledger = tmp_path / "ledger.duckdb"
    send(kafka_bootstrap, topic, [_event(ERASED), _event(KEPT)])
    consumed = subprocess.run(
        [
            *(str(CLI), "consume", "--bootstrap-servers", kafka_bootstrap, "--topic", topic),
            *("--ledger", str(ledger), "--until-idle", "3", "--no-checkpoints"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert consumed.returncode == 0, consumed.stderr
    with (
        Ledger(ledger) as held,
        SubjectKeyStore(ledger.with_name(ledger.name + ".keys.sqlite"), TEST_SECRET) as keys,
    ):
        erasure = erase_subject(held, keys, *ERASED, actor="dpo", approved_by="cpo")
    assert erasure.erased and erasure.erasure_id is not None
    later = _event(ERASED)
    send(kafka_bootstrap, topic, [later])

    service = ServiceProcess(
        ledger,
        tmp_path / "serve.log",
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic",
        topic,
        "--probe-every",
        "1",
        "--no-checkpoints",
        env={"DISCLOSURE_LEDGER_SUBJECT_SECRET": secret},
    )
    service.wait_ready()
    auditor = issue_token(ledger, Role.auditor)
    deadline = time.monotonic() + 90
    # the row shows once committed; the ingest thread adds the batch's counts after that
    while True:
        status = service.json("/api/v1/status", auditor)
        if status["rows"] == 3 and status["ingest"]["accepted"] == 1:
            break
        assert time.monotonic() < deadline, (status, service.summary())
        time.sleep(0.3)
    assert status["after_erasure"] == 1 and status["ingest"]["after_erasure"] == 1
    assert status["notices_due"] == 1

    compliance = issue_token(ledger, Role.compliance)
    server = ["--server", service.url, "--token", compliance]
    assert main(["report", "recipients", "--notices-due", *server, "--format", "json"]) == 0
    due = json.loads(capsys.readouterr().out)["due"]
    assert [(d["erasure_id"], d["recipient_id"]) for d in due] == [(erasure.erasure_id, "escalion")]
    today = datetime.now(UTC).date().isoformat()
    record = ["notices", "record", *server, "--erasure", erasure.erasure_id]
    assert main([*record, "--recipient", "escalion", "--sent-on", today]) == 0
    assert "recorded: escalion was notified" in capsys.readouterr().out
    assert main([*record, "--recipient", "hotjar", "--sent-on", today]) != 0
    assert "did not receive the erased subject's data" in capsys.readouterr().err
    assert service.json("/api/v1/status", auditor)["notices_due"] == 0
    assert service.stop() == 0

    with Ledger(ledger, read_only=True) as held:
        flagged = held.con.execute(
            "SELECT event_id::VARCHAR FROM disclosures WHERE list_contains(flags, 'after_erasure')"
        ).fetchall()
    assert flagged == [(later.event_id,)]
