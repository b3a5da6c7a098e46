"""--interval dp+poisson: exact Garwood limits combined with the discrete DP noise interval."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner
from support_reports import answered_report
from test_coordinator_pooling import gaussian

from coordinator.charts import chart_caption
from coordinator.cli import cli
from coordinator.cli.render import render_report
from coordinator.discrete import discrete_sum_half_width
from coordinator.gamma import gamma_quantile, garwood_limits, regularized_lower_gamma
from coordinator.intervals import IntervalError, poisson_mean_interval, with_interval
from coordinator.report import PARTNERSHIP_SOURCE, Report
from privacy.query import DateRangeFilter, PrivacyLoss, QuerySpec, Statistic
from privacy.release import Cell


def count_report(
    counts: Sequence[float],
    populations: Sequence[int],
    scale: float = 2.0,
    statistic: Statistic = Statistic.COUNT,
) -> Report:
    """One ungrouped 2021 count per node, each node with its own public population."""
    nodes = [f"node-{index}" for index in range(len(counts))]
    query = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=statistic,
        column=None if statistic is Statistic.COUNT else "child_age_months",
        filters=(
            DateRangeFilter(column="incident_date", start=date(2021, 1, 1), end=date(2021, 12, 31)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.01")),
        purpose="interval test",
    )
    name = "count" if statistic is Statistic.COUNT else "mean"
    return answered_report(
        query,
        {
            node: (Cell(key=(), estimates=(gaussian(name, count, scale),)),)
            for node, count in zip(nodes, counts, strict=True)
        },
        populations={n: {"2021": p} for n, p in zip(nodes, populations, strict=True)},
    )


@pytest.mark.parametrize(
    ("count", "low", "high"),
    [(0, 0.0, 3.6889), (1, 0.0253, 5.5716), (5, 1.6235, 11.6683), (20, 12.2165, 30.8884)],
)
def test_garwood_limits_match_the_published_table(count: int, low: float, high: float) -> None:
    got_low, got_high = garwood_limits(count)
    assert got_low == pytest.approx(low, abs=1e-4)
    assert got_high == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize("shape", [0.2, 1.0, 7.5, 300.0, 20_000.0])
def test_gamma_quantile_inverts_the_distribution_function(shape: float) -> None:
    for probability in (0.0125, 0.5, 0.9875):
        x = gamma_quantile(shape, probability)
        assert regularized_lower_gamma(shape, x) == pytest.approx(probability, abs=1e-9)


def test_poisson_interval_holds_both_the_noise_and_garwood_limits() -> None:
    low, high = poisson_mean_interval(5.0, [2.0])
    half_width = discrete_sum_half_width([2.0], 0.975)
    assert (low, high) == pytest.approx(
        (garwood_limits(5 - half_width, 0.975)[0], garwood_limits(5 + half_width, 0.975)[1])
    )
    no_poisson = discrete_sum_half_width([2.0], 0.95)
    assert low < 5 - no_poisson
    assert high > 5 + no_poisson
    # a negative noisy count still gets a positive upper limit and a zero lower one
    low, high = poisson_mean_interval(-3.0, [2.0, 2.0, 2.0])
    assert low == 0.0
    assert high > 3.0


def test_dp_plus_poisson_widens_node_and_pooled_counts_and_their_rates() -> None:
    dp = count_report([3.0, 40.0, 1.0], [5_000, 400_000, 2_000])
    both = with_interval(dp, "dp+poisson")
    assert both.interval == "dp+poisson"
    assert dp.interval == "dp"
    for before, after in zip(dp.rows, both.rows, strict=True):
        assert after.value == before.value
        assert after.ci_low is not None
        assert after.ci_high is not None
        assert before.ci_low is not None
        assert before.ci_high is not None
        assert after.ci_low <= before.ci_low
        assert after.ci_high > before.ci_high
        assert after.population is not None
        assert after.rate_ci_high is not None
        assert after.rate_ci_high == pytest.approx(after.ci_high * 100_000 / after.population)
    pooled = next(row for row in both.rows if row.source == PARTNERSHIP_SOURCE)
    assert (pooled.ci_low, pooled.ci_high) == pytest.approx(
        poisson_mean_interval(44.0, [2.0, 2.0, 2.0])
    )
    assert json.loads(render_report(both, "json"))["interval"] == "dp+poisson"
    assert "DP noise + Poisson variation" in render_report(both, "table", rates=True)
    assert "95% intervals of DP noise + Poisson variation" in chart_caption(both)
    assert "95% intervals of DP noise." in chart_caption(dp)
    kinds = {line["interval"] for line in csv.DictReader(io.StringIO(render_report(both, "csv")))}
    assert kinds == {"dp+poisson"}


def test_dp_plus_poisson_is_refused_for_a_mean() -> None:
    mean = count_report([3.0, 4.0], [1_000, 1_000], statistic=Statistic.MEAN)
    with pytest.raises(IntervalError, match="no Poisson model"):
        with_interval(mean, "dp+poisson")


def test_the_cli_refuses_dp_plus_poisson_for_a_mean_before_asking_any_node() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "query", "mean", "incidents", "child_age_months", "--rho", "0.01",
            "--purpose", "p", "--interval", "dp+poisson", "--config", "/nonexistent.toml",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "nothing was asked of any node" in result.output
