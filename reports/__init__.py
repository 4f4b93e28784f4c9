"""Compliance reports and investigator queries over a ledger opened read-only.

Reports (each ``X_report(...)`` computes values, ``render_X(report, fmt)`` writes json, md,
html or csv):

- :mod:`reports.ccpa`: the CCPA privacy-policy lists, 1798.130(a)(5)(C);
- :mod:`reports.subject`: a person's request to know (1798.110/115, GDPR Art. 15(1)(c)),
  the GDPR Art. 19 recipients list, and denials;
- :mod:`reports.transfers`: transfers outside the EEA with their safeguards, Art. 30(1)(e);
- :mod:`reports.conformance`: undeclared flows and transfers without safeguard;
- :mod:`reports.request_metrics`: the 11 CCR 7102 metrics of :mod:`reports.request_log`;
- :mod:`reports.access`: every read of personal data, from the ledger's access log.

Shared parts: :mod:`reports.base` (one read snapshot per report, one dispatch of the formats),
:mod:`reports.contracts` (the JSON contracts as pydantic models, published as JSON Schema
under ``docs/schemas/``), :mod:`reports.provenance` (what every report states it was
computed from), :mod:`reports.document` (Markdown, HTML and CSV writers),
:mod:`reports.chart` (inline SVG), :mod:`reports.templates` (the Jinja2 templates of the
HTML page and the chart), :mod:`reports.registry` (the recipient registry stored
in the ledger), :mod:`reports.window` and :mod:`reports.vocabulary`.

Queries: :mod:`reports.query` (one checked read-only statement, sandboxed connection) and
:mod:`reports.presets` (timeline, recipient, volume), written by :mod:`reports.render`.
"""
