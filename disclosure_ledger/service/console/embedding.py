"""The library's own HTML report, shown inside a console page, and report downloads.

A report renders itself as one self-contained page (:func:`reports.document.render_html`).
The console shows the same markup: the content of that page's ``<main>`` element, inside
the console's layout, styled by the console's stylesheet (the page's inline ``<style>``
would need ``'unsafe-inline'``, which the console's Content-Security-Policy does not give).
The inline SVG chart needs nothing the policy forbids.
"""

from __future__ import annotations

from datetime import date

from fastapi import Response
from markupsafe import Markup

from disclosure_ledger.service.console.forms import FormError

DOWNLOAD_FORMATS: dict[str, tuple[str, str]] = {
    "md": ("md", "text/markdown; charset=utf-8"),
    "html": ("html", "text/html; charset=utf-8"),
    "csv": ("csv", "text/csv; charset=utf-8"),
    "json": ("json", "application/json"),
}
"""A report's download formats: extension and media type (the CLI's ``--format``)."""


def report_body(html: str) -> Markup:
    """The inside of the report page's ``<main>`` element (markup the library escaped)."""
    start, end = html.find("<main>"), html.rfind("</main>")
    if start < 0 or end < start:
        raise ValueError("the report's HTML has no <main> element")
    return Markup(html[start + len("<main>") : end])


def download_format(value: str | None) -> str:
    if value not in DOWNLOAD_FORMATS:
        raise FormError(f"format: choose one of {', '.join(DOWNLOAD_FORMATS)}.")
    return value


def download(text: str, *, stem: str, fmt: str, on: date | None = None) -> Response:
    """``text`` as an attachment named ``STEM[-DATE].EXT`` (the name is built here from
    known parts only, never from input)."""
    extension, media_type = DOWNLOAD_FORMATS[fmt]
    name = f"{stem}-{on.isoformat()}.{extension}" if on is not None else f"{stem}.{extension}"
    return Response(
        text,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
