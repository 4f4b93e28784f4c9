"""What a report states of the ledger's coverage, and what it does when its window is not
covered (issue 16, "every answer knows its coverage").

The ledger's coverage (:func:`ledger.coverage.ledger_coverage`) is computed once per
report, in its read snapshot (:func:`reports.base.read_snapshot`), and checked against the
window the report was asked for:

- ``refuse`` (period reports: ccpa, transfers, conformance): a window ending after the
  coverage is refused with :class:`~reports.errors.IncompleteLedgerError` (exit 3), naming
  the coverage and what holds it back;
- ``provisional`` (those reports with ``--allow-incomplete``): the report is produced and
  marked provisional in every format (a banner in md and html, ``coverage.complete: false``
  in json, a ``# coverage:`` line in csv);
- ``cut`` (a person's answers: ``subject``, ``recipients``): the window is cut at the
  coverage, and the answer says that the ledger cannot answer for the rest yet; it never
  says "we did not disclose" of a time the ledger does not cover.

Every report over the ledger states its coverage, complete or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from ledger.coverage import Coverage
from reports.contracts import CoverageJson, HoldbackJson, Window
from reports.errors import FutureAsOfError, IncompleteLedgerError
from reports.window import as_utc, rfc3339

CoveragePolicy = Literal["refuse", "provisional", "cut"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class WindowCoverage:
    """The ledger's coverage, and how it bears on one report's window."""

    coverage: Coverage
    requested_end: datetime  # the window end asked for (as_of)
    answered_end: datetime  # the end the report answers for: requested_end unless cut
    complete: bool  # every disclosure before answered_end is recorded

    @property
    def cut(self) -> bool:
        """The report answers for less than was asked (a person's answer)."""
        return self.answered_end < self.requested_end

    @property
    def complete_through(self) -> datetime | None:
        return self.coverage.complete_through


def refuse_future_as_of(as_of: date | datetime, now: datetime) -> None:
    """An ``as_of`` later than ``now`` names a time the ledger cannot know yet."""
    end = as_utc(as_of)
    if end > as_utc(now):
        raise FutureAsOfError(
            f"--as-of {rfc3339(end)} is later than now ({rfc3339(as_utc(now))}): no ledger "
            "can answer for a time that has not come; give a date up to today"
        )


def window_coverage(
    coverage: Coverage,
    *,
    report: str,
    window_start: datetime | None,
    window_end: datetime,
    policy: CoveragePolicy,
) -> WindowCoverage:
    """Check ``[window_start, window_end)`` against ``coverage`` under ``policy`` (module doc)."""
    if coverage.covers(window_end):
        return WindowCoverage(coverage, window_end, window_end, True)
    if policy == "refuse":
        through = coverage.complete_through
        earlier = (
            f"ask for an --as-of on or before {rfc3339(through)}"
            if through is not None
            else "make the sources named send watermarks"
        )
        raise IncompleteLedgerError(
            f"refused: the {report} window ends at {rfc3339(window_end)}, after the ledger's "
            f"coverage: {coverage.describe()}. Wait for the sources to catch up, {earlier}, "
            "or give --allow-incomplete to produce a report marked provisional",
            coverage,
        )
    if policy == "provisional":
        return WindowCoverage(coverage, window_end, window_end, False)
    floor = window_start or _EPOCH
    through = coverage.complete_through
    if through is None or through <= floor:
        return WindowCoverage(coverage, window_end, floor, False)
    return WindowCoverage(coverage, window_end, min(window_end, through), True)


def coverage_statement(wc: WindowCoverage) -> str:
    """The coverage as one paragraph, for the provenance of md, html and json."""
    ledger = wc.coverage.describe()
    if wc.complete and not wc.cut:
        return (
            f"Coverage: complete for this window, which ends at {rfc3339(wc.requested_end)}: "
            f"{ledger}."
        )
    if wc.cut:
        return (
            f"Coverage: this answer covers up to {rfc3339(wc.answered_end)} only; the ledger "
            f"cannot yet answer for {rfc3339(wc.answered_end)} up to "
            f"{rfc3339(wc.requested_end)}: {ledger}."
        )
    return (
        f"Coverage: PROVISIONAL. The window ends at {rfc3339(wc.requested_end)}, after the "
        f"ledger's coverage: {ledger}. Disclosures not yet recorded are missing from it."
    )


def coverage_lines(wc: WindowCoverage | None) -> list[str]:
    return [] if wc is None else [coverage_statement(wc)]


def provisional_banner(wc: WindowCoverage | None) -> str | None:
    """The banner md and html print above a report whose window is not covered."""
    if wc is None or wc.complete or wc.cut:
        return None
    through = wc.complete_through
    return (
        "PROVISIONAL: the ledger is not complete for this window. "
        + (
            f"It is complete through {rfc3339(through)} only"
            if through is not None
            else "It is complete through no known time"
        )
        + "; disclosures not yet recorded are missing, and the figures may change. "
        "See Coverage under “How this report was produced”."
    )


def coverage_meta(wc: WindowCoverage | None) -> list[tuple[str, str]]:
    """``# coverage: ...`` lines of a CSV preamble."""
    if wc is None:
        return []
    state = "complete" if wc.complete and not wc.cut else "cut" if wc.cut else "provisional"
    meta = [
        ("coverage", state),
        ("complete_through", rfc3339(wc.complete_through) or "none"),
    ]
    if wc.cut:
        meta.append(("answered_through", rfc3339(wc.answered_end)))
    meta.append(("coverage_statement", coverage_statement(wc)))
    return meta


def coverage_contract(wc: WindowCoverage | None) -> CoverageJson | None:
    if wc is None:
        return None
    return CoverageJson(
        complete=wc.complete,
        complete_through=rfc3339(wc.complete_through),
        allowance_seconds=int(wc.coverage.allowance.total_seconds()),
        holding_back=[
            HoldbackJson(kind=h.kind, name=h.name, through=rfc3339(h.through), detail=h.detail)
            for h in wc.coverage.holding_back
        ],
        unanswered=Window(start=rfc3339(wc.answered_end), end=rfc3339(wc.requested_end))
        if wc.cut
        else None,
        statement=coverage_statement(wc),
    )


def moment_text(moment: datetime) -> str:
    """``1 November 2026`` at midnight UTC, else ``2026-11-01 08:55 UTC``."""
    if moment.time() == datetime.min.time():
        return f"{moment.day} {moment:%B %Y}"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def answered_nothing(wc: WindowCoverage | None, window_start: datetime | None) -> bool:
    """A person's answer cut so far that it covers none of the window asked for."""
    return wc is not None and wc.cut and wc.answered_end <= (window_start or _EPOCH)


def unanswered_sentence(wc: WindowCoverage | None, window_start: datetime | None) -> str | None:
    """What a person's answer cut at the coverage says of the time it does not answer for."""
    if wc is None or not wc.cut:
        return None
    through = wc.complete_through
    known = (
        f"the ledger is complete through {moment_text(through)} only"
        if through is not None
        else "the ledger is not yet known to be complete for any time"
    )
    if answered_nothing(wc, window_start):
        start = moment_text(window_start) if window_start is not None else "the first disclosure"
        return (
            f"The ledger cannot yet answer for the period asked about ({start} up to "
            f"{moment_text(wc.requested_end)}): {known}, so disclosures of that period may "
            "not all be recorded yet. No statement is made about it here; the request will "
            "be answered when the ledger covers it."
        )
    return (
        f"This answer covers the period up to {moment_text(wc.answered_end)}. The ledger "
        f"cannot yet answer for {moment_text(wc.answered_end)} up to "
        f"{moment_text(wc.requested_end)}: {known}, so disclosures of that time may not all be "
        "recorded yet, and nothing is said about it here."
    )
