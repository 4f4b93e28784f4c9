"""A :class:`ServiceClient` over a ledger a test built itself (an incomplete one, one with
quarantined messages), set up as the ``service_client`` fixture sets up its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi.testclient import TestClient

from disclosure_ledger.service.app import create_app
from disclosure_ledger.service.auth.accounts import AccountStore, default_account_store
from disclosure_ledger.service.auth.roles import Role
from disclosure_ledger.service.config import ServiceConfig
from disclosure_ledger.service.runtime import LedgerService
from reference import ReferenceData
from tests.conftest import TEST_SECRET
from tests.service.conftest import ServiceClient


@contextmanager
def serving(path: Path, reference: ReferenceData) -> Iterator[ServiceClient]:
    """The service in process over the ledger at ``path``, with a token of every role."""
    accounts = AccountStore(default_account_store(path))
    tokens = {
        role: accounts.issue_token(role, label=f"test {role.value}", created_by="test").token
        for role in Role
    }
    service = LedgerService(
        ServiceConfig(ledger=path, memory_limit="512MB"),
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
