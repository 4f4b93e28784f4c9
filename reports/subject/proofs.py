"""A proof bundle for every row of a request-to-know answer (``report subject --with-proofs``),
so the person who asked can have each line checked without the ledger.

What the requester receives, beside the answer (the ``proofs`` object of its JSON):

* ``pseudonym``: their ``subject_type``, the ``subject_id`` they gave, their ``subject_key``
  ``k_s`` (hex: the random key the subject key store holds for them) and the formula
  :data:`ledger.proof_check.PSEUDONYM_FORMULA`. With these anyone recomputes the pseudonym
  every row of theirs carries, and so sees that each row is about them.
* ``rows``: for each disclosure the answer counted, its event id, chain, seq and time, and
  its inclusion bundle (:mod:`ledger.proofs`) against the newest signed checkpoint that
  covers it; a row newer than the last checkpoint of its chain has no bundle yet and says
  so (``not_covered``) instead of failing the answer.
* ``limits``: an inclusion proof shows that a row is in the log; it never shows that the
  list is complete.

Giving ``k_s`` out has consequences, stated in the answer (``consequences``): whoever holds
the answer can link these rows to the person and to each other, and ``k_s`` also derives
the key of their context values (:mod:`ledger.context_crypto`), so the answer lets its
holder read the context of each row. Erasure still works: destroying ``k_s`` in the key
store unlinks the ledger's rows, but not a copy of the answer already given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Protocol

from ledger.lake import cursor_of
from ledger.proof_check import PSEUDONYM_FORMULA
from ledger.proofs import ProofError, inclusion_bundle
from ledger.store import Ledger
from reports.provenance import aware, rfc3339
from reports.subject.values import SubjectReport
from reports.window import naive_utc

SUBJECT_PROOFS_VERSION: Final = "disclosure-ledger-subject-proofs/1"
SUBJECT_PROOFS_LIMITS: Final = (
    "Each inclusion proof shows that its row is in the ledger's log, signed by the ledger's "
    "key, unaltered since. It never shows that this list is complete: a row left out of the "
    "answer is not revealed by the proofs of the rows put in it. Rows newer than the last "
    "signed checkpoint of their chain have no proof yet."
)
SUBJECT_KEY_CONSEQUENCES: Final = (
    "subject_key is your own key in our subject key store. With it and your id anyone "
    "recomputes your pseudonym (formula), so whoever holds this answer can link these rows "
    "to you and to each other; it also derives the key that decrypts the context values of "
    "your rows. Keep the answer as you would keep the data it lists. Erasing your data "
    "destroys our copy of the key; it cannot recall a copy of this answer."
)
HOW_TO_CHECK: Final = (
    "disclosure-ledger verify-proof ANSWER.json --public-key LEDGER-KEY checks every bundle "
    "and that each row's pseudonym is yours; or check each bundle with independent tools "
    "(docs/proofs.md)."
)


class SubjectKeySource(Protocol):
    """What the proofs need of the subject key store (``ledger.pseudonyms.SubjectKeyStore``)."""

    def subject_key(self, subject_type: str, subject_id: str) -> bytes | None: ...


_ROWS = """
SELECT chain_id, seq, event_id::VARCHAR, occurred_at, recipient_id FROM disclosures
WHERE chain_id = ? AND seq BETWEEN ? AND ? AND subject_pseudonym = ? AND subject_type = ?
  AND occurred_at >= ? AND occurred_at < ?
ORDER BY occurred_at, chain_id, seq
"""


def subject_proofs(ledger: Ledger, keys: SubjectKeySource, report: SubjectReport) -> dict[str, Any]:
    """The ``proofs`` object of ``report`` (see the module's doc): the rows it counted, each
    with its bundle or why it has none yet."""
    base: dict[str, Any] = {
        "format": SUBJECT_PROOFS_VERSION,
        "limits": SUBJECT_PROOFS_LIMITS,
        "how_to_check": HOW_TO_CHECK,
    }
    subject_key = keys.subject_key(report.subject_type, report.subject_id)
    if report.pseudonym is None or subject_key is None:
        return {**base, "pseudonym": None, "rows": []}
    source = report.source
    start = naive_utc(source.window_start or datetime(1970, 1, 1, tzinfo=source.as_of.tzinfo))
    end = naive_utc(source.window_end)
    rows: list[dict[str, Any]] = []
    cursor = cursor_of(ledger.con)
    try:
        for chain in source.chains:
            if chain.first_seq_counted is None or chain.last_seq_counted is None:
                continue
            found = cursor.execute(
                _ROWS,
                [
                    chain.chain_id,
                    chain.first_seq_counted,
                    chain.last_seq_counted,
                    report.pseudonym,
                    report.subject_type,
                    start,
                    end,
                ],
            ).fetchall()
            rows += [_row(cursor, *r) for r in found]
    finally:
        cursor.close()
    rows.sort(key=lambda r: (r["occurred_at"], r["chain"], r["seq"]))
    return {
        **base,
        "pseudonym": {
            "subject_type": report.subject_type,
            "subject_id": report.subject_id,
            "subject_key": subject_key.hex(),
            "pseudonym": report.pseudonym,
            "formula": PSEUDONYM_FORMULA,
            "consequences": SUBJECT_KEY_CONSEQUENCES,
        },
        "rows": rows,
    }


def _row(
    cursor: Any, chain_id: str, seq: int, event_id: str, occurred_at: datetime, recipient: str
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event_id,
        "chain": chain_id,
        "seq": int(seq),
        "occurred_at": rfc3339(aware(occurred_at)),
        "recipient_id": recipient,
    }
    try:
        return {**row, "bundle": inclusion_bundle(cursor, chain_id, int(seq)), "not_covered": None}
    except ProofError as exc:
        return {**row, "bundle": None, "not_covered": str(exc)}
