"""Charts of a report: values per bucket with 95% error bars, pooled and per node.

One panel for the partnership (pooled) and one per node (small multiples with their
own y scales, since jurisdictions differ in size by orders of magnitude). Time-bucketed
queries draw one line per series over the buckets, with the fitted slope per year in
the panel title; other queries draw one point per group key.

matplotlib is imported inside `write_chart` only (Agg backend), so `npcs --help` and
every other command never pay for it. It comes with the `charts` install extra; without
it, `write_chart` raises ChartError naming the install command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.report import PARTNERSHIP_SOURCE, Report, TrendRow, ValueRow
from kernel.extras import MissingExtraError, require_extra

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CHART_SUFFIXES = (".png", ".svg")
MAX_SERIES_PER_PANEL = 10


class ChartError(ValueError):
    """A chart that cannot be drawn, with a message saying what to do."""


def write_chart(report: Report, path: Path, *, rates: bool = False) -> Path:
    """Draw the report to PNG or SVG (chosen by the file suffix) and return the path."""
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ChartError(f"chart file {path} must end in .png or .svg")
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
    import matplotlib.pyplot as plt

    sources = _sources(report)
    columns = min(3, len(sources))
    rows = math.ceil(len(sources) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    try:
        for index, source in enumerate(sources):
            axis = axes[index // columns][index % columns]
            _draw_panel(axis, report, source, name, rates)
        for index in range(len(sources), rows * columns):
            axes[index // columns][index % columns].set_visible(False)
        figure.suptitle(_title(report, name, rates))
        figure.tight_layout()
        figure.savefig(path, format=path.suffix.lower().lstrip("."))
    finally:
        plt.close(figure)
    return path


def chart_value_name(report: Report) -> str | None:
    """The value to draw: the mean for means, else the first value released."""
    names = list(dict.fromkeys(row.name for row in report.rows))
    if "mean" in names:
        return "mean"
    return names[0] if names else None


def _sources(report: Report) -> list[str]:
    nodes = list(dict.fromkeys(r.source for r in report.rows if r.source != PARTNERSHIP_SOURCE))
    pooled = any(r.source == PARTNERSHIP_SOURCE for r in report.rows)
    return ([PARTNERSHIP_SOURCE] if pooled and len(nodes) > 1 else []) + nodes


def _title(report: Report, name: str, rates: bool) -> str:
    measure = f"{report.statistic} of {report.dataset}"
    if report.column:
        measure += f".{report.column}"
    suffix = " per 100,000 children" if rates else ""
    return f"{measure} ({name}{suffix}), 95% intervals"


def _draw_panel(axis: Axes, report: Report, source: str, name: str, rates: bool) -> None:
    rows = [r for r in report.rows if r.source == source and r.name == name]
    time_index = report.time_group_index
    label = "Partnership (pooled)" if source == PARTNERSHIP_SOURCE else source
    if time_index is None:
        _draw_categories(axis, rows, rates)
        axis.set_title(label)
        return
    series: dict[tuple[str, ...], list[ValueRow]] = {}
    for row in rows:
        rest = row.key[:time_index] + row.key[time_index + 1 :]
        series.setdefault(rest, []).append(row)
    buckets = list(dict.fromkeys(row.key[time_index] for row in rows))
    positions = {bucket: i for i, bucket in enumerate(buckets)}
    for rest, points in list(series.items())[:MAX_SERIES_PER_PANEL]:
        xs = [positions[p.key[time_index]] for p in points]
        values, lows, highs = _values(points, rates)
        axis.errorbar(
            xs, values, yerr=[lows, highs], marker="o", capsize=3, label=" ".join(rest) or name
        )
    axis.set_xticks(range(len(buckets)), buckets, rotation=45, ha="right")
    if len(series) > 1:
        axis.legend(fontsize="small")
    axis.set_title(label + _slope_text(report.trends, source, name, rates))
    axis.grid(alpha=0.3)


def _draw_categories(axis: Axes, rows: Sequence[ValueRow], rates: bool) -> None:
    labels = [" ".join(row.key) or "all" for row in rows]
    values, lows, highs = _values(rows, rates)
    axis.errorbar(range(len(rows)), values, yerr=[lows, highs], fmt="o", capsize=4)
    axis.set_xticks(range(len(rows)), labels, rotation=45, ha="right")
    axis.grid(alpha=0.3)


def _values(rows: Sequence[ValueRow], rates: bool) -> tuple[list[float], list[float], list[float]]:
    """Values and the lengths of the error bars below and above them (NaN when unknown)."""
    values, lows, highs = [], [], []
    for row in rows:
        value: float | None
        if rates and row.rate_per_100k is not None:
            value, low, high = row.rate_per_100k, row.rate_ci_low, row.rate_ci_high
        else:
            value, low, high = row.value, row.ci_low, row.ci_high
        number = math.nan if value is None else value
        values.append(number)
        lows.append(0.0 if low is None or math.isnan(number) else max(number - low, 0.0))
        highs.append(0.0 if high is None or math.isnan(number) else max(high - number, 0.0))
    return values, lows, highs


def _slope_text(trends: Sequence[TrendRow], source: str, name: str, rates: bool) -> str:
    if rates:
        return ""  # slopes are fitted to the released values, not to rates
    matching = [t for t in trends if t.source == source and t.name == name and not t.key]
    if not matching:
        return ""
    trend = matching[0]
    return f"\nslope {trend.slope_per_year:+,.1f}/yr [{trend.ci_low:+,.1f}, {trend.ci_high:+,.1f}]"
