"""Shares and ratios of released counts: Fieller intervals, per node and pooled."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from support_reports import answered_report
from test_coordinator_pooling import gaussian

from coordinator.cli import cli
from coordinator.cli.measure_render import render_shares
from coordinator.fieller import NoisyValue, fieller_interval, ratio_interval, share_interval
from coordinator.pooling import z_value
from coordinator.report import PARTNERSHIP_SOURCE, Report
from coordinator.results import ResultsStore
from coordinator.shares import ShareError, compute_shares
from privacy.query import DateRangeFilter, GroupByColumn, PrivacyLoss, QuerySpec, Statistic
from privacy.release import Cell, Estimate

Z2 = z_value() ** 2
NODES = ("north", "south")


def sleep_report(
    values: Mapping[str, Mapping[tuple[str, ...], float]],
    *,
    suppressed: frozenset[tuple[str, tuple[str, ...]]] = frozenset(),
    scale: float = 3.0,
) -> Report:
    """Counts of incidents by incident_type and sleep_related at each node."""
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.COUNT,
        group_by=(
            GroupByColumn(column="incident_type"),
            GroupByColumn(column="sleep_related"),
        ),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2022, 1, 1), end=date(2022, 12, 31)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.5")),
        purpose="sleep-related share",
    )
    return answered_report(
        spec,
        {
            node: tuple(
                Cell(key=key, estimates=(_count(value, scale, (node, key) in suppressed),))
                for key, value in cells.items()
            )
            for node, cells in values.items()
        },
    )


def _count(value: float, scale: float, suppressed: bool) -> Estimate:
    estimate = gaussian("count", value, scale)
    return estimate.model_copy(update={"suppressed": suppressed}) if suppressed else estimate


FATAL_TRUE, FATAL_FALSE = ("fatality", "true"), ("fatality", "false")
VALUES: dict[str, Mapping[tuple[str, ...], float]] = {
    "north": {FATAL_TRUE: 12.0, FATAL_FALSE: 28.0},
    "south": {FATAL_TRUE: -2.0, FATAL_FALSE: 9.0},
}


def test_fieller_bounds_solve_the_pivot_equation() -> None:
    n, d, vn, vd = 7.0, 30.0, 9.0, 16.0
    interval = fieller_interval(n, d, vn, vd)
    assert interval.bounded
    for bound in (interval.low, interval.high):
        assert (n - bound * d) ** 2 == pytest.approx(Z2 * (vn + bound**2 * vd))
    assert interval.estimate == pytest.approx(n / d)


def test_small_counts_get_an_asymmetric_interval_wider_above_as_on_the_log_scale() -> None:
    interval = ratio_interval(NoisyValue(6.0, 4.0), NoisyValue(12.0, 4.0))
    assert interval.estimate == pytest.approx(0.5)
    assert interval.high - 0.5 > 0.5 - interval.low > 0


def test_a_denominator_lost_in_noise_gives_the_whole_range_not_a_number() -> None:
    share = share_interval(NoisyValue(2.0, 25.0), NoisyValue(5.0, 50.0))
    assert not share.bounded
    assert (share.low, share.high) == (0.0, 1.0)
    ratio = ratio_interval(NoisyValue(3.0, 4.0), NoisyValue(-1.0, 4.0))
    assert ratio.estimate is None
    assert ratio.high == math.inf


def test_share_per_node_and_pooled_uses_the_unbiased_counts() -> None:
    result = compute_shares(sleep_report(VALUES), "sleep_related")
    rows = {row.source: row for row in result.rows}
    assert set(rows) == {*NODES, PARTNERSHIP_SOURCE}
    assert rows["north"].share == pytest.approx(12 / 40)
    # south's noisy count is negative: shown as 0 events, its share clipped to 0.
    assert rows["south"].events == 0.0
    assert rows["south"].share == 0.0
    # The partnership share is of the pooled counts, which keep south's -2.
    assert rows[PARTNERSHIP_SOURCE].share == pytest.approx(10 / 47)
    assert rows[PARTNERSHIP_SOURCE].total == pytest.approx(47)
    for row in rows.values():
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert row.share is not None
        assert 0.0 <= row.ci_low <= row.share <= row.ci_high <= 1.0
    # Its interval is Fieller's for the pooled noise: two nodes' variances (scale 3),
    # plus one rounding step for integer noise (coordinator/fieller.py).
    pooled = rows[PARTNERSHIP_SOURCE]
    var_part, var_rest = 2 * 9 + 1 / 12, 2 * 9
    for bound in (pooled.ci_low, pooled.ci_high):
        assert bound is not None
        pivot = 10 - bound * 47
        variance = (1 - bound) ** 2 * var_part + bound**2 * var_rest
        assert pivot**2 == pytest.approx(Z2 * variance)


def test_a_category_without_a_value_gives_every_values_share() -> None:
    result = compute_shares(sleep_report(VALUES), "sleep_related", None)
    assert {row.part for row in result.rows} == {"true"}  # a flag: the share of "true"
    by_type = compute_shares(sleep_report(VALUES), "incident_type")
    assert {row.part for row in by_type.rows} == {"fatality"}
    assert all(row.share == pytest.approx(1.0) for row in by_type.rows if row.share)


def test_a_suppressed_cell_hides_its_share_at_the_node_and_the_partnership() -> None:
    report = sleep_report(VALUES, suppressed=frozenset({("south", FATAL_TRUE)}))
    result = compute_shares(report, "sleep_related")
    rows = {row.source: row for row in result.rows}
    assert not rows["north"].suppressed
    assert rows["north"].share is not None
    for source in ("south", PARTNERSHIP_SOURCE):
        hidden = rows[source]
        assert hidden.suppressed
        assert (hidden.events, hidden.total, hidden.share) == (None, None, None)
        assert (hidden.ci_low, hidden.ci_high) == (None, None)
    shown = render_shares(result, "table") + render_shares(result, "csv")
    assert "suppressed" in shown
    document = json.loads(render_shares(result, "json"))
    south = next(row for row in document["rows"] if row["source"] == "south")
    assert south["share"] is None
    assert south["total"] is None


def test_a_share_of_a_column_not_grouped_by_says_how_to_ask() -> None:
    with pytest.raises(ShareError, match=r"--by incident_type,sleep_related,manner"):
        compute_shares(sleep_report(VALUES), "manner")
    with pytest.raises(ShareError, match="has no value 'maybe'"):
        compute_shares(sleep_report(VALUES), "sleep_related", "maybe")


def test_npcs_results_share_reads_a_stored_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPCS_DATA_DIR", str(tmp_path))
    report = sleep_report(VALUES)
    ResultsStore.open_default().save(report, [])
    runner = CliRunner()
    shown = runner.invoke(cli, ["results", "share", report.result_id[:8], "--of", "sleep_related"])
    assert shown.exit_code == 0, shown.output
    assert "30.0% [" in shown.output  # north: 12 of 40
    assert "PARTNERSHIP" in shown.output
    as_json = runner.invoke(
        cli,
        ["results", "share", report.result_id, "--of", "sleep_related=true", "--format", "json"],
    )
    assert json.loads(as_json.output)["format"] == "npcs.shares.v1"
    refused = runner.invoke(cli, ["results", "share", report.result_id, "--of", "manner"])
    assert refused.exit_code == 1
    assert "--by incident_type,sleep_related,manner" in refused.output
