"""Reference data: recipients, categories, purposes, declared flows and quarantine rules.

Versioned data files, validated on load. Neither storage (``ledger``) nor the wire contract
(``schemas``): consumers, reports and the simulator all classify with it.
"""
