"""The CLI's command groups, one module each; ``disclosure_ledger.cli`` registers them.

Each module declares its commands and their options in ``register(commands)`` and gives
each command a thin handler that parses nothing more and calls the library::

    broker        broker fetch|start|stop|status
    ingest        publish, simulate, consume, demo
    serve         serve (the ledger service: ingest, API, console)
    verify        verify
    proofs        prove, verify-proof (bundles checked without the ledger)
    maintenance   migrate, quarantine show
    keys          keys generate, erase-subject
    approvals     approvals list|show|approve|reject|withdraw (through the service)
    notices       notices record (GDPR Art. 19 notices after an erasure)
    reports       report ccpa|conformance|transfers|subject|recipients|requests
    requests      requests open|verify-identity|extend|answer|deny|list|show (the register)
    query         query (SQL or a preset)
    schemas       schemas check
    reference     reference show|check
    users         users add|reset-password|disable|enable|list, users token issue|revoke,
                  users tokens (the service's accounts and API tokens)

``options`` holds what they share (common options, argument types); ``key_material``
reads the subject secret and the checkpoint signing key from the settings.
"""
