"""Waiting for a condition with a deadline, by tenacity."""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import Retrying, retry_if_result, wait_fixed

__all__ = ["poll_until"]


def poll_until(condition: Callable[[], bool], *, deadline: float, interval: float) -> bool:
    """Call ``condition`` every ``interval`` seconds until it holds or ``deadline`` passes.

    ``deadline`` is a :func:`time.monotonic` instant. Returns whether the condition held;
    it is asked at least once. An exception it raises ends the wait and propagates.
    """
    retrying = Retrying(
        retry=retry_if_result(lambda held: not held),
        wait=wait_fixed(interval),
        stop=lambda _state: time.monotonic() >= deadline,
        retry_error_callback=lambda _state: False,
    )
    return bool(retrying(condition))
