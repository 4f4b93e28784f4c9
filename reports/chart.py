"""Charts as inline SVG with an HTML legend: no script, no web font, no network.

:func:`stacked_bars` draws one bar per period (a month), stacked by series (recipient
categories), with a value axis and a ``<title>`` on every segment, so a browser shows the
figure on hover and a screen reader reads the chart's title and description. A period
marked partial (a month the window covers only in part) is hatched and labelled so.
Colours are the Okabe-Ito palette, which stays distinguishable for colour-blind readers.

The legend is an HTML list after the SVG, not SVG text: SVG cannot measure text, so a
legend laid out in SVG coordinates overlaps as soon as a label is longer than its slot in
the font the browser picked. As a wrapping list, the browser lays the entries out by their
real widths, one after the other, and they cannot overlap (the browser test measures it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from reports.templates import render_template

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
PARTIAL_LABEL = "partial"


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
    partial: Sequence[bool] = (),
) -> str:
    """An SVG of one stacked bar per period, then its legend as an HTML list; ``series``
    maps a key to one value per period, ``partial`` marks the periods counted in part.

    The geometry is computed here and laid out by ``templates/chart.html.j2``, which
    escapes every text (titles, periods, labels)."""
    names = list(series)
    shown = labels or {}
    is_partial = [i < len(partial) and partial[i] for i in range(len(periods))]
    height = MARGIN_TOP + PLOT_HEIGHT + AXIS_HEIGHT
    plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    totals = [sum(series[n][i] for n in names) for i in range(len(periods))]
    top = nice_ceiling(max(totals, default=0))
    base_y = MARGIN_TOP + PLOT_HEIGHT

    def y_of(value: float) -> float:
        return base_y - PLOT_HEIGHT * value / top

    ticks = []
    for step in range(5):
        value = top * step / 4
        y = y_of(value)
        ticks.append(
            {
                "y": f"{y:.1f}",
                "label_y": f"{y + 4:.1f}",
                "label": _number(round(value)) if value == int(value) else f"{value:,.1f}",
            }
        )
    band = plot_width / max(len(periods), 1)
    bar = band * 0.7
    lefts = [MARGIN_LEFT + band * i + (band - bar) / 2 for i in range(len(periods))]
    segments = []
    for i, period in enumerate(periods):
        running = 0
        for k, name in enumerate(names):
            value = series[name][i]
            if value <= 0:
                continue
            y_top, y_bottom = y_of(running + value), y_of(running)
            running += value
            segments.append(
                {
                    "x": f"{lefts[i]:.1f}",
                    "y": f"{y_top:.1f}",
                    "width": f"{bar:.1f}",
                    "height": f"{max(y_bottom - y_top, 0.5):.1f}",
                    "colour": PALETTE[k % len(PALETTE)],
                    "label": shown.get(name, name),
                    "period": period,
                    "value": _number(value),
                }
            )
    hatched = [
        {
            "x": f"{lefts[i]:.1f}",
            "y": f"{y_of(totals[i]):.1f}",
            "width": f"{bar:.1f}",
            "height": f"{base_y - y_of(totals[i]):.1f}",
        }
        for i in range(len(periods))
        if is_partial[i] and totals[i] > 0
    ]
    legend = [
        {"colour": PALETTE[k % len(PALETTE)], "label": shown.get(name, name)}
        for k, name in enumerate(names)
    ]
    empty = None
    if not any(totals):
        empty = {"x": f"{WIDTH / 2:.0f}", "y": f"{MARGIN_TOP + PLOT_HEIGHT / 2:.0f}"}
    return render_template(
        "chart.html.j2",
        chart_id=chart_id,
        title=title,
        description=description,
        width=WIDTH,
        height=height,
        plot_left=MARGIN_LEFT,
        plot_right=WIDTH - MARGIN_RIGHT,
        base_y=base_y,
        ticks=ticks,
        period_labels=[
            {"x": f"{x + bar / 2:.1f}", "text": period, "partial": part}
            for x, period, part in zip(lefts, periods, is_partial, strict=True)
        ],
        segments=segments,
        hatched=hatched,
        partial_label=PARTIAL_LABEL,
        legend=legend,
        any_partial=any(is_partial),
        empty=empty,
    )
