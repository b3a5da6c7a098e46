"""How the demo shows the answers to its questions (`coordinator.demo.questions`).

Each table is built only from released numbers (post-processing: no privacy cost).
Shares such as "sleep-related among fatalities", recurrence and turnover are the share
statistics of `npcs results share` (coordinator/shares.py, Fieller intervals), and the
racial-disparity table is `npcs results disparity` (coordinator/disparity.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from coordinator.cli.measure_render import disparity_table, percent
from coordinator.demo.questions import FIRST_YEAR, LAST_YEAR
from coordinator.disparity import compute_disparity
from coordinator.report import PARTNERSHIP_SOURCE, Report, ValueRow
from coordinator.shares import ShareRow, compute_shares
from coordinator.trend import Point, bucket_position, weighted_slope

YEARS = tuple(str(year) for year in range(FIRST_YEAR, LAST_YEAR + 1))
TRUE = "true"
LIKERT = (1.0, 5.0)
"""Bounds of the survey items: pooled means are clipped to them (post-processing)."""
MAX_NODE_SHARE_WIDTH = 0.2
"""A node's share is shown without its interval only when that interval is this narrow."""


# --- numbers ---------------------------------------------------------------------------


def row_for(report: Report, source: str, key: Sequence[str], name: str = "count") -> ValueRow:
    wanted = tuple(key)
    for row in report.rows:
        if row.source == source and row.key == wanted and row.name == name:
            return row
    raise LookupError(f"no {name} for {source} {wanted} in the {report.dataset} result")


def shares_by(
    report: Report, of_column: str, part: str | None = None
) -> dict[tuple[str, tuple[str, ...], str], ShareRow]:
    """The result's shares (coordinator/shares.py) by (source, other key, part)."""
    return {
        (row.source, row.key, row.part): row for row in compute_shares(report, of_column, part).rows
    }


def sources(report: Report) -> list[str]:
    return [*report.pooled_nodes, PARTNERSHIP_SOURCE]


def label(source: str) -> str:
    return "PARTNERSHIP" if source == PARTNERSHIP_SOURCE else source


# --- formatting ------------------------------------------------------------------------


