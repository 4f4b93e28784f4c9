"""What ``verify`` reports: every failure with its chain, sequence and kind.

Failure kinds: ``row altered``, ``row deleted``, ``row inserted``, ``rows reordered``,
``chain truncated below a checkpoint``, ``chain rewritten since a checkpoint``, ``bad
signature``, ``offset missing``, ``offset doubled``, ``offset beyond stored position``,
``derived data altered`` (what :mod:`ledger.derived` keeps beside the hashed columns for
fast reports disagrees with them), ``tree altered`` (a stored Merkle node differs from the
one the rows give), ``chain missing from a manifest`` (a signed manifest leaves out a chain
that had rows at its time: :mod:`ledger.verify.notes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CHECKPOINTS = "checkpoints"
"""Where checkpoint failures are reported, in place of a chain id."""
DERIVED = "derived data"
"""Where failures of derived data that belongs to no chain are reported."""


@dataclass(frozen=True)
class Failure:
    chain_id: str
    seq: int | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.chain_id} seq {self.seq}" if self.seq is not None else self.chain_id
        return f"{where}: {self.kind}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "seq": self.seq,
            "kind": self.kind,
            "detail": self.detail,
        }


@dataclass
class VerifyResult:
    rows: int = 0
    chains: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain -> (length, head)
    failures: list[Failure] = field(default_factory=list)
    checkpoints: int = 0  # checkpoint lines checked against the chains
    signatures_checked: bool = False
    notes: list[str] = field(default_factory=list)
    access_entries: int = 0  # entries of the access log checked (chain ``access_log``)
    notes_checked: int = 0  # checkpoint notes (C2SP signed notes) checked against the trees

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self, *, max_failures: int = 1000) -> dict[str, Any]:
        """The result as a JSON object (the service's verify job): the first
        ``max_failures`` failures, and how many there were."""
        return {
            "ok": self.ok,
            "rows": self.rows,
            "access_log_entries": self.access_entries,
            "chains": {
                chain: {"length": length, "head": head}
                for chain, (length, head) in sorted(self.chains.items())
            },
            "checkpoints": self.checkpoints,
            "signatures_checked": self.signatures_checked,
            "checkpoint_notes": self.notes_checked,
            "failure_count": len(self.failures),
            "failures": [failure.to_json() for failure in self.failures[:max_failures]],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class CheckpointSource:
    """Checkpoint lines and where they came from (for the failure messages)."""

    name: str
    lines: Sequence[str]


def row_altered(chain: str, seq: int) -> Failure:
    return Failure(
        chain, seq, "row altered", "the row's content does not match its stored leaf hash"
    )
