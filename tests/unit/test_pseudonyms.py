"""Keyed pseudonyms and encrypted context: no raw subject id anywhere the ledger writes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from consumers.pipeline import Ingestor, SourceMessage
from ledger.checkpoints import Checkpointer
from ledger.context_crypto import (
    canonical_context,
    decrypt_context,
    encrypt_context,
    encrypt_contexts,
)
from ledger.erasure import erase_subject
from ledger.errors import LedgerError
from ledger.pseudonyms import SubjectKeyStore, decrypt_subject_context
from ledger.store import Ledger
from ledger.verify import verify_ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.unit.events import make_event

TOPIC = "t.disclosures"
CODEC = EventCodec()
SUBJECTS = [
    ("member", "member-raw-id-4471-zq"),
    ("member", "member-raw-id-9902-xk"),
    ("guest", "guest-raw-id-0013-pw"),
]


def test_no_known_subject_id_in_any_table_the_checkpoint_file_or_the_logs(
    ledger_path: Path,
    key_store: SubjectKeyStore,
    reference: ReferenceData,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    checkpoint_file = ledger_path.with_name("published.checkpoints")
    messages = []
    for offset in range(9):
        kind, ident = SUBJECTS[offset % 3]
        event = make_event(
            subject={"id": ident, "type": kind},
            # free text that names the subject, as real context values do
            context={"note": f"refund for {ident}", "order_id": f"o-{offset}"},
        )
        messages.append(
            SourceMessage(
                TOPIC, offset % 2, offset // 2, ident.encode(), CODEC.encode(event.to_avro())
            )
        )
    with Ledger(ledger_path) as ledger:
        checkpointer = Checkpointer(
            ledger,
            Ed25519PrivateKey.generate(),
            checkpoint_file,
            reference_version=reference.version,
            every_rows=4,
        )
        ingestor = Ingestor(ledger, key_store, reference, checkpointer=checkpointer)
        ingestor.ingest(messages[:5])
        ingestor.ingest(messages[5:])
        ingestor.shutdown()
        erase_subject(ledger, key_store, *SUBJECTS[0], actor="dpo")
        tables = [
            r[0] for r in ledger.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        ]
        assert {"disclosures", "checkpoints", "erasures", "offsets"} <= set(tables)
        for table in tables:
            for _, ident in SUBJECTS:
                hits = ledger.con.execute(
                    f"SELECT count(*) FROM {table} t WHERE contains(CAST(t AS VARCHAR), ?)",
                    [ident],
                ).fetchall()
                assert hits == [(0,)], (table, ident)
        assert ledger.con.execute("SELECT count(*) FROM disclosures").fetchall() == [(9,)]
        assert verify_ledger(ledger).ok
    published = checkpoint_file.read_text()
    assert published.count("\n") >= 2
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the consumer did log
    for _, ident in SUBJECTS:
        assert ident not in published
        assert ident not in logged


def test_pseudonyms_are_stable_per_subject_and_differ_by_type_and_store(tmp_path: Path) -> None:
    with SubjectKeyStore(tmp_path / "a.sqlite", b"s" * 32) as a:
        first = a.pseudonyms([("member", "m-1"), ("guest", "m-1"), ("member", "m-1")])
        assert first[0] == first[2] != first[1]
        assert a.pseudonym("member", "m-1") == first[0]
        assert a.pseudonym("member", "never-seen") is None
        secrets = a.derive([("member", "m-1")])[0]
        assert secrets.pseudonym == first[0] and len(secrets.context_key) == 32
        assert a.context_key("member", "m-1") == secrets.context_key
    with SubjectKeyStore(tmp_path / "b.sqlite", b"s" * 32) as b:
        assert b.pseudonyms([("member", "m-1")])[0] != first[0]  # a random key per subject
    with pytest.raises(LedgerError, match="16 bytes"):
        SubjectKeyStore(tmp_path / "c.sqlite", b"short")


def test_context_is_bound_to_its_key_and_its_row() -> None:
    key, other = b"\x01" * 32, b"\x02" * 32
    stored = encrypt_context(key, "e-1", {"b": "2", "a": "ünï"})
    assert stored.startswith("aesgcm1:") and "ünï" not in stored
    assert decrypt_context(key, "e-1", stored) == {"a": "ünï", "b": "2"}
    assert encrypt_context(key, "e-1", {"a": "1"}) != encrypt_context(key, "e-1", {"a": "1"})
    for wrong_key, event_id, text in [
        (other, "e-1", stored),  # another subject's key
        (key, "e-2", stored),  # copied onto another row
        (key, "e-1", stored[:-4] + "AAAA"),  # altered
    ]:
        with pytest.raises(LedgerError, match="does not decrypt"):
            decrypt_context(wrong_key, event_id, text)
    with pytest.raises(LedgerError, match="not an aesgcm1"):
        decrypt_context(key, "e-1", '{"a":"1"}')


def test_investigators_read_a_subjects_context_while_its_key_exists(
    ledger_path: Path, key_store: SubjectKeyStore, reference: ReferenceData
) -> None:
    event = make_event(subject={"id": "m-77", "type": "member"}, context={"ticket": "T-9"})
    with Ledger(ledger_path) as ledger:
        Ingestor(ledger, key_store, reference).ingest(
            [SourceMessage(TOPIC, 0, 0, b"m-77", CODEC.encode(event.to_avro()))]
        )
        event_id, stored = ledger.con.execute(
            "SELECT event_id::VARCHAR, context FROM disclosures"
        ).fetchall()[0]
    assert decrypt_subject_context(key_store, "member", "m-77", event_id, stored) == {
        "ticket": "T-9"
    }
    assert decrypt_subject_context(key_store, "member", "someone-else", event_id, stored) is None


@given(
    st.dictionaries(st.text(), st.text(), max_size=6)
    | st.dictionaries(st.text(), st.text() | st.integers() | st.none(), max_size=4)
)
def test_canonical_context_is_sorted_compact_utf8_json(context: dict[str, str]) -> None:
    # The text path is built directly for speed; it must stay exactly json.dumps's text
    # (quotes, control characters, U+2028 and non-ASCII included) so the documented encoding
    # holds. Values that are not text (not in the schema, but a caller may pass them) take
    # the json.dumps path.
    expected = json.dumps(context, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_context(context) == expected


def test_batch_encryption_uses_each_rows_key_and_fresh_nonces() -> None:
    first, second = b"\x01" * 32, b"\x02" * 32
    items = [(first, "e-1", {"a": "1"}), (second, "e-2", {"b": "2"}), (first, "e-3", {"a": "1"})]
    stored = encrypt_contexts(items)
    assert [
        decrypt_context(key, eid, text) for (key, eid, _), text in zip(items, stored, strict=True)
    ] == [
        {"a": "1"},
        {"b": "2"},
        {"a": "1"},
    ]
    nonces = {text[len("aesgcm1:") :][:16] for text in stored}
    assert len(nonces) == 3
    with pytest.raises(LedgerError, match="does not decrypt"):
        decrypt_context(second, "e-1", stored[0])
