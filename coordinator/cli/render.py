"""Showing a report: an aligned table for people, CSV and JSON for programs.

Table output names every node that did not answer and why, and shouts about any
receipt that did not verify. JSON is the Report model itself (stable, documented).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.intervals import interval_label
from coordinator.report import NodeStatus, Report, ValueRow
from privacy.text import printable

if TYPE_CHECKING:
    from coordinator.charts import YScale
    from coordinator.intervals import IntervalKind
    from coordinator.preview import PreviewReport
    from coordinator.small_area import SmallAreaRow

FORMATS = ("table", "csv", "json")

CSV_COLUMNS = (
    "source",
    "key",
    "name",
    "value",
    "ci_low",
    "ci_high",
    "std",
    "unbiased_estimate",
    "clamped",
    "suppressed",
    "suppression",
    "population",
    "rate_per_100k",
    "rate_ci_low",
    "rate_ci_high",
    "unbiased_rate_per_100k",
    "small_area_rate_per_100k",
    "small_area_ci_low",
    "small_area_ci_high",
    "interval",
    "dataset",
    "statistic",
    "filters",
    "purpose",
    "query_id",
)
CLAMPED_MARK = "*"
CLAMPED_NOTE = (
    f"{CLAMPED_MARK} the noisy value came out below 0 and is shown as 0; its unbiased "
    "estimate (for arithmetic) is in --format csv/json"
)


SUPPRESSED_NOTE = (
    "suppressed: a node's small-count publication rule hides this cell (complementary: a "
    "pooled row hidden because, minus the rows shown, it would give a hidden cell back)"
)

SMALL_AREA_NOTE = (
    "small-area: each node's rate shrunk toward the partnership rate (empirical Bayes, "
    "gamma-Poisson moments; public populations and noise scales only); smaller nodes are "
    "shrunk more. Left blank where a node in the cell is suppressed or has no rate."
)

POISSON_NOTE = (
    "dp+poisson: intervals cover the underlying expected count or rate (DP noise and "
    "Poisson variation, exact Garwood limits); --interval dp covers the actual count"
)


def render_report(report: Report, output_format: str, *, rates: bool = False) -> str:
    if output_format == "json":
        return report.model_dump_json(indent=2) + "\n"
    if output_format == "csv":
        return report_csv(report)
    return report_table(report, rates=rates)


def show_report(
    report: Report,
    output_format: str,
    *,
    rates: bool = False,
    plot: Path | None = None,
    y_scale: YScale = "auto",
    interval: IntervalKind = "dp",
    small_area: bool = False,
) -> None:
    """Print the report on stdout and, with `plot`, write its chart (CLI helper).

    `interval` and `small_area` post-process the report (coordinator/intervals.py,
    coordinator/small_area.py) before it is shown; the stored result is unchanged.
    """
    import click

    from coordinator.intervals import IntervalError, with_interval
    from coordinator.small_area import with_small_area

    try:
        report = with_interval(report, interval)
    except IntervalError as exc:
        raise click.UsageError(str(exc)) from exc
    if small_area:
        report, rates = with_small_area(report), True
    click.echo(render_report(report, output_format, rates=rates), nl=False)
    if plot is not None:
        from coordinator.charts import ChartError, write_chart  # only for --plot

        try:
            write_chart(report, plot, rates=rates, y_scale=y_scale)
        except ChartError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"chart written to {plot}", err=True)


def render_preview(preview: PreviewReport, output_format: str) -> str:
    if output_format == "json":
        return preview.model_dump_json(indent=2) + "\n"
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["source", "name", "distribution", "scale", "ci_half_width", "cost_rho"])
        costs = {status.node: status.cost_rho or "" for status in preview.nodes}
        for row in preview.expected:
            writer.writerow(
                [
                    row.source,
                    row.name,
                    row.distribution,
                    _raw(row.scale),
                    _raw(row.ci_half_width),
                    costs.get(row.source, ""),
                ]
            )
        return buffer.getvalue()
    return preview_table(preview)


def report_csv(report: Report) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    small_area = {(r.source, r.key, r.name): r for r in report.small_area}
    context = [
        report.dataset,
        report.statistic,
        report.filters,
        report.purpose,
        report.query_id,
    ]
    for row in report.rows:
        writer.writerow(
            [
                row.source,
                "|".join(row.key),
                row.name,
                _raw(row.value),
                _raw(row.ci_low),
                _raw(row.ci_high),
                _raw(row.std),
                _raw(row.unbiased_estimate),
                str(row.clamped).lower(),
                str(row.suppressed).lower(),
                row.suppression or "",
                "" if row.population is None else row.population,
                _raw(row.rate_per_100k),
                _raw(row.rate_ci_low),
                _raw(row.rate_ci_high),
                _raw(row.unbiased_rate_per_100k),
                *_small_area_cells(small_area.get((row.source, row.key, row.name))),
                report.interval,
                *context,
            ]
        )
    return buffer.getvalue()


def _small_area_cells(row: SmallAreaRow | None) -> list[str]:
    if row is None:
        return ["", "", ""]
    return [_raw(row.rate_per_100k), _raw(row.ci_low), _raw(row.ci_high)]


def _raw(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def report_table(report: Report, *, rates: bool = False, width: int = 120) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    # markup=False: labels, names and reasons come from nodes; show them as written.
    console = Console(file=buffer, width=width, color_system=None, highlight=False, markup=False)
    title = f"{report.statistic} of {report.dataset}" + (
        f".{report.column}" if report.column else ""
    )
    table = Table(
        title=f"{title}  (95% intervals of {interval_label(report.interval)}; "
        f"query {report.query_id})",
        caption=f"Filters: {report.filters}.  Purpose: {report.purpose}",
    )
    for column in report.group_columns:
        table.add_column(column)
    table.add_column("value")
    table.add_column("source")
    table.add_column("estimate", justify="right")
    table.add_column("95% interval", justify="right")
    if rates:
        table.add_column("per 100,000", justify="right")
        table.add_column("95% interval (rate)", justify="right")
    small_area = {(r.source, r.key, r.name): r for r in report.small_area}
    if small_area:
        table.add_column("small-area /100k", justify="right")
        table.add_column("95% interval (small-area)", justify="right")
    previous: tuple[str, ...] | None = None
    for row in report.rows:
        if previous is not None and row.key != previous:
            table.add_section()
        previous = row.key
        cells = _table_cells(row, rates)
        if small_area:
            cells += _small_area_table_cells(small_area.get((row.source, row.key, row.name)))
        table.add_row(*(printable(cell) for cell in cells))
    console.print(table)
    for note in _table_notes(report, rates):
        console.print(note)
    if report.trends:
        console.print(_trend_table(report))
    for line in status_lines(report.nodes, report.pooled_nodes, len(report.nodes)):
        console.print(printable(line))
    return buffer.getvalue()


def _table_notes(report: Report, rates: bool) -> list[str]:
    """The notes under the table: what marks mean and where rates are missing."""
    notes: list[str] = []
    if any(row.clamped for row in report.rows):
        notes.append(CLAMPED_NOTE)
    if any(row.suppressed for row in report.rows):
        notes.append(SUPPRESSED_NOTE)
    if report.small_area:
        notes.append(SMALL_AREA_NOTE)
    if report.interval == "dp+poisson":
        notes.append(POISSON_NOTE)
    if rates:
        notes += [f"No rate: {note}." for note in report.rate_notes]
    return notes


def _table_cells(row: ValueRow, rates: bool) -> list[str]:
    source = "PARTNERSHIP" if row.source == "partnership" else row.source
    if row.suppressed:
        hidden = "suppressed" + (" (complementary)" if row.suppression == "complementary" else "")
        return [*row.key, row.name, source, hidden, "", *(["", ""] if rates else [])]
    estimate = _number(row.value) + (CLAMPED_MARK if row.clamped else "")
    interval = f"[{_number(row.ci_low)}, {_number(row.ci_high)}]"
    if row.approximate:
        interval += " ~"
    cells = [*row.key, row.name, source, estimate, interval]
    if rates:
        if row.rate_per_100k is None:
            cells += ["", ""]
        else:
            cells += [
                _number(row.rate_per_100k, 2) + (CLAMPED_MARK if row.clamped else ""),
                f"[{_number(row.rate_ci_low, 2)}, {_number(row.rate_ci_high, 2)}]",
            ]
    return cells


def _small_area_table_cells(row: SmallAreaRow | None) -> list[str]:
    if row is None:
        return ["", ""]
    return [_number(row.rate_per_100k, 2), f"[{_number(row.ci_low, 2)}, {_number(row.ci_high, 2)}]"]


def _trend_table(report: Report) -> object:
    from rich.table import Table

    table = Table(title="Trend: slope per year (weighted least squares, 95% interval)")
    table.add_column("series")
    table.add_column("value")
    table.add_column("source")
    table.add_column("slope / year", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("buckets", justify="right")
    for trend in report.trends:
        table.add_row(
            printable(" ".join(trend.key) or "all"),
            printable(trend.name),
            "PARTNERSHIP" if trend.source == "partnership" else trend.source,
            _number(trend.slope_per_year, 2),
            f"[{_number(trend.ci_low, 2)}, {_number(trend.ci_high, 2)}]",
            str(trend.points),
        )
    return table


def status_lines(
    statuses: Sequence[NodeStatus], pooled_nodes: Sequence[str], total: int
) -> list[str]:
    """Failures and unverified receipts, loudly; a note when the pool is partial."""
    lines: list[str] = []
    for status in statuses:
        if not status.answered:
            lines.append(f"node {status.node} did not answer: {status.code}: {status.reason}")
        elif status.receipt == "unverified":
            lines.append(
                f"WARNING: the ledger receipt from node {status.node} DID NOT VERIFY "
                f"({status.receipt_problem}); its answer is stored as unverified"
            )
        elif status.replayed:
            lines.append(f"node {status.node} answered from its ledger (a retry: no new charge)")
    if pooled_nodes and len(pooled_nodes) < total:
        lines.append(
            f"partnership rows pool only {len(pooled_nodes)} of {total} nodes: "
            f"{', '.join(pooled_nodes)}"
        )
    return lines


def preview_table(preview: PreviewReport, width: int = 120) -> str:
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    # markup=False: labels, names and reasons come from nodes; show them as written.
    console = Console(file=buffer, width=width, color_system=None, highlight=False, markup=False)
    table = Table(title=f"Dry run: {preview.statistic} of {preview.dataset} (nothing charged)")
    for name in ("source", "cost (rho)", "remaining (rho)", "value", "noise", "expected ±95%"):
        table.add_column(name, justify="left" if name in ("source", "value") else "right")
    costs = {s.node: s for s in preview.nodes}
    for row in preview.expected:
        status = costs.get(row.source)
        remaining = preview.remaining_units.get(row.source)
        table.add_row(
            "PARTNERSHIP" if row.source == "partnership" else row.source,
            status.cost_rho or "" if status else "",
            "" if remaining is None else _rho(remaining),
            printable(row.name),
            f"{row.distribution} {_number(row.scale, 3)}",
            _number(row.ci_half_width, 2),
        )
    console.print(table)
    for line in status_lines(preview.nodes, (), 0):
        console.print(printable(line))
    return buffer.getvalue()


def _rho(units: int) -> str:
    from privacy.budget import format_rho

    return format_rho(units)


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:,.{digits}f}"
