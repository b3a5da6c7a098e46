"""Showing shares and disparity measures: tables for people, CSV and JSON for programs.

Tables show percentages and ratios with their 95% intervals; a hidden (suppressed) cell
shows "suppressed", an undefined ratio "n/a", and an interval that the noise leaves
open ends in "inf". CSV rows carry the result's filters and purpose, like query exports.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from coordinator.report import PARTNERSHIP_SOURCE

if TYPE_CHECKING:
    from rich.table import Table

    from coordinator.disparity import DisparityResult
    from coordinator.shares import SharesResult


def source_label(source: str) -> str:
    return "PARTNERSHIP" if source == PARTNERSHIP_SOURCE else source


def percent(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "n/a"
    if low is None or high is None:
        return f"{100 * value:.1f}%"
    return f"{100 * value:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def ratio_text(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "n/a"
    upper = "inf" if high is None else f"{high:.2f}"
    return f"{value:.2f} [{0.0 if low is None else low:.2f}, {upper}]"


def count_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def shares_table(result: SharesResult, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(
        title=title
        or f"Share of {result.dataset} by {result.of_column} (95% Fieller intervals; "
        f"result {result.result_id[:8]})",
        caption=f"Filters: {result.filters}.  Purpose: {result.purpose}",
    )
    for column in result.key_columns:
        table.add_column(column)
    table.add_column(result.of_column)
    table.add_column("source")
    table.add_column("events", justify="right")
    table.add_column("of all", justify="right")
    table.add_column("share", justify="right")
    for row in sorted(result.rows, key=lambda r: (r.key, r.part)):
        share = "suppressed" if row.suppressed else percent(row.share, row.ci_low, row.ci_high)
        table.add_row(
            *row.key,
            row.part,
            source_label(row.source),
            count_text(row.events),
            count_text(row.total),
            share,
        )
    return table


def disparity_table(result: DisparityResult, title: str | None = None) -> Table:
    from rich.table import Table

    table = Table(
        title=title
        or f"Disparity by {result.column} in {result.dataset}: rate ratio to "
        f"{result.reference} and disproportionality index (95% intervals)",
        caption=f"Filters: {result.filters}.  Purpose: {result.purpose}.  "
        "Index: the group's share of events / its share of the child population.",
    )
    for column in result.key_columns:
        table.add_column(column)
    table.add_column(result.column)
    table.add_column("source")
    table.add_column("events", justify="right")
    table.add_column("per 100,000", justify="right")
    table.add_column("rate ratio", justify="right")
    table.add_column("index", justify="right")
    for row in sorted(result.rows, key=lambda r: (r.key, r.group)):
        if row.suppressed:
            cells = ["suppressed"] * 4
        else:
            cells = [
                count_text(row.events),
                "-" if row.rate_per_100k is None else f"{row.rate_per_100k:.1f}",
                "1 (reference)"
                if row.reference
                else ratio_text(row.rate_ratio, row.rate_ratio_low, row.rate_ratio_high),
                ratio_text(row.index, row.index_low, row.index_high),
            ]
        table.add_row(*row.key, row.group, source_label(row.source), *cells)
    return table


def table_text(table: Table, width: int = 120) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, highlight=False, markup=False)
    console.print(table)
    return buffer.getvalue()


def rows_csv(
    header: Sequence[str], rows: Sequence[Sequence[object]], context: Sequence[str]
) -> str:
    """CSV with the result's context (filters, purpose, result id) on every row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*header, "filters", "purpose", "result_id"])
    for row in rows:
        writer.writerow([("" if cell is None else cell) for cell in row] + list(context))
    return buffer.getvalue()


def render_shares(result: SharesResult, output_format: str) -> str:
    if output_format == "json":
        return result.model_dump_json(indent=2) + "\n"
    if output_format == "csv":
        return rows_csv(
            ["source", "key", "part", "events", "total", "share", "ci_low", "ci_high"],
            [
                [r.source, "|".join(r.key), r.part, r.events, r.total, r.share, r.ci_low, r.ci_high]
                for r in result.rows
            ],
            [result.filters, result.purpose, result.result_id],
        )
    return table_text(shares_table(result))


def render_disparity(result: DisparityResult, output_format: str) -> str:
    if output_format == "json":
        return result.model_dump_json(indent=2) + "\n"
    if output_format == "csv":
        header = ["source", "key", "group", "reference", "events", "population"]
        header += ["rate_per_100k", "rate_ratio", "rate_ratio_low", "rate_ratio_high"]
        header += ["event_share", "population_share", "index", "index_low", "index_high"]
        rows = [
            [
                *(r.source, "|".join(r.key), r.group, r.reference, r.events, r.population),
                *(r.rate_per_100k, r.rate_ratio, r.rate_ratio_low, r.rate_ratio_high),
                *(r.event_share, r.population_share, r.index, r.index_low, r.index_high),
            ]
            for r in result.rows
        ]
        return rows_csv(header, rows, [result.filters, result.purpose, result.result_id])
    return table_text(disparity_table(result))
