"""Verify a ledger: recompute every leaf and link of every chain, check every checkpoint,
account for every offset, and report every failure with its chain, sequence and kind.

Pure Python over DuckDB SQL and :mod:`hashlib`: DuckDB recomputes the leaves and checks the
links on every core (:mod:`ledger.verify.scan`); only a chain found out of order or
unlinked is read again, to say precisely what is wrong with it
(:mod:`ledger.verify.diagnosis`); then checkpoints (:mod:`ledger.verify.checkpoints`) and
offsets (:mod:`ledger.verify.offsets`). ``docs/verify-by-hand.md`` shows how an auditor
re-implements the same checks without this code.
"""

from ledger.leaf_sql import LEAF_SELECT
from ledger.verify.result import (
    CHECKPOINTS,
    DERIVED,
    CheckpointSource,
    Failure,
    VerifyResult,
)
from ledger.verify.run import verify_ledger
from ledger.verify.scan import RANGE_ROWS, available_cores

__all__ = [
    "CHECKPOINTS",
    "DERIVED",
    "LEAF_SELECT",
    "RANGE_ROWS",
    "CheckpointSource",
    "Failure",
    "VerifyResult",
    "available_cores",
    "verify_ledger",
]
