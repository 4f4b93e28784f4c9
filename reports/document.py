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
from html import escape
from typing import Literal

from reports.provenance import (
    CHAIN_HEADERS,
    Provenance,
    chain_rows,
    provenance_lines,
    rfc3339,
)
from reports.render import markdown_table

ReportFormat = Literal["json", "md", "html", "csv"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("json", "md", "html", "csv")


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...] = ()  # right-aligned columns
    caption: str | None = None


@dataclass(frozen=True)
class Section:
    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()  # a bulleted list
    table: Table | None = None
    chart_svg: str | None = None  # HTML only; the table beside it carries the same numbers
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
_CSS = """
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a1a1a;
       margin: 0; background: #fff; }
main { max-width: 980px; margin: 0 auto; padding: 24px 32px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 32px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
p.basis { color: #555; font-style: italic; margin-top: 0; }
p.notice { background: #fff4e5; border-left: 4px solid #d55e00; padding: 8px 12px;
           font-weight: 600; }
table { border-collapse: collapse; margin: 8px 0 16px; width: 100%; }
caption { text-align: left; color: #555; font-style: italic; padding-bottom: 4px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.hash { font-family: ui-monospace, monospace; font-size: 0.8em; word-break: break-all; }
figure { margin: 16px 0; }
figcaption { color: #555; font-size: 0.9em; }
svg.chart { max-width: 100%; height: auto; }
footer { margin-top: 40px; color: #333; font-size: 0.92em; }
@media print { main { padding: 0; } h2 { break-after: avoid; } table { break-inside: auto; } }
"""

# Nothing may be loaded: no script, no image, no font, no connection (inline CSS only).
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"


def _html_table(table: Table, *, hash_columns: Sequence[int] = ()) -> str:
    numeric = table.numeric or tuple(False for _ in table.headers)
    out = ["<table>"]
    if table.caption:
        out.append(f"<caption>{escape(table.caption)}</caption>")
    out.append("<thead><tr>" + "".join(f'<th scope="col">{escape(h)}</th>' for h in table.headers))
    out.append("</tr></thead><tbody>")
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            classes = []
            if i < len(numeric) and numeric[i]:
                classes.append("num")
            if i in hash_columns:
                classes.append("hash")
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{escape(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def render_html(doc: Document) -> str:
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(doc.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        f"<h1>{escape(doc.title)}</h1>",
        f'<p class="basis">{escape(doc.basis)}</p>',
        "</header>",
    ]
    for section in doc.sections:
        out.append(f'<section id="{escape(section.section_id or slug(section.heading))}">')
        out.append(f"<h2>{escape(section.heading)}</h2>")
        if section.notice:
            out.append(f'<p class="notice" role="note">{escape(section.notice)}</p>')
        out += [f"<p>{escape(p)}</p>" for p in section.paragraphs]
        if section.items:
            out.append("<ul>")
            out += [f"<li>{escape(item)}</li>" for item in section.items]
            out.append("</ul>")
        if section.chart_svg is not None:
            out.append("<figure>")
            out.append(section.chart_svg)
            if section.table is not None and section.table.caption:
                out.append(f"<figcaption>{escape(section.table.caption)}</figcaption>")
            out.append("</figure>")
        if section.table is not None:
            out.append(_html_table(section.table))
        out.append("</section>")
    out.append('<footer id="provenance">')
    out.append("<h2>How this report was produced</h2>")
    out.append("<ul>")
    out += [f"<li>{escape(line)}</li>" for line in _source_lines(doc)]
    out.append("</ul>")
    if doc.provenance is not None:
        if doc.provenance.chains:
            chains = Table(
                CHAIN_HEADERS,
                tuple(tuple(r) for r in chain_rows(doc.provenance)),
                (False, True, False, True, False),
            )
            out.append(_html_table(chains, hash_columns=(2,)))
        else:
            out.append("<p>The ledger holds no events.</p>")
    out += ["</footer>", "</main>", "</body>", "</html>", ""]
    return "\n".join(out)


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
