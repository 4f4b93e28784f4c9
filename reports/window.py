"""The report window: the 12 calendar months before ``as_of``, in UTC.

``report_window(as_of)`` is ``[as_of minus 12 calendar months, as_of)``: the start is in,
``as_of`` itself is out. A date means midnight UTC at the start of that day; a naive
datetime is taken as UTC; an aware one is converted to UTC. From 29 February the start is
clamped to 28 February of the year before (there is no 29 February then).

The ledger stores ``occurred_at`` as a naive UTC ``TIMESTAMP``; :func:`naive_utc` gives
the bound to compare it with (an aware bound would be compared in the session time zone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import overload

from dateutil.relativedelta import relativedelta
from dateutil.rrule import MONTHLY, rrule


def as_utc(moment: date | datetime) -> datetime:
    """A date (midnight UTC) or datetime (naive means UTC) as an aware UTC datetime."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    return datetime.combine(moment, time(0), tzinfo=UTC)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier, clamped to month end."""
    return moment - relativedelta(months=months)


def report_window(as_of: date | datetime) -> tuple[datetime, datetime]:
    """``(start, end)`` of ``[as_of - 12 calendar months, as_of)`` as aware UTC datetimes."""
    end = as_utc(as_of)
    return months_before(end, 12), end


def naive_utc(moment: datetime) -> datetime:
    """An aware datetime as the naive UTC value the ledger's TIMESTAMP columns hold."""
    return as_utc(moment).replace(tzinfo=None)


def months_in(start: datetime, end: datetime) -> list[str]:
    """``YYYY-MM`` of every calendar month that ``[start, end)`` touches, in order."""
    if end <= start:
        return []
    first = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last = end - timedelta(microseconds=1)
    return [f"{month:%Y-%m}" for month in rrule(MONTHLY, dtstart=first, until=last)]


@dataclass(frozen=True)
class MonthSpan:
    """The part of one calendar month (UTC) that a window covers: ``[start, end)``."""

    month: str  # "2025-03"
    start: datetime  # the month's first instant, or the window's start when later
    end: datetime  # the next month's first instant, or the window's end when earlier
    partial: bool  # the window covers only part of the month


def month_spans(start: datetime, end: datetime) -> list[MonthSpan]:
    """Every calendar month that ``[start, end)`` touches (:func:`months_in`), each cut to
    the window, so the first and last say whether the window covers them whole."""
    spans = []
    for month in months_in(start, end):
        first = datetime.strptime(month, "%Y-%m").replace(tzinfo=start.tzinfo)
        following = first + relativedelta(months=1)
        span_start, span_end = max(first, start), min(following, end)
        spans.append(
            MonthSpan(month, span_start, span_end, (span_start, span_end) != (first, following))
        )
    return spans


def clamp_since(
    since: date | datetime | None, window_start: datetime, floor: datetime
) -> tuple[datetime, bool]:
    """The start of a lookback asked to reach back to ``since`` (default ``window_start``),
    clamped to ``floor``; returns the start and whether it was clamped."""
    if since is None:
        return window_start, False
    start = as_utc(since)
    if start < floor:
        return floor, True
    return start, False


@overload
def rfc3339(moment: datetime) -> str: ...
@overload
def rfc3339(moment: None) -> None: ...
@overload
def rfc3339(moment: datetime | None) -> str | None: ...
def rfc3339(moment: datetime | None) -> str | None:
    """``2025-03-01T00:00:00Z`` (UTC; milliseconds only when there are any)."""
    if moment is None:
        return None
    text = moment.astimezone(UTC).isoformat()
    if "." in text:
        head, _, tail = text.partition(".")
        fraction = tail[: tail.index("+")] if "+" in tail else tail
        text = f"{head}.{fraction[:3]}+00:00"
    return text.replace("+00:00", "Z")
