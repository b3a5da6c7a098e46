"""Pooling, trends, rates and the report built from node releases (pure, no network)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import date
from decimal import Decimal

import pytest

from coordinator.cli.render import render_report
from coordinator.discrete import exact_half_width
from coordinator.pooling import pool_cell, pool_sum, z_value
from coordinator.report import PARTNERSHIP_SOURCE, NodeStatus, Report, build_report
from coordinator.trend import Point, bucket_position, bucket_year, weighted_slope
from privacy.query import (
    DateRangeFilter,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.release import Cell, Estimate, NoiseDistribution, Release

Z = z_value()


def gaussian(name: str, value: float, scale: float) -> Estimate:
    return Estimate(
        name=name,
        value=value,
        distribution=NoiseDistribution.GAUSSIAN,
        scale=scale,
        ci_low=value - Z * scale,
        ci_high=value + Z * scale,
    )


def release(node: str, cells: dict[tuple[str, ...], list[Estimate]]) -> Release:
    return Release(
        query_id="q",
        node=node,
        dataset="incidents",
        statistic="count",
        group_columns=("incident_date",),
        cells=tuple(Cell(key=k, estimates=tuple(v)) for k, v in cells.items()),
        cost_units=10_000,
        snapshot_id="s",
        opendp_version="0.16.0",
    )


def yearly_spec() -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2020, 1, 1), end=date(2022, 12, 31)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="test",
    )


def test_z_value_is_the_two_sided_95_percent_normal_quantile() -> None:
    assert z_value() == pytest.approx(1.959964, abs=1e-6)


def test_pooled_count_is_the_sum_and_its_interval_comes_from_summed_variances() -> None:
    pooled = pool_sum([gaussian("count", 10, 3.0), gaussian("count", 20, 4.0)])
    assert pooled is not None
    assert pooled.value == 30
    assert pooled.std == pytest.approx(5.0)
    assert pooled.ci_high - pooled.value == pytest.approx(Z * 5.0)
    # narrower than adding half-widths (which would be Z * 7)
    assert pooled.ci_high - pooled.value < Z * 7.0


def node_mean(value: float, low: float = 1.0, high: float = 9.0) -> Estimate:
    return Estimate(
        name="mean",
        value=value,
        distribution=NoiseDistribution.NONE,
        scale=0,
        ci_low=low,
        ci_high=high,
    )


def test_quantiles_are_not_pooled_but_means_are_pooled_from_node_means_and_counts() -> None:
    rank = Estimate(
        name="q0.5", value=5, distribution=NoiseDistribution.RANK, scale=1, ci_low=3, ci_high=7
    )
    node_a = [gaussian("sum", 100, 2), gaussian("count", 50, 1), node_mean(2), rank]
    node_b = [gaussian("sum", 300, 2), gaussian("count", 50, 1), node_mean(6), rank]
    pooled = {p.name: p for p in pool_cell([node_a, node_b])}
    assert set(pooled) == {"sum", "count", "mean"}
    # with positive counts and unclipped means this is pooled sum / pooled count
    assert pooled["mean"].value == pytest.approx(400 / 100)
    assert pooled["mean"].ci_low < 4.0 < pooled["mean"].ci_high


def test_a_pooled_mean_never_leaves_the_columns_public_bounds() -> None:
    """Noisy sums and counts can divide to 8 on a 1-5 scale; the node clips its mean."""
    node_a = [gaussian("sum", 40, 3), gaussian("count", 5, 2), node_mean(5, 1, 5)]
    pooled = {p.name: p for p in pool_cell([node_a], mean_bounds=(1.0, 5.0))}
    assert pooled["mean"].value == 5.0
    assert 1.0 <= pooled["mean"].ci_low <= pooled["mean"].ci_high <= 5.0


def test_a_tiny_nodes_negative_noisy_count_cannot_drag_the_pooled_mean_outside_the_nodes() -> None:
    """The issue's case: noisy count -16 and a large noisy sum at a tiny node.

    Pooled sum / pooled count would be (3000 + 3010 + 900) / (1000 + 1000 - 16) = 3.48,
    above both real nodes' means (3.0 and 3.01). Weighting node means by their noisy
    counts clamped at 0 keeps the pooled mean between them.
    """
    big = [gaussian("sum", 3000, 9), gaussian("count", 1000, 4), node_mean(3.0, 1, 5)]
    other = [gaussian("sum", 3010, 9), gaussian("count", 1000, 4), node_mean(3.01, 1, 5)]
    tiny = [gaussian("sum", 900, 9), gaussian("count", -16, 4), node_mean(5.0, 1, 5)]
    naive = (3000 + 3010 + 900) / (1000 + 1000 - 16)
    assert naive > 3.4
    pooled = {p.name: p for p in pool_cell([big, other, tiny], mean_bounds=(1.0, 5.0))}
    mean = pooled["mean"]
    assert 3.0 <= mean.value <= 3.01
    assert mean.ci_low <= mean.value <= mean.ci_high


def test_pooled_mean_is_undefined_when_no_node_has_a_positive_noisy_count() -> None:
    node = [gaussian("sum", 3, 9), gaussian("count", -2, 4), node_mean(3.0, 1, 5)]
    pooled = {p.name: p for p in pool_cell([node, node])}
    assert math.isnan(pooled["mean"].value)


def test_pooled_counts_use_the_exact_discrete_interval_which_is_an_integer_half_width() -> None:
    """Three nodes at scale 2: a continuous interval is +/-6.79 and holds only |S| <= 6
    (94.0%); the exact distribution of the summed integer noise needs +/-7."""
    estimates = [gaussian("count", v, 2.0) for v in (4, 0, 11)]
    continuous = pool_sum(estimates)
    discrete = pool_sum(estimates, discrete=True)
    assert continuous is not None
    assert discrete is not None
    assert continuous.ci_high - continuous.value == pytest.approx(Z * math.sqrt(12))
    assert (discrete.ci_low, discrete.ci_high) == (15 - 7, 15 + 7)


def test_non_integer_values_are_never_treated_as_discrete_noise() -> None:
    estimates = [gaussian("sum", 4.5, 2.0), gaussian("sum", 1.0, 2.0)]
    pooled = pool_sum(estimates, discrete=True)
    assert pooled is not None
    assert pooled.ci_high - pooled.value == pytest.approx(Z * math.sqrt(8))


def test_bucket_labels_become_positions_and_years() -> None:
    assert bucket_position("2021") == 2021.5
    assert bucket_position("FY2022") == 2022.0
    assert bucket_position("2021-Q3") == pytest.approx(2021.625)
    assert bucket_position("2021-07") == pytest.approx(2021 + 6.5 / 12)
    assert bucket_position("female") is None
    assert bucket_year("FY2022") == 2022
    assert bucket_year("2021-Q4") == 2021


def test_weighted_slope_recovers_an_exact_line() -> None:
    points = [Point(x=2020 + i, y=100 + 7 * i, variance=1 + i) for i in range(5)]
    slope = weighted_slope(points)
    assert slope is not None
    assert slope.per_year == pytest.approx(7.0)
    assert slope.ci_low < 7 < slope.ci_high


def test_weighted_slope_needs_two_distinct_buckets() -> None:
    assert weighted_slope([Point(x=2020, y=1, variance=1)]) is None


def three_node_report() -> Report:
    spec = yearly_spec()
    releases = {
        name: release(
            name,
            {
                (str(y),): [gaussian("count", base + 10 * (y - 2020), scale)]
                for y in (2020, 2021, 2022)
            },
        )
        for name, base, scale in (("a", 100, 3.0), ("b", 50, 4.0), ("c", 10, 12.0))
    }
    statuses = [
        NodeStatus(node=n, answered=True, cost_units=10_000, receipt="verified") for n in releases
    ]
    populations = {n: {str(y): 100_000 for y in (2020, 2021, 2022)} for n in releases}
    return build_report(
        spec=spec,
        result_id="r1",
        created_at="2024-01-01T00:00:00+00:00",
        partnership="demo",
        statuses=statuses,
        releases=releases,
        populations=populations,
    )


def test_report_has_per_node_and_pooled_rows_for_every_cell() -> None:
    report = three_node_report()
    for year in ("2020", "2021", "2022"):
        rows = {r.source: r for r in report.rows if r.key == (year,)}
        assert set(rows) == {"a", "b", "c", PARTNERSHIP_SOURCE}
        pooled = rows[PARTNERSHIP_SOURCE]
        assert pooled.value == sum(rows[n].value or 0 for n in "abc")
        assert pooled.std == pytest.approx(math.sqrt(3**2 + 4**2 + 12**2))
        assert pooled.population == 300_000
        assert pooled.rate_per_100k == pytest.approx((pooled.value or 0) / 3)


def test_report_trend_is_per_node_and_pooled() -> None:
    report = three_node_report()
    slopes = {t.source: t for t in report.trends}
    assert set(slopes) == {"a", "b", "c", PARTNERSHIP_SOURCE}
    assert slopes["a"].slope_per_year == pytest.approx(10.0)
    assert slopes[PARTNERSHIP_SOURCE].slope_per_year == pytest.approx(30.0)


def test_report_json_round_trips() -> None:
    report = three_node_report()
    text = render_report(report, "json")
    assert Report.model_validate_json(text) == report
    assert json.loads(text)["format"] == "npcs.result.v1"


def test_partial_pool_is_named_and_failed_nodes_are_reported_with_reasons() -> None:
    full = three_node_report()
    statuses = [
        *full.nodes,
        NodeStatus(node="d", answered=False, code="UNREACHABLE", reason="cannot reach"),
    ]
    report = full.model_copy(update={"nodes": tuple(statuses)})
    table = render_report(report, "table", rates=True)
    assert "node d did not answer: UNREACHABLE: cannot reach" in table
    assert "pool only 3 of 4 nodes" in table
    assert "per 100,000" in table


def test_unverified_receipt_is_shouted_in_the_table() -> None:
    full = three_node_report()
    bad = full.nodes[0].model_copy(update={"receipt": "unverified", "receipt_problem": "bad sig"})
    report = full.model_copy(update={"nodes": (bad, *full.nodes[1:])})
    assert report.unverified_nodes == ("a",)
    assert "DID NOT VERIFY (bad sig)" in render_report(report, "table")


def test_csv_has_one_line_per_row() -> None:
    report = three_node_report()
    lines = render_report(report, "csv").splitlines()
    assert lines[0].startswith("source,key,name,value")
    assert len(lines) == 1 + len(report.rows)


def test_report_pools_counts_with_the_discrete_interval() -> None:
    report = three_node_report()
    pooled = next(r for r in report.rows if r.source == PARTNERSHIP_SOURCE)
    assert pooled.ci_low is not None
    assert pooled.ci_high is not None
    assert pooled.value is not None
    half_width = pooled.ci_high - pooled.value
    assert half_width == exact_half_width([3.0, 4.0, 12.0])
    assert half_width == pooled.value - pooled.ci_low


def test_a_nodes_words_are_shown_as_written_never_as_markup_or_terminal_codes() -> None:
    full = three_node_report()
    hostile = NodeStatus(
        node="d", answered=False, code="INTERNAL", reason="[/x] [bold]x\x1b[2J\u202eevil"
    )
    report = full.model_copy(update={"nodes": (*full.nodes, hostile)})
    table = render_report(report, "table")
    assert "[/x] [bold]x<U+001B>[2J<U+202E>evil" in table
    assert "\x1b" not in table
    assert "\u202e" not in table
