"""--small-area: empirical Bayes rates shrink small nodes more, and to the pooled rate."""

from __future__ import annotations

import csv
import io
import math

import pytest
from click.testing import CliRunner
from test_coordinator_intervals import count_report

from coordinator.cli import cli
from coordinator.cli.render import render_report
from coordinator.small_area import NodeCount, between_node_variance, shrink, with_small_area
from coordinator.suppression import apply_suppression

POPULATIONS = (2_000, 20_000, 200_000, 800_000)


def test_small_nodes_are_shrunk_more_than_large_ones() -> None:
    # rates that differ a lot: between-node variance is clearly positive
    counts = (6.0, 20.0, 90.0, 200.0)
    nodes = [NodeCount(c, n, 4.0) for c, n in zip(counts, POPULATIONS, strict=True)]
    shrunk = shrink(nodes)
    assert shrunk is not None
    weights = [s.weight_on_own_rate for s in shrunk]
    assert weights == sorted(weights)
    assert weights[0] < weights[-1]
    assert 0 < weights[0] < 0.9
    assert weights[-1] > 0.9
    pooled = sum(counts) / sum(POPULATIONS)
    for node, estimate in zip(nodes, shrunk, strict=True):
        own = node.count / node.population
        # between its own rate and the partnership's, closer to the latter when B < 1/2
        assert min(own, pooled) <= estimate.rate <= max(own, pooled)
        assert estimate.low < estimate.rate < estimate.high
    smallest, largest = shrunk[0], shrunk[-1]
    assert abs(smallest.rate - pooled) < abs(nodes[0].count / POPULATIONS[0] - pooled)
    assert largest.rate == pytest.approx(200.0 / 800_000, rel=0.05)


def test_without_between_node_variation_every_node_gets_the_pooled_rate() -> None:
    # counts exactly proportional to population: the spread is below what noise explains
    counts = [n * 1e-4 for n in POPULATIONS]
    nodes = [NodeCount(c, n, 4.0) for c, n in zip(counts, POPULATIONS, strict=True)]
    pooled = sum(counts) / sum(POPULATIONS)
    assert between_node_variance(nodes, pooled) == 0.0
    shrunk = shrink(nodes)
    assert shrunk is not None
    for estimate in shrunk:
        assert estimate.weight_on_own_rate == 0.0
        assert estimate.rate == pytest.approx(pooled, rel=1e-12)
        assert estimate.low < pooled < estimate.high


def test_noise_variance_counts_as_within_node_variation() -> None:
    counts = (1.0, 30.0, 95.0, 400.0)
    quiet = [NodeCount(c, n, 1.0) for c, n in zip(counts, POPULATIONS, strict=True)]
    noisy = [NodeCount(c, n, 400.0) for c, n in zip(counts, POPULATIONS, strict=True)]
    pooled = sum(counts) / sum(POPULATIONS)
    assert between_node_variance(noisy, pooled) < between_node_variance(quiet, pooled)
    quiet_shrunk, noisy_shrunk = shrink(quiet), shrink(noisy)
    assert quiet_shrunk is not None
    assert noisy_shrunk is not None
    assert noisy_shrunk[0].weight_on_own_rate < quiet_shrunk[0].weight_on_own_rate


def test_undefined_for_too_few_nodes_or_a_non_positive_partnership_count() -> None:
    four = [NodeCount(5.0, n, 4.0) for n in POPULATIONS]
    assert shrink(four) is not None
    assert shrink(four[:3]) is None  # Morris's correction needs k - 3 > 0
    negative = [NodeCount(-3.0, n, 4.0) for n in POPULATIONS[:3]] + [NodeCount(2.0, 9, 4.0)]
    assert shrink(negative) is None


def test_report_gets_a_small_area_column_per_node_in_every_format() -> None:
    report = with_small_area(count_report([6.0, 20.0, 90.0, 200.0], list(POPULATIONS)))
    assert {row.source for row in report.small_area} == {f"node-{i}" for i in range(4)}
    for row in report.small_area:
        assert row.ci_low < row.rate_per_100k < row.ci_high
        assert row.partnership_rate_per_100k == pytest.approx(316 / sum(POPULATIONS) * 1e5)
    table = render_report(report, "table", rates=True)
    assert "small-area /100k" in table
    assert "shrunk toward the partnership rate" in table
    lines = list(csv.DictReader(io.StringIO(render_report(report, "csv"))))
    by_source = {line["source"]: line["small_area_rate_per_100k"] for line in lines}
    assert by_source["partnership"] == ""
    assert math.isfinite(float(by_source["node-0"]))


def test_a_cell_with_a_suppressed_node_gets_no_small_area_values() -> None:
    report = count_report([6.0, 20.0, 90.0, 200.0], list(POPULATIONS))
    flagged = [
        row.model_copy(update={"suppressed": True}) if row.source == "node-0" else row
        for row in report.rows
    ]
    hidden = report.model_copy(update={"rows": tuple(apply_suppression(flagged, "partnership"))})
    assert with_small_area(hidden).small_area == ()
    assert with_small_area(report).small_area != ()


@pytest.mark.parametrize(
    "asked",
    [
        ["mean", "incidents", "child_age_months"],
        ["share", "incidents", "--of", "sleep_related"],
    ],
)
def test_the_cli_refuses_small_area_where_there_is_no_count_rate(asked: list[str]) -> None:
    result = CliRunner().invoke(
        cli,
        ["query", *asked, "--rho", "0.1", "--purpose", "p", "--small-area",
         "--config", "/nonexistent.toml"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--small-area shrinks rates of counts" in result.output
    assert "nothing was asked of any node" in result.output
