"""Each service's count of disclosures after an erasure, kept between looks (the status,
the dashboard and ``/metrics`` read it): see :class:`reports.after_erasure.AfterErasureTally`.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING

import duckdb

from reports.after_erasure import AfterErasureTally

if TYPE_CHECKING:
    from disclosure_ledger.service.runtime import LedgerService

_TALLIES: weakref.WeakKeyDictionary[LedgerService, AfterErasureTally] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def after_erasure_rows(service: LedgerService, cursor: duckdb.DuckDBPyConnection) -> int:
    """The flagged disclosures in ``cursor``'s snapshot of ``service``'s ledger."""
    with _LOCK:
        tally = _TALLIES.get(service)
        if tally is None:
            tally = _TALLIES[service] = AfterErasureTally()
    return tally.count(cursor)
