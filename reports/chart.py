"""Charts as inline SVG text, drawn by our own code: no script, no web font, no network.

:func:`stacked_bars` draws one bar per period (a month), stacked by series (recipient
categories), with a value axis, a legend and a ``<title>`` on every segment, so a browser
shows the figure on hover and a screen reader reads the chart's title and description.
Colours are the Okabe-Ito palette, which stays distinguishable for colour-blind readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#F0E442",
    "#000000",
    "#999999",
)

WIDTH = 760
PLOT_HEIGHT = 240
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 16
AXIS_HEIGHT = 40
LEGEND_ROW = 20
LEGEND_COLUMNS = 3


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (at least 1)."""
    if value <= 1:
        return 1
    magnitude: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        top = step * magnitude
        if top >= value and top == int(top):
            return int(top)
    return 10 * magnitude  # pragma: no cover - the loop always returns


def _number(value: int) -> str:
    return f"{value:,}"


def stacked_bars(
    *,
    chart_id: str,
    title: str,
    description: str,
    periods: Sequence[str],
    series: Mapping[str, Sequence[int]],
    labels: Mapping[str, str] | None = None,
) -> str:
    """An SVG of one stacked bar per period; ``series`` maps a key to one value per period."""
    names = list(series)
    shown = labels or {}
    legend_rows = math.ceil(len(names) / LEGEND_COLUMNS) if names else 0
    height = MARGIN_TOP + PLOT_HEIGHT + AXIS_HEIGHT + legend_rows * LEGEND_ROW + 8
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    totals = [sum(series[n][i] for n in names) for i in range(len(periods))]
    top = nice_ceiling(max(totals, default=0))
    base_y = MARGIN_TOP + PLOT_HEIGHT

    def y_of(value: float) -> float:
        return base_y - PLOT_HEIGHT * value / top

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{escape(chart_id)}" class="chart" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif" '
        f'role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(description)}</desc>',
        '<g class="axis" font-size="11" fill="#333">',
    ]
    for step in range(5):
        value = top * step / 4
        y = y_of(value)
        label = _number(round(value)) if value == int(value) else f"{value:,.1f}"
        out.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>'
        )
    band = plot_width / max(len(periods), 1)
    bar = band * 0.7
    for i, period in enumerate(periods):
        x = MARGIN_LEFT + band * i + (band - bar) / 2
        out.append(
            f'<text x="{x + bar / 2:.1f}" y="{base_y + 16}" text-anchor="middle">'
            f"{escape(period)}</text>"
        )
    out.append("</g>")
    out.append('<g class="bars">')
    for i, period in enumerate(periods):
        x = MARGIN_LEFT + band * i + (band - bar) / 2
        running = 0
        for k, name in enumerate(names):
            value = series[name][i]
            if value <= 0:
                continue
            y_top, y_bottom = y_of(running + value), y_of(running)
            running += value
            label = shown.get(name, name)
            out.append(
                f'<rect x="{x:.1f}" y="{y_top:.1f}" width="{bar:.1f}" '
                f'height="{max(y_bottom - y_top, 0.5):.1f}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(label)}, {escape(period)}: {_number(value)}</title></rect>"
            )
    out.append("</g>")
    out.append(
        f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{base_y}" y2="{base_y}" '
        'stroke="#333" stroke-width="1"/>'
    )
    out.append('<g class="legend" font-size="12" fill="#222">')
    column_width = (WIDTH - MARGIN_LEFT) / LEGEND_COLUMNS
    for k, name in enumerate(names):
        row, column = divmod(k, LEGEND_COLUMNS)
        x = MARGIN_LEFT + column * column_width
        y = base_y + AXIS_HEIGHT + row * LEGEND_ROW
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10}" width="12" height="12" '
            f'fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{x + 18:.1f}" y="{y}">{escape(shown.get(name, name))}</text>'
        )
    out.append("</g>")
    if not any(totals):
        out.append(
            f'<text x="{WIDTH / 2:.0f}" y="{MARGIN_TOP + PLOT_HEIGHT / 2:.0f}" '
            'text-anchor="middle" font-size="14" fill="#666">No disclosures in the window</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
