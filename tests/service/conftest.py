"""The service in process: a real ledger file (ingested through the real pipeline, no
broker), a real :class:`LedgerService` over it, the real app, called through FastAPI's
``TestClient``. Tests against a real ``serve`` process and broker live in
``tests/integration``.

``service_client`` gives ``(client, service, tokens)``: ``tokens[role]`` is a live API token
of that role. ``MEMBERS`` are the subjects the ledger holds (``member-0`` ... ``member-9``,
each with disclosures in 2026).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from consumers.pipeline import Ingestor, SourceMessage
from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.runtime import LedgerService
from ledger.pseudonyms import SubjectKeyStore
from ledger.store import Ledger
from reference import ReferenceData
from schemas.codec import EventCodec
from tests.conftest import TEST_SECRET
from tests.unit.events import make_event
from tests.unit.ledger_rows import record_coverage_in

TOPIC = "privacy.disclosures.v1"
MEMBERS = [f"member-{i}" for i in range(10)]
PASSWORD = "correct horse battery staple"
"""Every test user's password (``user-<role>``)."""


def build_ledger(
    path: Path,
    reference: ReferenceData,
    events: int = 60,
    *,
    complete_through: datetime = datetime(2100, 1, 1),
) -> Path:
    """A ledger of ``events`` disclosures of :data:`MEMBERS` in 2026, complete through
    ``complete_through`` (by default 2100: after every as-of a test can ask)."""
    codec = EventCodec()
    messages = [
        SourceMessage(
            TOPIC,
            i % 3,
            i // 3,
            b"key",
            codec.encode(
                make_event(
                    subject={"id": MEMBERS[i % len(MEMBERS)], "type": "member"},
                    occurred_at=datetime(2026, 1 + i % 10, 1 + i % 27, 12, 0, tzinfo=UTC),
                ).to_avro()
            ),
        )
        for i in range(events)
    ]
    with (
        Ledger(path) as ledger,
        SubjectKeyStore(path.with_name(path.name + ".keys.sqlite"), TEST_SECRET) as keys,
    ):
        Ingestor(ledger, keys, reference).ingest(messages)
        record_coverage_in(ledger.con, complete_through)
    return path


@dataclass
class ServiceClient:
    client: TestClient
    service: LedgerService
    accounts: AccountStore
    tokens: dict[Role, str]

    def as_role(self, role: Role) -> dict[str, str]:
        """Headers that authenticate as an API token of ``role``."""
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextmanager
def serving(
    path: Path, reference: ReferenceData, *, config: ServiceConfig | None = None
) -> Iterator[ServiceClient]:
    """The service in process over the ledger at ``path`` (with ``config``, else the
    defaults), a token of every role and a user ``user-<role>`` of each, password
    :data:`PASSWORD`. Every in-process service of these tests is made here."""
    accounts = AccountStore(default_account_store(path))
    tokens = {
        role: accounts.issue_token(role, label=f"test {role.value}", created_by="test").token
        for role in Role
    }
    for role in Role:
        accounts.add_user(f"user-{role.value}", role, PASSWORD)
    service = LedgerService(
        config or ServiceConfig(ledger=path, memory_limit="512MB"),
        reference=reference,
        subject_secret=TEST_SECRET,
        key_store=path.with_name(path.name + ".keys.sqlite"),
        ingest=None,
        signer=None,
    )
    try:
        with TestClient(create_app(service, accounts)) as client:
            yield ServiceClient(client, service, accounts, tokens)
    finally:
        service.stop()


@pytest.fixture
def service_client(tmp_path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    with serving(build_ledger(tmp_path / "ledger.duckdb", reference), reference) as served:
        yield served
