"""Where a delivered message landed: what :meth:`Delivery.get` returns with either client."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Delivered"]


class Delivered(NamedTuple):
    """An acknowledged message's topic, partition and offset (as kafka-python's
    ``RecordMetadata`` names them, so callers read ``.partition`` and ``.offset``)."""

    topic: str
    partition: int
    offset: int
