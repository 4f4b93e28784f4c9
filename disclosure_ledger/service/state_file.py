"""``LEDGER.service.json``: which process serves a ledger, and where.

The service writes it when it starts listening and removes it when it stops, so a CLI
command that finds the ledger locked can name the service's address (and ``--server``
can default to it), and ``make clean`` can stop the service. A file left by a process
that no longer runs is ignored.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ServiceState:
    pid: int
    url: str
    ledger: str


def state_file(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".service.json")


def write_service_state(ledger_path: Path, url: str) -> Path:
    path = state_file(ledger_path)
    state = ServiceState(pid=os.getpid(), url=url, ledger=str(ledger_path))
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(asdict(state)) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def remove_service_state(ledger_path: Path) -> None:
    path = state_file(ledger_path)
    state = read_service_state(ledger_path)
    if state is not None and state.pid == os.getpid():
        path.unlink(missing_ok=True)


def read_service_state(ledger_path: Path) -> ServiceState | None:
    """The running service of this ledger, or None (no file, unreadable, or process gone)."""
    try:
        data = json.loads(state_file(ledger_path).read_text(encoding="utf-8"))
        state = ServiceState(pid=int(data["pid"]), url=str(data["url"]), ledger=str(data["ledger"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if psutil.pid_exists(state.pid) else None
