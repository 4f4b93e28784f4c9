"""Named investigator queries: the questions asked most, as fixed read-only statements.

- :func:`timeline`: everything disclosed about one person, in order (``query timeline``).
  The person is found by the pseudonym of their id; the output never shows the pseudonym.
- :func:`recipient_disclosures`: every disclosure to one recipient in ``[from, to)``
  (``query recipient``).
- :func:`volume`: disclosures per recipient, recipient category or day, with anomalies
  marked (``query volume --by recipient|category|day``).

Each runs one statement of ours, with bound parameters, on the same sandboxed read-only
connection as ``query`` (:func:`reports.query.open_for_query`), and streams the result as
Arrow record batches to a terminal table, CSV, JSON, or a Parquet file
(:func:`reports.render.write_result`); no result is held whole in Python. The statements
themselves (:func:`timeline_statement`, :func:`recipient_statement`,
:func:`volume_statement`) are what the ledger service runs on its own cursors.

**Anomalies.** For each recipient (or category), its daily counts over every day of the
range, days without disclosures counted as 0, give its usual volume, the median ``m``,
and its spread, the median absolute deviation ``MAD``. A day is anomalous when its count
exceeds ``m + max(3.5 x 1.4826 x MAD, 4 x sqrt(m), 10)``: 3.5 robust standard
deviations (the Iglewicz-Hoaglin rule), but never less than four Poisson standard
deviations nor fewer than 10 disclosures, so that steady or sparse recipients do not flag
ordinary noise. ``--by day`` marks a day whose total is anomalous against the usual daily
total, and lists the recipients anomalous that day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal, TextIO

import duckdb
import pyarrow as pa

from ledger.lake import LakeLocation
from reports.errors import ReportError
from reports.query import BATCH_ROWS, check_output, open_for_query, time_limited
from reports.render import DEFAULT_TABLE_ROWS, write_result
from reports.window import naive_utc

VolumeBy = Literal["recipient", "category", "day"]
VOLUME_BY: tuple[VolumeBy, ...] = ("recipient", "category", "day")

ROBUST_Z = 3.5
MAD_TO_SIGMA = 1.4826
POISSON_SIGMAS = 4
MIN_EXCESS = 10

_TIMELINE_COLUMNS = """
    occurred_at, recipient_id, recipient_category, data_categories, purpose, legal_basis,
    disclosure_kind, ccpa_letters, business_purpose, sensitive, declared, flags,
    producer_service, event_id::VARCHAR AS event_id, chain_id, seq, reference_version
"""

# The pseudonym alone filters the scan, so an ART index on subject_pseudonym serves it
# (DuckDB uses an index only for a scan's sole equality filter); see reports/subject.py.
_TIMELINE_SQL = f"""
WITH mine AS MATERIALIZED (
    SELECT * FROM disclosures WHERE subject_pseudonym = $pseudonym
)
SELECT {_TIMELINE_COLUMNS}
FROM mine
WHERE subject_type = $subject_type AND occurred_at >= $start AND occurred_at < $end
ORDER BY occurred_at, chain_id, seq
"""

_RECIPIENT_SQL = """
SELECT occurred_at, recipient_category, subject_type, subject_pseudonym, data_categories,
       purpose, legal_basis, disclosure_kind, ccpa_letters, business_purpose, sensitive,
       declared, flags, producer_service, event_id::VARCHAR AS event_id, chain_id, seq,
       reference_version
