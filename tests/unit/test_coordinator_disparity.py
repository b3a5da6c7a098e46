"""Disparity: rate ratios to a reference group and disproportionality indices, with charts."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from support_reports import answered_report
from test_coordinator_denominators import group_table, published
from test_coordinator_pooling import gaussian

from coordinator.charts import ChartError
from coordinator.charts_forest import write_forest_chart
from coordinator.cli.measure_render import render_disparity
from coordinator.disparity import compute_disparity
from coordinator.fieller import NoisyValue, ratio_interval
from coordinator.report import PARTNERSHIP_SOURCE, Report
from coordinator.shares import ShareError
from privacy.population import PopulationTable
from privacy.query import (
    DateRangeFilter,
    GroupBy,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Cell

SCALE = 3.0
COUNTS = {
    "county-a": {"white": 200.0, "black": 90.0, "aian": 6.0, "unknown": 12.0},
    "county-b": {"white": 50.0, "black": 70.0, "aian": -3.0, "unknown": 4.0},
}
TABLES = {"county-a": group_table(1), "county-b": group_table(2)}


def race_report(
    counts: Mapping[str, Mapping[str, float]] = COUNTS,
    tables: Mapping[str, PopulationTable] = TABLES,
    *,
    by_year: bool = False,
    suppressed: frozenset[tuple[str, str]] = frozenset(),
) -> Report:
    group_by: tuple[GroupBy, ...] = (GroupByColumn(column="race_ethnicity"),)
    if by_year:
        group_by += (GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),)
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=group_by,
        filters=(
            DateRangeFilter(
                column="incident_date",
                start=date(2021, 1, 1),
                end=date(2022 if by_year else 2021, 12, 31),
            ),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="disparity test",
    )
    cells_by_node = {
        node: tuple(
            Cell(
                key=(race, *year),
                estimates=(
                    gaussian("count", value, SCALE).model_copy(
                        update={"suppressed": (node, race) in suppressed}
                    ),
                ),
            )
            for race, value in cells.items()
            for year in ([("2021",), ("2022",)] if by_year else [()])
        )
        for node, cells in counts.items()
    }
    return answered_report(
        spec,
        cells_by_node,
        populations={node: {"2021": 300000, "2022": 300000} for node in counts},
        group_populations=dict(tables),
    )


def population(node: str, race: str) -> int:
    return published(TABLES[node], "2021", "race_ethnicity", race)


def test_rate_ratio_uses_each_groups_own_population_and_white_by_default() -> None:
    result = compute_disparity(race_report())
    assert result.reference == "white"
    rows = {(row.source, row.group): row for row in result.rows}
    for node in COUNTS:
        black, white = COUNTS[node]["black"], COUNTS[node]["white"]
        expected = (black / population(node, "black")) / (white / population(node, "white"))
        assert rows[node, "black"].rate_ratio == pytest.approx(expected)
        assert rows[node, "white"].rate_ratio == 1.0
        assert rows[node, "white"].reference
    pooled_black = sum(population(node, "black") for node in COUNTS)
    pooled_white = sum(population(node, "white") for node in COUNTS)
    expected = (160 / pooled_black) / (250 / pooled_white)
    assert rows[PARTNERSHIP_SOURCE, "black"].rate_ratio == pytest.approx(expected)
    # The interval is Fieller's for the pooled counts (two nodes' noise, rounding step).
    variance = 2 * SCALE**2
    fieller = ratio_interval(
        NoisyValue(160.0, variance), NoisyValue(250.0, variance), 1 / pooled_black, 1 / pooled_white
    )
    assert rows[PARTNERSHIP_SOURCE, "black"].rate_ratio_low == pytest.approx(fieller.low)
    assert rows[PARTNERSHIP_SOURCE, "black"].rate_ratio_high == pytest.approx(fieller.high)


def test_disproportionality_index_is_event_share_over_population_share() -> None:
    result = compute_disparity(race_report())
    rows = {(row.source, row.group): row for row in result.rows}
    races = ("white", "black", "aian")  # "unknown" has no population: in neither share
    assert ("county-a", "unknown") not in rows
    node = "county-a"
    children = sum(population(node, race) for race in races)
    events = sum(COUNTS[node][race] for race in races)
    row = rows[node, "black"]
    assert row.population_share == pytest.approx(population(node, "black") / children)
    assert row.index == pytest.approx((90 / events) / (population(node, "black") / children))
    assert row.index_low is not None
    assert row.index_high is not None
    assert row.index_low < row.index < row.index_high  # type: ignore[operator]


def test_a_negative_noisy_count_is_shown_as_zero_with_an_open_interval() -> None:
    result = compute_disparity(race_report())
    row = next(r for r in result.rows if r.source == "county-b" and r.group == "aian")
    assert row.events == 0.0
    assert row.rate_ratio == 0.0
    assert row.rate_ratio_low == 0.0
    assert row.rate_ratio_high is not None
    assert row.rate_ratio_high > 0
    assert not re.search(r"(?<![\w])-\d", render_disparity(result, "table"))


def test_without_white_the_reference_is_the_largest_population() -> None:
    counts = {node: {"black": 20.0, "aian": 5.0} for node in COUNTS}
    result = compute_disparity(race_report(counts))
    largest = max(("black", "aian"), key=lambda race: sum(population(n, race) for n in COUNTS))
    assert result.reference == largest
    with pytest.raises(ShareError, match="choose --reference from"):
        compute_disparity(race_report(counts), reference="white")


def test_a_suppressed_group_hides_its_row_and_every_index_at_that_node() -> None:
    result = compute_disparity(race_report(suppressed=frozenset({("county-b", "aian")})))
    for row in result.rows:
        if row.source in ("county-b", PARTNERSHIP_SOURCE) and row.group == "aian":
            assert row.suppressed
            assert (row.events, row.rate_ratio, row.index, row.rate_per_100k) == (None,) * 4
        if row.source == "county-b":
            # The event total would reveal the hidden count: no index for any group there.
            assert row.index is None
            assert row.event_share is None
    csv_text = render_disparity(result, "csv")
    hidden_line = next(line for line in csv_text.splitlines() if line.startswith("county-b,,aian"))
    assert hidden_line.startswith("county-b,,aian,False,,")


def test_forest_chart_is_a_png_and_refuses_more_than_one_cell_per_group(tmp_path: Path) -> None:
    path = write_forest_chart(compute_disparity(race_report()), tmp_path / "forest.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ChartError, match="query the count by race_ethnicity alone"):
        write_forest_chart(compute_disparity(race_report(by_year=True)), tmp_path / "f.png")


def test_forest_chart_ratio_axis_reads_as_plain_numbers_without_minor_labels() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from coordinator.charts_forest import _label_ratios

    axis = Figure().add_subplot()
    axis.set_xscale("log")
    axis.set_xlim(0.2, 5.0)
    _label_ratios(axis, (0.2, 5.0))
    assert [label.get_text() for label in axis.get_xticklabels()] == ["0.25", "0.5", "1", "2", "4"]
    axis.figure.canvas.draw()
    assert all(label.get_text() == "" for label in axis.get_xticklabels(minor=True))
