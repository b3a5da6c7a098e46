"""A forest chart of disparity measures: each node and the partnership, per group.

Two panels, the rate ratio to the reference group and the disproportionality index, on
a log axis (ratios are symmetric there: 0.5 and 2 are equally far from 1) with a line at
1, no disparity. One block of rows per group: each node's estimate and interval, then the
partnership's as a larger diamond. An interval that runs off the axis (the noisy
reference count too close to zero) ends in an arrow, as does one reaching 0; a hidden
(suppressed) or undefined estimate gets an "S" or "n/a" mark instead of a point.
matplotlib is the charts extra, imported only here, when a chart is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.charts import CHART_SUFFIXES, ChartError
from coordinator.disparity import DisparityResult, DisparityRow
from coordinator.report import PARTNERSHIP_SOURCE
from kernel.extras import MissingExtraError, require_extra

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PANELS = (
    ("rate_ratio", "rate ratio to {reference} (log scale)"),
    ("index", "disproportionality index (log scale)"),
)


def write_forest_chart(result: DisparityResult, path: Path) -> Path:
    """Draw the disparity result to PNG or SVG (by the file suffix) and return the path."""
    if path.suffix.lower() not in CHART_SUFFIXES:
        raise ChartError(f"chart file {path} must end in .png or .svg")
    keys = list(dict.fromkeys(row.key for row in result.rows))
    if len(keys) != 1:
        raise ChartError(
            f"a forest chart shows one cell per group, but this result is also grouped by "
            f"{', '.join(result.key_columns)}: query the count by {result.column} alone "
            "(filter the years with --from/--to)"
        )
    try:
        require_extra("charts", needed_by="drawing a forest chart")
    except MissingExtraError as exc:
        raise ChartError(str(exc)) from None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(row.group for row in result.rows))
    sources = list(dict.fromkeys(row.source for row in result.rows))
    height = 1.2 + 0.22 * len(groups) * (len(sources) + 1)
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        figure, axes = plt.subplots(1, 2, figsize=(12, height), sharey=True)
        try:
            for axis, (field, label) in zip(axes, PANELS, strict=True):
                _draw_panel(axis, result, field, groups, sources)
                axis.set_xlabel(label.format(reference=result.reference))
            figure.suptitle(
                f"Disparity by {result.column} in {result.dataset} (95% intervals; "
                f"reference {result.reference})"
            )
            figure.text(0.01, 0.01, _caption(result), fontsize="small", wrap=True)
            figure.tight_layout(rect=(0, 0.05, 1, 1))
            figure.savefig(path, format=path.suffix.lower().lstrip("."))
        finally:
            plt.close(figure)
    return path


def _caption(result: DisparityResult) -> str:
    return (
        f"Filters: {result.filters}.  Purpose: {result.purpose}.  Result {result.result_id[:8]}.  "
        "Diamond: partnership (pooled counts).  Arrow: interval runs off the axis (an "
        "estimate of 0 has no point).  "
        "S: suppressed (publication rule)."
    )


def _bounds(row: DisparityRow, field: str) -> tuple[float | None, float | None, float | None]:
    if field == "rate_ratio":
        return row.rate_ratio, row.rate_ratio_low, row.rate_ratio_high
    return row.index, row.index_low, row.index_high


def _limits(rows: Sequence[DisparityRow], field: str) -> tuple[float, float]:
    """An x range around 1 holding every positive estimate (intervals may run off it)."""
    values = [v for row in rows for v in _bounds(row, field)[:1] if v is not None and v > 0]
    low = min([0.5, *values])
    high = max([2.0, *values])
    return max(low / 1.5, 0.01), min(high * 1.5, 100.0)


def _draw_panel(
    axis: Axes,
    result: DisparityResult,
    field: str,
    groups: Sequence[str],
    sources: Sequence[str],
) -> None:
    axis.set_xscale("log")
    low_limit, high_limit = _limits(result.rows, field)
    axis.set_xlim(low_limit, high_limit)
    _label_ratios(axis, (low_limit, high_limit))
    axis.axvline(1.0, color="black", linewidth=0.8)
    ticks: list[float] = []
    labels: list[str] = []
    position = 0.0
    by_key = {(row.group, row.source): row for row in result.rows}
    for group in groups:
        for source in sources:
            row = by_key.get((group, source))
            position -= 1
            ticks.append(position)
            name = "PARTNERSHIP" if source == PARTNERSHIP_SOURCE else source
            labels.append(f"{group}: {name}")
            _draw_row(axis, row, field, position, (low_limit, high_limit))
        position -= 0.6
    axis.set_yticks(ticks, labels, fontsize="small")
    axis.grid(axis="x", which="major", linewidth=0.3)


_RATIO_TICKS = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0, 50.0, 100.0)


def _label_ratios(axis: Axes, limits: tuple[float, float]) -> None:
    """Ratio ticks written as plain numbers (0.5, 1, 2), without log-scale minor labels."""
    from matplotlib.ticker import NullFormatter

    low, high = limits
    ticks = [tick for tick in _RATIO_TICKS if low <= tick <= high]
    axis.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    axis.xaxis.set_minor_formatter(NullFormatter())


def _draw_row(
    axis: Axes, row: DisparityRow | None, field: str, position: float, limits: tuple[float, float]
) -> None:
    """One estimate and its interval; a bound past the axis ends in an arrow.

    An estimate of 0 (the group's noisy count came out at or below 0) sits at the left
    edge as "<"; a suppressed one shows "S", a missing one (no population) "n/a".
    """
    if row is None or row.suppressed or _bounds(row, field)[0] is None:
        mark = "S" if row is not None and row.suppressed else "n/a"
        axis.text(1.0, position, f" {mark}", va="center", fontsize="small")
        return
    estimate, low, high = _bounds(row, field)
    pooled = row.source == PARTNERSHIP_SOURCE
    colour = "black" if pooled else "tab:blue"
    left = max(low or 0.0, limits[0])
    right = limits[1] if high is None else min(high, limits[1])
    axis.plot([left, right], [position, position], color=colour, linewidth=2 if pooled else 1)
    if left <= limits[0]:
        axis.plot([limits[0]], [position], marker="<", color=colour)
    if right >= limits[1]:
        axis.plot([limits[1]], [position], marker=">", color=colour)
    if estimate is not None and estimate > limits[0]:
        axis.plot(
            [estimate],
            [position],
            marker="D" if pooled else "o",
            markersize=8 if pooled else 5,
            color=colour,
        )