FROM disclosures
WHERE recipient_id = $recipient_id AND occurred_at >= $start AND occurred_at < $end
ORDER BY occurred_at, chain_id, seq
"""

_THRESHOLD = (
    f"usual + greatest({ROBUST_Z} * {MAD_TO_SIGMA} * spread, "
    f"{POISSON_SIGMAS} * sqrt(usual), {MIN_EXCESS})"
)

# Daily counts per key, zero-filled over every day of the range, then robust statistics.
_DAILY = """
WITH daily AS (
    SELECT {key} AS key, {label} AS label, occurred_at::DATE AS day, count(*) AS events
    FROM disclosures WHERE occurred_at >= $start AND occurred_at < $end
    GROUP BY ALL
), bounds AS (
    SELECT coalesce($first_day, min(day)) AS first_day, coalesce($last_day, max(day)) AS last_day
    FROM daily
), days AS (
    SELECT unnest(generate_series(first_day, last_day, INTERVAL 1 DAY))::DATE AS day
    FROM bounds WHERE first_day IS NOT NULL
), keys AS (
    SELECT key, any_value(label) AS label FROM daily GROUP BY key
), filled AS (
    SELECT k.key, k.label, d.day, coalesce(x.events, 0) AS events
    FROM keys k CROSS JOIN days d LEFT JOIN daily x ON x.key = k.key AND x.day = d.day
), stats AS (
    SELECT key, median(events)::DOUBLE AS usual, mad(events)::DOUBLE AS spread
    FROM filled GROUP BY key
), marked AS (
    SELECT f.key, f.label, f.day, f.events, s.usual, s.spread,
           round({threshold}, 1) AS threshold, f.events > {threshold} AS anomalous
    FROM filled f JOIN stats s USING (key)
)
"""

_PER_KEY = """
SELECT key AS {name}, {label_column}
       sum(events)::BIGINT AS events,
       count(*) FILTER (WHERE events > 0) AS active_days,
       any_value(usual) AS usual_per_day,
       any_value(threshold) AS anomaly_threshold,
       arg_max(day, (events, DATE '1970-01-01' - day)) AS peak_day,  -- earliest of ties
       max(events) AS peak_events,
       count(*) FILTER (WHERE anomalous) AS anomalous_days,
       list(day ORDER BY day) FILTER (WHERE anomalous) AS anomalous_day_list,
       bool_or(anomalous) AS anomaly
FROM marked
GROUP BY key, label
ORDER BY anomaly DESC, events DESC, key
"""

_PER_DAY = """
, totals AS (
    SELECT day, sum(events)::BIGINT AS events, count(*) FILTER (WHERE events > 0) AS recipients,
           list(key || ' (' || events || ')' ORDER BY events DESC, key)
               FILTER (WHERE anomalous) AS anomalous_recipients
    FROM marked GROUP BY day
), usual AS (
    SELECT median(events)::DOUBLE AS usual, mad(events)::DOUBLE AS spread FROM totals
)
SELECT t.day, t.events, t.recipients, u.usual AS usual_per_day,
       round({threshold}, 1) AS anomaly_threshold,
       t.events > {threshold} AS total_anomaly,
       coalesce(t.anomalous_recipients, []) AS anomalous_recipients,
       t.events > {threshold} OR len(coalesce(t.anomalous_recipients, [])) > 0 AS anomaly
FROM totals t CROSS JOIN usual u
ORDER BY t.day
"""


@dataclass(frozen=True)
class Output:
    """Where and how a preset writes its rows."""

    fmt: str = "table"
    out: TextIO | None = None
    output_path: Path | None = None
    max_table_rows: int = DEFAULT_TABLE_ROWS
    batch_rows: int = BATCH_ROWS


def _bound(moment: date | datetime | None, default: datetime) -> datetime:
    if moment is None:
        return naive_utc(default)
    if isinstance(moment, datetime):
        return naive_utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return datetime.combine(moment, time(0))


_FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PresetStatement:
    """One preset's statement of ours and its bound parameters."""

    sql: str
    params: dict[str, Any]


def run_statement(
    con: duckdb.DuckDBPyConnection,
    statement: PresetStatement,
    output: Output,
    *,
    time_limit: float | None = None,
) -> int:
    """Run ``statement`` on ``con`` and write its rows to ``output``; returns their count."""
    with time_limited(con, time_limit):
        relation = con.sql(statement.sql, params=dict(statement.params))
        if relation is None:  # pragma: no cover - our statements are all SELECTs
            raise ReportError("the preset statement returned no result set")
        reader: pa.RecordBatchReader = relation.to_arrow_reader(output.batch_rows)
        return write_result(
            output.fmt,
            reader,
            out=output.out,
            output_path=output.output_path,
            max_table_rows=output.max_table_rows,
        )


