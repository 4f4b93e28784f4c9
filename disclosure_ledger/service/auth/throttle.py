"""Sign-in throttling: after a few failures for one user name, or from one client, further
attempts wait, doubling each time (in memory: a restart forgets, which only helps the owner)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


class LoginThrottle:
    """``retry_after(key)`` says how long ``key`` (``user:NAME`` or ``client:ADDRESS``) must
    wait; ``failed(key)`` counts a failure; ``succeeded(key)`` forgets them."""

    def __init__(self, free_failures: int = 5, first_wait: float = 1.0, max_wait: float = 300.0):
        self.free_failures = free_failures
        self.first_wait = first_wait
        self.max_wait = max_wait
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> float:
        now = time.monotonic()
        with self._lock:
            waits = [
                f.blocked_until - now for k in keys if (f := self._failures.get(k)) is not None
            ]
        return max([0.0, *waits])

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                failures = self._failures.setdefault(key, _Failures())
                failures.count += 1
                over = failures.count - self.free_failures
                if over > 0:
                    wait = min(self.max_wait, self.first_wait * 2 ** (over - 1))
                    failures.blocked_until = now + wait

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
