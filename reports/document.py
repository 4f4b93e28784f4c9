"""A report as a document (title, sections, provenance), written as Markdown, HTML or CSV.

Each report builds a :class:`Document` from its values, and this module writes it:

- :func:`render_markdown`: headings, paragraphs, bullet lists and GitHub tables;
- :func:`render_html`: one self-contained page (inline CSS, inline SVG charts, no script,
  a Content-Security-Policy that forbids loading anything), for filing as it is;
- :func:`render_csv`: one table of the report's rows, preceded by ``# key: value`` lines
  that carry the provenance (most CSV readers skip them with a comment option, e.g.
  ``pandas.read_csv(..., comment="#")``; a spreadsheet shows them above the table).

JSON is each report's own contract (:mod:`reports.contracts`); :mod:`reports.base` dispatches
a format to the right writer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from reports.coverage import coverage_meta, provisional_banner
from reports.provenance import (
    CHAIN_HEADERS,
    Provenance,
    chain_rows,
    provenance_lines,
    rfc3339,
)
from reports.render import markdown_table
from reports.templates import render_template

ReportFormat = Literal["json", "md", "html", "csv"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("json", "md", "html", "csv")


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()  # right-aligned columns
    caption: str | None = None
    # Many numeric columns (a month's row of counts): set compact in HTML, and where the
    # page is narrow (print, small screens) its column headers turn sideways to fit.
    wide: bool = False


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()  # a bulleted list
    table: Table | None = None
    chart_svg: str | None = None  # HTML only: SVG chart and legend; the table has the numbers
    chart_caption: str | None = None  # HTML only: how to read the chart (not the table's)
    notice: str | None = None  # a flag the reader must not miss
    section_id: str | None = None


@dataclass(frozen=True)
class Document:
    title: str
    basis: str  # the law the report answers, printed under the title
    sections: tuple[Section, ...]
    provenance: Provenance | None
    provenance_notes: tuple[str, ...] = ()
    source_lines: tuple[str, ...] = field(default_factory=tuple)  # for non-ledger sources


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


# -- Markdown ---------------------------------------------------------------------------------
def render_markdown(doc: Document) -> str:
    out = [f"# {doc.title}", "", f"*{doc.basis}*", ""]
    banner = provisional_banner(doc.provenance.coverage if doc.provenance else None)
    if banner:
        out += [f"> **{banner}**", ""]
    for section in doc.sections:
        out += [f"## {section.heading}", ""]
        if section.notice:
            out += [f"> **{section.notice}**", ""]
        for paragraph in section.paragraphs:
            out += [paragraph, ""]
        if section.items:
            out += [f"- {item}" for item in section.items]
            out.append("")
        if section.table is not None:
            if section.table.caption:
                out += [f"*{section.table.caption}*", ""]
            out.append(markdown_table(section.table.headers, section.table.rows))
    out += ["## How this report was produced", ""]
    out += [f"- {line}" for line in _source_lines(doc)]
    out.append("")
    if doc.provenance is not None:
        if doc.provenance.chains:
            out.append(markdown_table(CHAIN_HEADERS, chain_rows(doc.provenance)))
        else:
            out.append("The ledger holds no events.\n")
    return "\n".join(out)


def _source_lines(doc: Document) -> list[str]:
    lines = list(doc.source_lines)
    if doc.provenance is not None:
        lines += provenance_lines(doc.provenance)
    lines += doc.provenance_notes
    return lines


# -- HTML -------------------------------------------------------------------------------------
def _cell_classes(table: Table, hash_columns: Sequence[int] = ()) -> list[str]:
    """The class of each column's cells: ``num`` (right-aligned), ``hash`` (monospace)."""
    width = max((len(row) for row in table.rows), default=len(table.headers))
    return [
        " ".join(
            name
            for name, on in (
                ("num", i < len(table.numeric) and table.numeric[i]),
                ("hash", i in hash_columns),
            )
            if on
        )
        for i in range(max(width, len(table.headers)))
    ]


def render_html(doc: Document) -> str:
    """One self-contained page (``templates/report.html.j2``)."""
    chains = None
    if doc.provenance is not None and doc.provenance.chains:
        chains = Table(
            CHAIN_HEADERS,
            tuple(tuple(r) for r in chain_rows(doc.provenance)),
            (False, True, False, True, False),
        )
    return render_template(
        "report.html.j2",
        doc=doc,
        chains=chains,
        source_lines=_source_lines(doc),
        banner=provisional_banner(doc.provenance.coverage if doc.provenance else None),
        slug=slug,
        cell_classes=_cell_classes,
    )


# -- CSV --------------------------------------------------------------------------------------
def provenance_meta(p: Provenance | None) -> list[tuple[str, str]]:
    """The provenance as ``key: value`` pairs for a CSV preamble."""
    if p is None:
        return []
    meta = [
        ("as_of", rfc3339(p.as_of) or ""),
        ("window_start", rfc3339(p.window_start) or "(first event)"),
        ("window_end", rfc3339(p.window_end) or ""),
        ("generated_at", rfc3339(p.generated_at) or ""),
        ("reference_versions", " ".join(p.reference_versions) or "none"),
        ("ledger_format_version", p.ledger_format_version or "unknown"),
        ("events_counted", str(p.events_counted)),
        ("first_event_at", rfc3339(p.first_event_at) or ""),
        ("last_event_at", rfc3339(p.last_event_at) or ""),
    ]
    meta += [
        (
            "chain",
            f"{c.chain_id} head_seq={c.head_seq} head_chain_hash={c.head_chain_hash} "
            f"events_counted={c.events_counted} seq_range={c.range_text()}",
        )
        for c in p.chains
    ]
    meta += coverage_meta(p.coverage)
    return meta


def render_csv(
    report: str,
    meta: Sequence[tuple[str, str]],
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
) -> str:
    """``# report: NAME`` and ``# key: value`` lines, then a header row and the rows."""
    out = io.StringIO()
    out.write(f"# report: {report}\n")
    for key, value in meta:
        out.write(f"# {key}: {value.replace(chr(10), ' ')}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else _csv_cell(v) for v in row])
    return out.getvalue()


def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