def _run(ledger_path: Path | LakeLocation, statement: PresetStatement, output: Output) -> int:
    check_output(output.fmt, output.output_path)
    con = open_for_query(ledger_path)
    try:
        return run_statement(con, statement, output)
    finally:
        con.close()


def timeline_statement(
    pseudonym: str | None,
    subject_type: str,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> PresetStatement:
    """The statement of :func:`timeline`."""
    params = {
        "pseudonym": pseudonym or "",
        "subject_type": subject_type,
        "start": _bound(start, _FAR_PAST),
        "end": _bound(end, _FAR_FUTURE),
    }
    sql = _TIMELINE_SQL if pseudonym is not None else _TIMELINE_SQL + " LIMIT 0"
    return PresetStatement(sql, params)


def timeline(
    ledger_path: Path | LakeLocation,
    pseudonym: str | None,
    subject_type: str,
    output: Output,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> int:
    """Every disclosure about one person in ``[start, end)``, oldest first.

    ``pseudonym`` None (the key store holds no key for the person) gives an empty result
    of the same columns: no data is held.
    """
    statement = timeline_statement(pseudonym, subject_type, start=start, end=end)
    return _run(ledger_path, statement, output)


def recipient_statement(
    recipient_id: str,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> PresetStatement:
    """The statement of :func:`recipient_disclosures`."""
    params = {
        "recipient_id": recipient_id,
        "start": _bound(start, _FAR_PAST),
        "end": _bound(end, _FAR_FUTURE),
    }
    return PresetStatement(_RECIPIENT_SQL, params)


def recipient_disclosures(
    ledger_path: Path | LakeLocation,
    recipient_id: str,
    output: Output,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> int:
    """Every disclosure to ``recipient_id`` in ``[start, end)``, oldest first."""
    statement = recipient_statement(recipient_id, start=start, end=end)
    return _run(ledger_path, statement, output)


def volume_sql(by: str) -> str:
    """The statement behind ``query volume --by BY`` (see module doc for the rule)."""
    if by not in VOLUME_BY:
        raise ReportError(f"unknown --by {by!r}; choose one of {', '.join(VOLUME_BY)}")
    key, label = {
        "recipient": ("recipient_id", "recipient_category"),
        "category": ("recipient_category", "recipient_category"),
        "day": ("recipient_id", "recipient_category"),
    }[by]
    head = _DAILY.format(key=key, label=label, threshold=_THRESHOLD)
    if by == "day":
        return head + _PER_DAY.format(threshold=_THRESHOLD)
    return head + _PER_KEY.format(
        name="recipient_id" if by == "recipient" else "recipient_category",
        label_column="label AS recipient_category," if by == "recipient" else "",
    )


def volume_statement(
    by: str,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> PresetStatement:
    """The statement of :func:`volume`; the range defaults to the days the ledger has
    disclosures on."""
    first = _bound(start, _FAR_PAST)
    last = _bound(end, _FAR_FUTURE)
    params = {
        "start": first,
        "end": last,
        "first_day": None if start is None else first.date(),
        "last_day": None
        if end is None
        else (last.date() if last.time() != time(0) else _previous_day(last.date())),
    }
    return PresetStatement(volume_sql(by), params)


def volume(
    ledger_path: Path | LakeLocation,
    by: str,
    output: Output,
    *,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
) -> int:
    """Disclosures per recipient, category or day in ``[start, end)``, anomalies marked.

    The range defaults to the days the ledger has disclosures on.
    """
    return _run(ledger_path, volume_statement(by, start=start, end=end), output)


def _previous_day(day: date) -> date:
    return date.fromordinal(day.toordinal() - 1)
