"""The consumer's garbage-collection policy: collect between batches, restore on close."""

from __future__ import annotations

import gc
import weakref

from consumers.consumer import _BatchCollector


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_automatic_collection_is_off_while_consuming_and_restored_after() -> None:
    assert gc.isenabled()
    collector = _BatchCollector()
    try:
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0  # what existed at the start is never scanned again
    finally:
        collector.close()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_reference_cycle_lives_until_the_collection_after_its_batch() -> None:
    collector = _BatchCollector()
    try:
        cycle = _cycle()
        batch = [{"n": i} for i in range(50_000)]  # would set off many automatic collections
        del batch
        assert cycle() is not None  # none ran during the "batch"
        collector.collect()  # the one after it
        assert cycle() is None
    finally:
        collector.close()


def test_a_collector_started_with_collection_off_leaves_it_off() -> None:
    gc.disable()
    try:
        _BatchCollector().close()
        assert not gc.isenabled()
    finally:
        gc.enable()
