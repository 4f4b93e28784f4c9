"""Sign-in throttling: after ``free_failures`` failures for one user name, or from one
client, the next attempt waits ``first_wait`` seconds, the wait doubling with each further
failure up to ``max_wait``.

In memory: a restart forgets, which only helps the owner. An attempt counts as a failure
from the moment it starts (:meth:`LoginThrottle.attempt`) until it succeeds, so attempts
sent in parallel cannot slip past the count while argon2 checks the first of them.
Failures are forgotten after :attr:`LoginThrottle.forget_after` seconds without one, and
the table keeps at most :attr:`LoginThrottle.max_keys` keys, so a flood of made-up user
names cannot fill the memory.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Keys are ``user:NAME`` and ``client:ADDRESS``.

    - ``attempt(*keys)``: 0 and the attempt is counted as a failure, or the seconds the
      caller must wait (nothing counted);
    - ``succeeded(*keys)``: the attempt was right; the keys' failures are forgotten;
    - ``retry_after(*keys)`` / ``failed(*keys)``: the wait alone, a failure alone.
    """

    def __init__(
        self,
        free_failures: int = 5,
        first_wait: float = 1.0,
        max_wait: float = 300.0,
        *,
        forget_after: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.forget_after = forget_after
        self.max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def attempt(self, *keys: str) -> float:
        with self._lock:
            now = self._clock()
            wait = self._wait(keys, now)
            if wait <= 0:
                self._count_failure(keys, now)
            return wait

    def retry_after(self, *keys: str) -> float:
        with self._lock:
            return self._wait(keys, self._clock())

    def failed(self, *keys: str) -> None:
        with self._lock:
            self._count_failure(keys, self._clock())

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def _wait(self, keys: tuple[str, ...], now: float) -> float:
        waits = [0.0]
        for key in keys:
            failures = self._failures.get(key)
            if failures is None:
                continue
            if now - failures.last_failure >= self.forget_after:
                del self._failures[key]
            else:
                waits.append(failures.blocked_until - now)
        return max(waits)

    def _count_failure(self, keys: tuple[str, ...], now: float) -> None:
        for key in keys:
            failures = self._failures.get(key)
            if failures is None or now - failures.last_failure >= self.forget_after:
                failures = self._failures[key] = _Failures()
            failures.count += 1
            failures.last_failure = now
            over = failures.count - self.free_failures  # 0 at the last free failure
            if over >= 0:
                failures.blocked_until = now + min(self.max_wait, self.first_wait * 2**over)
        if len(self._failures) > self.max_keys:
            self._forget_oldest(now)

    def _forget_oldest(self, now: float) -> None:
        stale = [k for k, f in self._failures.items() if now - f.last_failure >= self.forget_after]
        for key in stale:
            del self._failures[key]
        excess = len(self._failures) - self.max_keys
        if excess > 0:
            oldest = sorted(self._failures, key=lambda k: self._failures[k].last_failure)
            for key in oldest[:excess]:
                del self._failures[key]
