"""The recipient registry as the ledger holds it (``ref_recipients``), for the reports.

The consumer stores each reference-data version it classified rows with in the ledger's
``ref_*`` tables; a row's ``reference_version`` says which. Reports read the registry from
there, never from the files shipped with this release, so a report on old rows uses the
registry those rows were classified with. :meth:`Registry.at` gives the entry of a
recipient valid at a time under a version (validity ``[valid_from, valid_to)``).

A ledger written before reference data was stored (or a test ledger) has no
``ref_recipients``; the registry is then empty and the reports say which recipients they
could not name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from reports.provenance import aware

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RegistryEntry:
    recipient_id: str
    legal_name: str
    kind: str  # organisation | class
    address: str | None
    country: str | None
    recipient_category: str
    role: str
    eea: bool | None
    safeguard: str | None
    valid_from: datetime
    valid_to: datetime | None
    reference_version: str

    def valid_at(self, moment: datetime) -> bool:
        return self.valid_from <= moment and (self.valid_to is None or moment < self.valid_to)

    def period_text(self) -> str:
        end = "open" if self.valid_to is None else f"{self.valid_to:%Y-%m-%d}"
        return f"[{self.valid_from:%Y-%m-%d}, {end})"


def _from_ms(ms: int | None) -> datetime | None:
    return None if ms is None else _EPOCH + timedelta(milliseconds=int(ms))


def has_table(cursor: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = cursor.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]
    ).fetchone()
    return bool(found and found[0])


class Registry:
    """Registry entries by (recipient id, reference version)."""

    def __init__(self, entries: Iterable[RegistryEntry]) -> None:
        self._by_key: dict[tuple[str, str], list[RegistryEntry]] = {}
        self._by_id: dict[str, list[RegistryEntry]] = {}
        for entry in entries:
            self._by_key.setdefault((entry.recipient_id, entry.reference_version), []).append(entry)
            self._by_id.setdefault(entry.recipient_id, []).append(entry)

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_key.values())

    def at(
        self, recipient_id: str, reference_version: str, moment: datetime
    ) -> RegistryEntry | None:
        """The entry valid at ``moment`` under ``reference_version``; else under any version
        (a row whose version the ledger holds no registry for); else None."""
        moment = aware(moment) or moment
        for entry in self._by_key.get((recipient_id, reference_version), ()):
            if entry.valid_at(moment):
                return entry
        candidates = [e for e in self._by_id.get(recipient_id, ()) if e.valid_at(moment)]
        return max(candidates, key=lambda e: e.reference_version) if candidates else None

    def registered(self, recipient_id: str) -> bool:
        return recipient_id in self._by_id


def read_registry(
    cursor: duckdb.DuckDBPyConnection, recipient_ids: Iterable[str] | None = None
) -> Registry:
    """Registry entries of the ledger (of these recipients only, if given)."""
    if not has_table(cursor, "ref_recipients"):
        return Registry(())
    sql = (
        "SELECT recipient_id, legal_name, kind, address, country, recipient_category, role, "
        "eea, safeguard, epoch_ms(valid_from), epoch_ms(valid_to), reference_version "
        "FROM ref_recipients"
    )
    params: list[object] = []
    if recipient_ids is not None:
        sql += " WHERE list_contains(?, recipient_id)"
        params.append(sorted(set(recipient_ids)))
    rows = cursor.execute(sql, params).fetchall()
    return Registry(
        RegistryEntry(
            recipient_id=str(r[0]),
            legal_name=str(r[1]),
            kind=str(r[2]),
            address=r[3],
            country=r[4],
            recipient_category=str(r[5]),
            role=str(r[6]),
            eea=r[7],
            safeguard=r[8],
            valid_from=_from_ms(r[9]) or _EPOCH,
            valid_to=_from_ms(r[10]),
            reference_version=str(r[11]),
        )
        for r in rows
    )
