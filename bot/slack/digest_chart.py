"""The digest's chart as a PNG: stuck orders per day stacked by reason (bars), and the median time to resolve (a line
on its own axis). Drawn from `ChartSeries` alone (bot/domain/digest_chart.py): no Slack, no store.

matplotlib's Agg canvas, on a `Figure` of its own rather than through pyplot: no display is needed, and no global
state is shared between two digests drawn at once.

The server draws in a child process (`chart_png_apart`, which runs this module): importing matplotlib adds about
40 MB to a process for good (54 MB with numpy, which sqlite-utils loads anyway), measured, and the server draws one
chart a day. The child takes about a second.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from datetime import date, timedelta
from typing import Any

from bot.domain.digest import reason_title
from bot.domain.digest_chart import CHART_DAYS, ChartSeries

WIDTH, HEIGHT, DPI = 1200, 600, 100  # pixels of the PNG, and pixels per inch of the figure
FILENAME = "orderbot-digest-chart.png"
TITLE = f"Stuck orders per day, last {CHART_DAYS} days"
# Reason colours, in the rules' order (matplotlib's tab10); a reason past these takes grey.
COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
OTHER = "#bab0ac"
LINE = "#222222"
LEGEND_LINE = "median time to resolve"


DRAW_TIMEOUT = 60  # seconds the child may take; it takes about one


def chart_png_apart(series: ChartSeries) -> bytes:
    """`chart_png` drawn by a child process, so that matplotlib never loads into this one. Blocking: call it from a
    worker thread. Raises RuntimeError with the child's last words when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(series_to_json(series)).encode(),
        capture_output=True,
        timeout=DRAW_TIMEOUT,
        check=False,
    )
    if done.returncode != 0 or not done.stdout:
        raise RuntimeError(f"the chart could not be drawn: {done.stderr.decode(errors='replace')[-500:]}")
    return done.stdout


def series_to_json(series: ChartSeries) -> dict[str, Any]:
    return {
        "days": [day.isoformat() for day in series.days],
        "recorded": list(series.recorded),
        "stuck": [[reason, list(counts)] for reason, counts in series.stuck],
        "resolved": list(series.resolved),
        "median_to_resolve": [None if m is None else m.total_seconds() for m in series.median_to_resolve],
    }


def series_from_json(data: dict[str, Any]) -> ChartSeries:
    return ChartSeries(
        days=tuple(date.fromisoformat(day) for day in data["days"]),
        recorded=tuple(bool(r) for r in data["recorded"]),
        stuck=tuple((str(reason), tuple(int(c) for c in counts)) for reason, counts in data["stuck"]),
        resolved=tuple(int(r) for r in data["resolved"]),
        median_to_resolve=tuple(None if m is None else timedelta(seconds=m) for m in data["median_to_resolve"]),
    )


def chart_png(series: ChartSeries) -> bytes:
    """The chart, WIDTH × HEIGHT pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # 40 MB: loaded only where a chart is drawn
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    bars = figure.subplots()
    positions = range(len(series.days))
    bottom = [0] * len(series.days)
    for n, (reason, counts) in enumerate(series.stuck):
        colour = COLOURS[n] if n < len(COLOURS) else OTHER
        bars.bar(positions, counts, bottom=bottom, color=colour, label=reason_title(reason), width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    for i, recorded in enumerate(series.recorded):
        if not recorded:
            bars.axvspan(i - 0.4, i + 0.4, color="#eeeeee", zorder=0)  # no snapshot that day: a gap, not a zero
    bars.set_ylabel("stuck orders")
    bars.set_ylim(0, max([*bottom, 1]) * 1.15)
    bars.yaxis.get_major_locator().set_params(integer=True)
    step = max(1, math.ceil(len(series.days) / 10))
    bars.set_xticks(list(positions)[::step], [f"{day:%b} {day.day}" for day in series.days[::step]])
    bars.set_xlim(-0.6, len(series.days) - 0.4)
    bars.set_title(f"{TITLE} (UTC days); line: median time to resolve")

    unit, seconds = _unit(series.median_to_resolve)
    line = bars.twinx()
    # Joined across the days nobody resolved anything: those have no median, and a broken line reads as dots.
    points = [(i, m.total_seconds() / seconds) for i, m in enumerate(series.median_to_resolve) if m is not None]
    line.plot([i for i, _ in points], [m for _, m in points], color=LINE, marker="o", markersize=4, label=LEGEND_LINE)
    line.set_ylabel(f"{LEGEND_LINE} ({unit})")
    line.set_ylim(0, max([m for _, m in points] + [1]) * 1.15)

    handles, labels = bars.get_legend_handles_labels()
    more_handles, more_labels = line.get_legend_handles_labels()
    bars.legend(
        handles + more_handles,
        labels + more_labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        ncols=min(len(labels) + 1, 5),
        fontsize="small",
        frameon=False,
    )
    figure.subplots_adjust(left=0.06, right=0.93, top=0.93, bottom=0.15)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI)
    return out.getvalue()


def _unit(medians: tuple[timedelta | None, ...]) -> tuple[str, float]:
    """Hours, or days once a median passes three days."""
    longest = max((m for m in medians if m is not None), default=timedelta(0))
    return ("days", 86400.0) if longest > timedelta(days=3) else ("hours", 3600.0)


def chart_alt_text(series: ChartSeries) -> str:
    """What the chart shows, for a screen reader (Slack's alt text)."""
    today = series.total_stuck(-1) if series.recorded[-1] else None
    now = f"{today} stuck today" if today is not None else "no count yet today"
    return (
        f"Bar chart of stuck orders per day over the last {len(series.days)} days, stacked by reason, with the median "
        f"time to resolve as a line; {now}, {sum(series.resolved)} resolved in those days."
    )


if __name__ == "__main__":  # the child of chart_png_apart: the series as JSON on stdin, the PNG on stdout
    sys.stdout.buffer.write(chart_png(series_from_json(json.load(sys.stdin))))
