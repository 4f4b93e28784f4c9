"""The Jinja2 templates of the HTML page and the chart (SVG and legend) the reports write.

One environment, with autoescape on for every template: a value is always text, and only
markup a template built itself (the chart inside the page) is passed on as safe.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

TEMPLATES = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)


def render_template(name: str, **values: Any) -> str:
    """The template ``name`` (in this folder) filled with ``values``."""
    text: str = TEMPLATES.get_template(name).render(**values)
    return text
