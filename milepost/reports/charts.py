"""Inline SVG bar charts of monthly percentages, laid out here and drawn by the template.

A chart is plain geometry (bars, ticks, labels) plus its text alternative: a title, a
one-sentence description and the same figures as table rows. Months without data get no
bar (the chart says "no data" there); a chart without any data says "No data yet" and draws
nothing, never a row of zeros.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Bar", "BarChart", "Tick", "percent_chart"]

WIDTH = 640
HEIGHT = 260
LEFT = 52
RIGHT = 16
TOP = 20
BOTTOM = 44
TICKS = (0, 25, 50, 75, 100)
NO_DATA = "No data yet"


@dataclass(frozen=True)
class Bar:
    label: str
    has_data: bool
    value_text: str
    x: float
    width: float
    y: float
    height: float
    center: float


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class BarChart:
    chart_id: str
    title: str
    desc: str
    width: int
    height: int
    left: int
    right: int
    top: int
    baseline: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    empty: bool
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _percent(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def percent_chart(
    chart_id: str,
    *,
    title: str,
    points: Sequence[Mapping[str, Any]],
    measure: str,
    good: str,
    total: str,
    more: Sequence[tuple[str, str]] = (),
) -> BarChart:
    """A bar per month of ``points`` ({label, good, total, percent}). ``measure`` says what
    the percentage is ("of patches on time"); ``good`` and ``total`` name the counts in the
    table's columns; ``more``: further columns of the table, (heading, key of the point)."""
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = plot_width / max(len(points), 1)
    bars = []
    rows = []
    for index, point in enumerate(points):
        percent = point.get("percent")
        label = str(point.get("label"))
        extra = tuple(str(point.get(key, "-")) for _, key in more)
        center = LEFT + slot * index + slot / 2
        width = min(slot * 0.6, 64.0)
        if percent is None:
            bars.append(
                Bar(label, False, "no data", center - width / 2, width, baseline, 0, center)
            )
            rows.append(
                (label, "no data", str(point.get("good", 0)), str(point.get("total", 0)), *extra)
            )
            continue
        height = plot_height * max(0.0, min(float(percent), 100.0)) / 100.0
        text = _percent(float(percent))
        bars.append(
            Bar(label, True, text, center - width / 2, width, baseline - height, height, center)
        )
        rows.append((label, text, str(point.get("good", 0)), str(point.get("total", 0)), *extra))
    ticks = tuple(Tick(baseline - plot_height * value / 100.0, f"{value}%") for value in TICKS)
    with_data = [(b.label, b.value_text) for b in bars if b.has_data]
    empty = not with_data
    if empty:
        desc = f"{NO_DATA}: no month from {points[0]['label'] if points else '-'} on has figures."
    else:
        first, last = str(points[0]["label"]), str(points[-1]["label"])
        latest_label, latest_value = with_data[-1]
        desc = (
            f"Bar chart of the share {measure}, per month from {first} to {last}."
            f" Latest: {latest_value} in {latest_label}."
            f" Months without figures: {len(bars) - len(with_data)}."
        )
    return BarChart(
        chart_id=chart_id,
        title=title,
        desc=desc,
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        right=WIDTH - RIGHT,
        top=TOP,
        baseline=baseline,
        bars=tuple(bars),
        ticks=ticks,
        empty=empty,
        caption=f"{title}: the figures",
        columns=("Month", "Share", good.capitalize(), total.capitalize(), *(h for h, _ in more)),
        rows=tuple(rows),
    )
