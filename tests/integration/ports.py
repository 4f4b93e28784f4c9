"""Ports for the tests that start a broker of their own: free, and held by no other test run."""

from __future__ import annotations

import contextlib
import fcntl
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def locked_ports(first: int, count: int) -> Iterator[int]:
    """The first of ``count`` consecutive free ports from ``first`` on (within 99), locked
    against other test runs (a lock file per block) while the caller holds them."""
    for port in range(first, first + 99, count):
        lock_path = Path(tempfile.gettempdir()) / f"disclosure-ledger-test-ports-{port}.lock"
        with lock_path.open("a") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if all(_free(p) for p in range(port, port + count)):
                yield port
                return
    pytest.fail(f"no {count} free consecutive ports in {first}..{first + 99}")
