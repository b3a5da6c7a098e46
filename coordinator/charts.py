"""Charts of a report: values per bucket with 95% error bars, pooled and per node.

One panel for the partnership (pooled) and one per node (small multiples). What makes
a reader trust them:

* **Axis labels** on every panel: the grouping (or time bucket) and the measure.
* **One y-scale where values are comparable** (rates, means, quantiles: `y_scale="auto"`
  shares it), free scales for counts and sums, whose sizes differ by orders of magnitude
  between jurisdictions ("shared" / "free" force either). A shared scale is set by the
  values, not by the widest interval: an error bar that runs off it is cut and marked
  with a caret (^ or v), so one tiny node's +/-200 per 100,000 cannot flatten the others.
* **Filters and purpose** in the caption, next to the query id.
* **Suppressed cells draw no point**: an "S" marks where the point would be. **Values
  clamped at 0** (their noisy value was negative) are drawn hollow.
* **Slopes** per year for time-bucketed queries, in the panel title (one series) or the
  legend (several), for rates as well as for counts; none for a series with a
  suppressed point (it would reveal the hidden value).

matplotlib is imported inside `write_chart` only (Agg backend), so `npcs --help` and
every other command never pay for it. It comes with the `charts` install extra; without
it, `write_chart` raises ChartError naming the install command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from coordinator.intervals import interval_label
from coordinator.report import PARTNERSHIP_SOURCE, Report, ValueRow
from coordinator.trend import Point, bucket_position, weighted_slope
from kernel.extras import MissingExtraError, require_extra

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHART_SUFFIXES = (".png", ".svg")
MAX_SERIES_PER_PANEL = 10
YScale = Literal["auto", "shared", "free"]
Y_SCALES: tuple[YScale, ...] = ("auto", "shared", "free")
_COMPARABLE_STATISTICS = frozenset({"mean", "quantiles"})
_SHARED_MARGIN = 1.0
"""A shared scale reaches this many value ranges beyond the values (then bars are cut)."""


class ChartError(ValueError):
    """A chart that cannot be drawn, with a message saying what to do."""


@dataclass(frozen=True)
class ChartPoint:
    """One point of one panel, in display form."""

    label: str
    """The x position's label: a time bucket, or the group key."""
    series: str
    """The series it belongs to (the key without its time bucket; "" for one series)."""
    value: float | None
    """None when suppressed or unknown: nothing is drawn."""
    low: float | None
    high: float | None
    clamped: bool
    suppressed: bool
    slope_point: Point | None
    """The point for a slope fit (unbiased value and its noise variance), if it has one."""


def write_chart(
    report: Report, path: Path, *, rates: bool = False, y_scale: YScale = "auto"
) -> Path:
    """Draw the report to PNG or SVG (chosen by the file suffix) and return the path."""
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ChartError(f"chart file {path} must end in .png or .svg")
    if y_scale not in Y_SCALES:
        raise ChartError(f"y scale {y_scale!r} must be one of {', '.join(Y_SCALES)}")
    name = chart_value_name(report)
    if name is None:
        raise ChartError("this result has no values to chart")
    try:
        require_extra("charts", needed_by="drawing a chart")
    except MissingExtraError as exc:
        raise ChartError(
            f"{exc}; the result is saved, so draw it afterwards with "
            f"`npcs results show {report.result_id} --plot {path}`"
        ) from None
    import matplotlib

    matplotlib.use("Agg")
    sources = _sources(report)
    panels = {source: panel_points(report, source, name, rates) for source in sources}
    limits = shared_limits(list(panels.values())) if shares_y(report, rates, y_scale) else None
    # SVG text stays text (searchable, readable by screen readers), not glyph outlines.
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        _draw(report, path, sources=sources, panels=panels, limits=limits, name=name, rates=rates)
    return path


