"""The checkpoint key history: which Ed25519 key signs checkpoints from when on."""

from __future__ import annotations

from pathlib import Path


def key_history_file(checkpoint_file: Path) -> Path:
    """Beside the checkpoint file: ``LEDGER.checkpoints.keys``."""
    return checkpoint_file.with_name(checkpoint_file.name + ".keys")
