"""The ledger service: one process owns the DuckDB ledger, ingests into it, and serves it.

``disclosure-ledger serve`` runs, in one process (:mod:`.server`):

- the consumer loop (:mod:`consumers.consumer`) on a thread of its own, writing through the
  one read-write :class:`~ledger.store.Ledger` (:mod:`.runtime`);
- the HTTP API under ``/api/v1`` (:mod:`.api`) and the web console (:mod:`.console`), each
  request reading through a :meth:`~ledger.store.Ledger.view` of that same database
  instance, so DuckDB's MVCC gives it one consistent snapshot while the writer appends;
- background jobs (verify) and ``/metrics``, ``/healthz``, ``/readyz``.

Who may do what is :mod:`.auth`: local accounts, API tokens, sessions, roles. Every read
of personal data is recorded in the ledger's access log (:mod:`.access`) before it is
answered. Layout::

    config.py     ServiceConfig: the service's settings (listen address, limits, TLS)
    runtime.py    LedgerService: the ledger, the ingest thread, views, jobs
    server.py     serve(): uvicorn + the ingest thread + signals
    app.py        create_app(): the ASGI application
    auth/         roles, accounts (users, tokens, sessions), the request's actor
    access.py     record a read of personal data in the access log
    api/          the JSON API, /api/v1/...
    console/      the server-rendered console (Jinja2), no JavaScript build
"""