def _draw(
    report: Report,
    path: Path,
    *,
    sources: Sequence[str],
    panels: dict[str, list[ChartPoint]],
    limits: tuple[float, float] | None,
    name: str,
    rates: bool,
) -> None:
    import matplotlib.pyplot as plt

    columns = min(3, len(sources))
    rows = math.ceil(len(sources) / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(5.4 * columns, 3.9 * rows + 0.8), squeeze=False
    )
    try:
        for index, source in enumerate(sources):
            axis = axes[index // columns][index % columns]
            _draw_panel(axis, report, source, panels[source], limits)
            axis.set_ylabel(y_label(report, name, rates))
            axis.set_xlabel(x_label(report))
        for index in range(len(sources), rows * columns):
            axes[index // columns][index % columns].set_visible(False)
        figure.suptitle(_title(report, name, rates))
        figure.text(0.01, 0.01, chart_caption(report), fontsize="small", wrap=True)
        figure.tight_layout(rect=(0, 0.06, 1, 1))
        figure.savefig(path, format=path.suffix.lower().lstrip("."))
    finally:
        plt.close(figure)


def chart_value_name(report: Report) -> str | None:
    """The value to draw: the mean for means, else the first value released."""
    names = list(dict.fromkeys(row.name for row in report.rows))
    if "mean" in names:
        return "mean"
    return names[0] if names else None


def shares_y(report: Report, rates: bool, y_scale: YScale) -> bool:
    """Shared y-scale: forced, or (auto) when values are comparable across jurisdictions."""
    if y_scale != "auto":
        return y_scale == "shared"
    return rates or report.statistic in _COMPARABLE_STATISTICS


def panel_points(report: Report, source: str, name: str, rates: bool) -> list[ChartPoint]:
    """The points one panel draws, in display form (suppressed ones without a value)."""
    time_index = report.time_group_index
    points = []
    for row in report.rows:
        if row.source != source or row.name != name:
            continue
        if time_index is None:
            label, series = " ".join(row.key) or "all", ""
        else:
            label = row.key[time_index]
            series = " ".join(row.key[:time_index] + row.key[time_index + 1 :])
        value, low, high = _display(row, rates)
        points.append(
            ChartPoint(
                label=label,
                series=series,
                value=value,
                low=low,
                high=high,
                clamped=row.clamped,
                suppressed=row.suppressed,
                slope_point=_slope_point(row, label, rates),
            )
        )
    return points


def _display(row: ValueRow, rates: bool) -> tuple[float | None, float | None, float | None]:
    if row.suppressed:
        return None, None, None
    if rates and row.rate_per_100k is not None:
        return row.rate_per_100k, row.rate_ci_low, row.rate_ci_high
    return row.value, row.ci_low, row.ci_high


def _slope_point(row: ValueRow, label: str, rates: bool) -> Point | None:
    position = bucket_position(label)
    if position is None or row.std is None or row.std <= 0 or row.suppressed:
        return None
    if not rates:
        value, std = row.unbiased_estimate, row.std
    elif row.population:
        value, std = row.unbiased_rate_per_100k, row.std * 100_000 / row.population
    else:
        return None
    return None if value is None else Point(position, value, std * std)


def shared_limits(panels: Sequence[Sequence[ChartPoint]]) -> tuple[float, float] | None:
    """One y-range for all panels: the values plus their intervals, cut at a margin.

    Intervals may reach `_SHARED_MARGIN` value ranges beyond the values; a wider error
    bar is cut there (and marked), so it cannot squash every other panel.
    """
    values = [p.value for panel in panels for p in panel if p.value is not None]
    if not values:
        return None
    lows = [p.low for panel in panels for p in panel if p.low is not None] + values
    highs = [p.high for panel in panels for p in panel if p.high is not None] + values
    smallest, largest = min(values), max(values)
    reach = _SHARED_MARGIN * max(largest - smallest, abs(largest) * 0.1, 1e-9)
    low = max(min(lows), smallest - reach)
    high = min(max(highs), largest + reach)
    if smallest >= 0 and min(lows) >= 0:
        low = max(low, 0.0)
    pad = (high - low) * 0.05 or 1.0
    return low - pad, high + pad


def _sources(report: Report) -> list[str]:
    nodes = list(dict.fromkeys(r.source for r in report.rows if r.source != PARTNERSHIP_SOURCE))
    pooled = any(r.source == PARTNERSHIP_SOURCE for r in report.rows)
    return ([PARTNERSHIP_SOURCE] if pooled and len(nodes) > 1 else []) + nodes


def _measure(report: Report) -> str:
    measure = f"{report.statistic} of {report.dataset}"
    return measure + (f".{report.column}" if report.column else "")


def _title(report: Report, name: str, rates: bool) -> str:
    suffix = " per 100,000 children" if rates else ""
    return f"{_measure(report)} ({name}{suffix}), 95% intervals"


def y_label(report: Report, name: str, rates: bool) -> str:
    if rates:
        return f"{name} per 100,000 children"
    if report.column and (name in ("mean", "sum") or name.startswith("q")):
        return f"{name} of {report.column}"
    return name


def x_label(report: Report) -> str:
    if report.time_group_index is not None:
        return report.group_columns[report.time_group_index]
    return " / ".join(report.group_columns) or "all records"


def chart_caption(report: Report) -> str:
    """Filters, purpose and query id, what the bars cover, and what the marks mean."""
    return (
        f"Filters: {report.filters}.  Purpose: {report.purpose}.  Query {report.query_id}.  "
        f"Bars: 95% intervals of {interval_label(report.interval)}.  "
        "Hollow: the noisy value was below 0, shown at 0.  S: suppressed (publication rule).  "
        "^ v: interval cut at the shared scale."
    )


def _draw_panel(
    axis: Axes,
    report: Report,
    source: str,
    points: Sequence[ChartPoint],
    limits: tuple[float, float] | None,
) -> None:
    label = "Partnership (pooled)" if source == PARTNERSHIP_SOURCE else source
    labels = list(dict.fromkeys(p.label for p in points))
    positions = {text: i for i, text in enumerate(labels)}
    series: dict[str, list[ChartPoint]] = {}
    for point in points:
        series.setdefault(point.series, []).append(point)
    timed = report.time_group_index is not None
    title_slope = ""
    for name, members in list(series.items())[:MAX_SERIES_PER_PANEL]:
        slope = _slope_text(members) if timed else ""
        if len(series) == 1:
            title_slope = slope
        legend = (name or "all") + (f" ({slope})" if slope and len(series) > 1 else "")
        _draw_series(axis, members, positions, legend, connect=timed)
    if limits is not None:
        axis.set_ylim(*limits)
        _mark_cut_bars(axis, points, positions, limits)
    _mark_suppressed(axis, points, positions)
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    if len(series) > 1:
        axis.legend(fontsize="small")
    axis.set_title(label + (f"\n{title_slope}" if title_slope else ""))
    axis.grid(alpha=0.3)


def _draw_series(
    axis: Axes,
    points: Sequence[ChartPoint],
    positions: dict[str, int],
    legend: str,
    *,
    connect: bool,
) -> None:
    # A hidden or unknown value is NaN: no point, and the line breaks there rather than
    # bridging the gap (which would suggest where the hidden value lies).
    xs = [positions[p.label] for p in points]
    values = [math.nan if p.value is None else p.value for p in points]
    below = [_bar(p.value, p.low) for p in points]
    above = [_bar(p.high, p.value) for p in points]
    bars = axis.errorbar(
        xs, values, yerr=[below, above], fmt="o-" if connect else "o", capsize=3, label=legend
    )
    hollow = [p for p in points if p.clamped and p.value is not None]
    if hollow:
        color = bars.lines[0].get_color()
        axis.plot(
            [positions[p.label] for p in hollow],
            [p.value or 0.0 for p in hollow],
            "o",
            markerfacecolor="white",
            markeredgecolor=color,
            zorder=3,
        )


def _bar(upper: float | None, lower: float | None) -> float:
    """Length of one side of an error bar (0 when either end is unknown)."""
    if upper is None or lower is None:
        return 0.0
    return max(upper - lower, 0.0)


def _mark_cut_bars(
    axis: Axes,
    points: Sequence[ChartPoint],
    positions: dict[str, int],
    limits: tuple[float, float],
) -> None:
    for point in points:
        x = positions[point.label]
        if point.high is not None and point.high > limits[1]:
            axis.plot([x], [limits[1]], "^", color="black", markersize=5)
        if point.low is not None and point.low < limits[0]:
            axis.plot([x], [limits[0]], "v", color="black", markersize=5)


def _mark_suppressed(axis: Axes, points: Sequence[ChartPoint], positions: dict[str, int]) -> None:
    for point in points:
        if point.suppressed:
            axis.text(
                positions[point.label],
                0.03,
                "S",
                transform=axis.get_xaxis_transform(),
                ha="center",
                fontsize="small",
            )


def _slope_text(points: Sequence[ChartPoint]) -> str:
    """'slope +1.2/yr [-0.3, +2.7]' from the unbiased values; '' with a hidden point."""
    if any(p.suppressed for p in points):
        return ""
    fit = [p.slope_point for p in points if p.slope_point is not None]
    slope = weighted_slope(fit)
    if slope is None:
        return ""
    return f"slope {slope.per_year:+,.1f}/yr [{slope.ci_low:+,.1f}, {slope.ci_high:+,.1f}]"