def count_text(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def count_with_margin(row: ValueRow) -> str:
    if row.value is None:
        return "-"
    if row.ci_low is None or row.ci_high is None:
        return count_text(row.value)
    return f"{row.value:,.0f} ±{(row.ci_high - row.ci_low) / 2:,.0f}"


def interval_text(low: float | None, high: float | None, digits: int = 0) -> str:
    if low is None or high is None:
        return "-"
    return f"[{low:,.{digits}f}, {high:,.{digits}f}]"


def percent_text(row: ShareRow | None, *, with_interval: bool = True) -> str:
    """A share as a percentage with its 95% interval; "-" when hidden or undefined."""
    if row is None or row.share is None:
        return "-"
    if not with_interval:
        return percent(row.share, None, None)
    return percent(row.share, row.ci_low, row.ci_high)


# --- tables ----------------------------------------------------------------------------


def incidents_by_year_tables(report: Report) -> list[Table | str]:
    """Per year: each node's count (± 95% margin), the pooled count, rate and trend."""
    out: list[Table | str] = []
    for incident_type, title in (
        ("fatality", "Child maltreatment fatalities"),
        ("near_fatality", "Near fatalities"),
    ):
        table = Table(title=f"{title} per year, {FIRST_YEAR}-{LAST_YEAR} (95% intervals)")
        table.add_column("year")
        for node in report.pooled_nodes:
            table.add_column(node, justify="right")
        table.add_column("PARTNERSHIP", justify="right")
        table.add_column("per 100,000 children", justify="right")
        rate_points: list[Point] = []
        for year in YEARS:
            cells = [
                count_with_margin(row_for(report, node, (incident_type, year)))
                for node in report.pooled_nodes
            ]
            pooled = row_for(report, PARTNERSHIP_SOURCE, (incident_type, year))
            point = rate_point(pooled, year)
            if point is not None:
                rate_points.append(point)
            table.add_row(
                year,
                *cells,
                f"{count_text(pooled.value)} {interval_text(pooled.ci_low, pooled.ci_high)}",
                rate_text(pooled),
            )
        out.append(table)
        out.append(_trend_line(report, incident_type, rate_points))
    return out


def rate_text(row: ValueRow) -> str:
    if row.rate_per_100k is None:
        return "-"
    return f"{row.rate_per_100k:.2f} {interval_text(row.rate_ci_low, row.rate_ci_high, 2)}"


def rate_point(row: ValueRow, bucket: str) -> Point | None:
    """The rate per 100,000 as a trend point, its noise variance scaled like the rate."""
    position = bucket_position(bucket)
    rate = row.unbiased_rate_per_100k
    if rate is None or not row.std or not row.population or position is None:
        return None
    rate_std = row.std * 100_000 / row.population
    return Point(position, rate, rate_std**2)


def _trend_line(report: Report, incident_type: str, rate_points: Sequence[Point]) -> str:
    counts = next(
        (
            t
            for t in report.trends
            if t.source == PARTNERSHIP_SOURCE and t.key == (incident_type,) and t.name == "count"
        ),
        None,
    )
    parts = []
    if counts is not None:
        interval = interval_text(counts.ci_low, counts.ci_high, 1)
        parts.append(f"{counts.slope_per_year:+,.1f} per year {interval}")
    rate = weighted_slope(rate_points)
    if rate is not None:
        parts.append(
            f"rate {rate.per_year:+.3f} per 100,000 per year "
            f"{interval_text(rate.ci_low, rate.ci_high, 3)}"
        )
    if not parts:
        return ""
    return "  Partnership trend (weighted least squares, 95%): " + "; ".join(parts) + "\n"


def cause_table(report: Report) -> Table:
    """Pooled fatalities by primary cause, with each cause's share of all fatalities."""
    table = Table(
        title=f"Primary cause of fatalities, {FIRST_YEAR}-{LAST_YEAR}, partnership (95% intervals)"
    )
    table.add_column("primary cause")
    table.add_column("fatalities", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("share of fatalities", justify="right")
    causes = [
        row for row in report.rows if row.source == PARTNERSHIP_SOURCE and row.name == "count"
    ]
    shares = shares_by(report, "primary_cause")
    for row in sorted(causes, key=lambda r: -(r.value or 0.0)):
        table.add_row(
            row.key[0],
            count_text(row.value),
            interval_text(row.ci_low, row.ci_high),
            percent_text(shares.get((PARTNERSHIP_SOURCE, (), row.key[0]))),
        )
    return table


def sleep_table(report: Report) -> Table:
    table = Table(title="Share of incidents that were sleep-related (95% intervals)")
    table.add_column("source")
    table.add_column("fatalities", justify="right")
    table.add_column("near fatalities", justify="right")
    shares = shares_by(report, "sleep_related", TRUE)
    for source in sources(report):
        cells = [
            percent_text(shares.get((source, (incident_type,), TRUE)))
            for incident_type in ("fatality", "near_fatality")
        ]
        table.add_row(label(source), *cells)
    return table


def improvement_table(report: Report) -> Table:
    """Fatality reviews that found each improvement opportunity: one multi-item query."""
    table = _per_source_table(
        report,
        title=f"Fatality reviews finding each improvement opportunity, {FIRST_YEAR}-{LAST_YEAR} "
        "(one query, one charge; 95% intervals)",
        first_column="improvement opportunity",
        caption="a review can find several opportunities, so the rows do not add up",
    )
    items = dict.fromkeys(row.key[-1] for row in report.rows)
    for item in items:
        cells = [count_with_margin(row_for(report, source, (item,))) for source in sources(report)]
        table.add_row(item.removeprefix("io_"), *cells)
    return table


def _per_source_table(report: Report, *, title: str, first_column: str, caption: str) -> Table:
    """A table with one row label column, then a column per node and the partnership."""
    table = Table(title=title, caption=caption)
    table.add_column(first_column)
    for source in sources(report):
        table.add_column(label(source), justify="right")
    return table


def recurrence_table(report: Report) -> Table:
    """Share of victims (substantiated or indicated) with a recurrence within 12 months."""
    table = _per_source_table(
        report,
        title="CPS recurrence of maltreatment within 12 months, share of victims (95% intervals)",
        first_column="year",
        caption="-: too few victims for a share this privacy budget can resolve",
    )
    shares = shares_by(report, "recurrence_12m", TRUE)
    for year in YEARS:
        cells = []
        for source in sources(report):
            value = shares.get((source, (year,), TRUE))
            if source == PARTNERSHIP_SOURCE:
                cells.append(percent_text(value))
            elif _narrow(value):
                cells.append(percent_text(value, with_interval=False))
            else:
                cells.append("-")
        table.add_row(year, *cells)
    return table


def _narrow(value: ShareRow | None) -> bool:
    """A node's share is shown (without its interval) only when the interval is narrow."""
    if value is None or value.ci_low is None or value.ci_high is None:
        return False
    return value.ci_high - value.ci_low <= MAX_NODE_SHARE_WIDTH


def separations_table(report: Report) -> Table:
    """Caseworker separations per year; turnover = separations / caseworkers in the year."""
    table = Table(title="Caseworker separations per year (one row per worker-year, 95% intervals)")
    table.add_column("year")
    for node in report.pooled_nodes:
        table.add_column(node, justify="right")
    table.add_column("PARTNERSHIP", justify="right")
    table.add_column("annual turnover", justify="right")
    shares = shares_by(report, "separated", TRUE)
    for year in YEARS:
        cells = [
            count_with_margin(row_for(report, node, (year, TRUE))) for node in report.pooled_nodes
        ]
        separated = row_for(report, PARTNERSHIP_SOURCE, (year, TRUE))
        # One row per caseworker-year: turnover = separated / (separated + stayed).
        turnover = shares.get((PARTNERSHIP_SOURCE, (year,), TRUE))
        table.add_row(
            year,
            *cells,
            f"{count_text(separated.value)} {interval_text(separated.ci_low, separated.ci_high)}",
            percent_text(turnover),
        )
    return table


def psych_safety_table(report: Report) -> Table:
    """Mean psychological safety (1-5) per survey wave; quarters without a wave are skipped."""
    table = _per_source_table(
        report,
        title="Safety culture: mean psychological safety (1-5) per survey wave (95%)",
        first_column="wave",
        caption="-: too few respondents for a mean this privacy budget can resolve",
    )
    for wave in _wave_keys(report):
        table.add_row(wave[0], *(_mean_cell(report, source, wave) for source in sources(report)))
    return table


def _mean_cell(report: Report, source: str, wave: tuple[str, ...]) -> str:
    """The mean clipped to the scale, with its 95% interval (a node's as ± its half-width).

    "-" where the noisy respondent count is not clearly positive or the interval spans
    the whole scale: the mean is then a placeholder, not an estimate.
    """
    try:
        row = row_for(report, source, wave, "mean")
        count = row_for(report, source, wave, "count")
    except LookupError:
        return "-"
    if row.value is None or count.value is None or count.value <= 2 * (count.std or 0.0):
        return "-"
    if row.ci_low is None or row.ci_high is None:
        return "-"
    low, high = _on_scale(row.ci_low), _on_scale(row.ci_high)
    if high - low >= LIKERT[1] - LIKERT[0]:
        return "-"
    value = _on_scale(row.value)
    if source == PARTNERSHIP_SOURCE:
        return f"{value:.2f} {interval_text(low, high, 2)}"
    return f"{value:.2f} ±{(high - low) / 2:.2f}"


def _on_scale(value: float) -> float:
    return min(max(value, LIKERT[0]), LIKERT[1])


def _wave_keys(report: Report) -> list[tuple[str, ...]]:
    """Quarters in which a survey ran: pooled respondent count clearly above noise and at
    least a third of the largest wave (released numbers only)."""
    counts = [
        row
        for row in report.rows
        if row.source == PARTNERSHIP_SOURCE and row.name == "count" and row.value is not None
    ]
    largest = max((row.value or 0.0 for row in counts), default=0.0)
    return [
        row.key for row in counts if (row.value or 0.0) > max(2 * (row.std or 0.0), largest / 3)
    ]


def racial_disparity_table(report: Report) -> Table:
    """Victims by race/ethnicity: rate ratio to white children and disproportionality index."""
    return disparity_table(
        compute_disparity(report),
        title=f"Racial disparity among victims, {FIRST_YEAR}-{LAST_YEAR}: rate ratio to white "
        "children and disproportionality index (95% intervals)",
    )
