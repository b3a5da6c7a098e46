"""Quantile value intervals: a released count (charged, same query) turns rank errors into
value bounds read off the released set of quantiles (real plans, real OpenDP)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from support_data import write_snapshot

from coordinator.cli.query_args import QueryArgumentError, build_query
from coordinator.quantile_intervals import quantile_value_bounds
from coordinator.report import NodeStatus, build_report
from npcs.serde_query import query_from_proto, query_to_proto
from privacy.budget import rho_to_units_ceil
from privacy.plan import plan_query
from privacy.query import PrivacyLoss, QuerySpec, Statistic
from privacy.release import Release
from privacy.schema import PARTNERSHIP_SCHEMA
from privacy.validate import QueryLimits, QueryValidationError, validate_query

INCIDENTS = PARTNERSHIP_SCHEMA.dataset("incidents")
COLUMN = INCIDENTS.column("child_age_months")
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(Decimal(1_000_000)))
PROBABILITIES = (0.1, 0.25, 0.5, 0.75, 0.9)


def quantile_spec(*, quantile_count: bool, rho: str = "0.5") -> QuerySpec:
    return QuerySpec(
        query_id=uuid.uuid4(),
        dataset="incidents",
        statistic=Statistic.QUANTILES,
        column=COLUMN.name,
        quantiles=PROBABILITIES,
        privacy=PrivacyLoss(rho=Decimal(rho)),
        purpose="value intervals",
        quantile_count=quantile_count,
    )


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rows = [{COLUMN.name: (i * 7) % 216} for i in range(1500)]
    return write_snapshot(tmp_path_factory.mktemp("q") / "incidents.parquet", INCIDENTS, rows)


def test_bounds_come_from_neighbours_whose_rank_error_clears_the_probability() -> None:
    released = [(0.25, 50.0, 30.0), (0.5, 100.0, 20.0), (0.75, 160.0, 30.0)]
    # n >= 1000: d <= 0.03, every neighbour clears: the median lies in [50, 160]
    assert quantile_value_bounds(released, 1000.0, (0.0, 215.0)) == [
        (0.0, 100.0),
        (50.0, 160.0),
        (100.0, 215.0),
    ]
    # n = 100: d = 0.3 for the quartiles, too wide to bound the median
    assert quantile_value_bounds(released, 100.0, (0.0, 215.0))[1] == (0.0, 215.0)
    # no usable count: the column's range, as before
    assert quantile_value_bounds(released, 0.0, (0.0, 215.0)) == [(0.0, 215.0)] * 3


def test_quantile_count_keeps_old_queries_bytes_and_crosses_the_wire() -> None:
    plain, counted = quantile_spec(quantile_count=False), quantile_spec(quantile_count=True)
    assert "quantile_count" not in json.loads(plain.canonical_bytes())
    assert json.loads(counted.canonical_bytes())["quantile_count"] is True
    assert QuerySpec.from_canonical_bytes(counted.canonical_bytes()) == counted
    assert query_from_proto(query_to_proto(counted)) == counted
    assert query_from_proto(query_to_proto(plain)) == plain


def test_a_quantile_count_is_refused_for_other_statistics() -> None:
    spec = quantile_spec(quantile_count=True).model_copy(
        update={"statistic": Statistic.MEAN, "quantiles": ()}
    )
    with pytest.raises(QueryValidationError, match="only to the quantiles statistic"):
        validate_query(spec, PARTNERSHIP_SCHEMA, LIMITS)
    with pytest.raises(QueryArgumentError, match="quantiles only"):
        build_query(
            statistic="mean",
            dataset="incidents",
            column=COLUMN.name,
            rho="0.1",
            value_intervals=True,
            purpose="p",
        )


def test_the_count_is_one_more_output_charged_within_the_same_rho(snapshot: Path) -> None:
    plain = plan_query(
        validate_query(quantile_spec(quantile_count=False), PARTNERSHIP_SCHEMA, LIMITS),
        PARTNERSHIP_SCHEMA,
        snapshot,
    )
    counted = plan_query(
        validate_query(quantile_spec(quantile_count=True), PARTNERSHIP_SCHEMA, LIMITS),
        PARTNERSHIP_SCHEMA,
        snapshot,
    )
    assert plain.cost_units == counted.cost_units == rho_to_units_ceil(Decimal("0.5"))
    assert [e.name for e in counted.expected][-1] == "count"
    assert "count" not in [e.name for e in plain.expected]
    # the same rho now pays for one more output: each quantile's noise is larger
    assert counted.expected[0].scale > plain.expected[0].scale


def _release(spec: QuerySpec, snapshot: Path, node: str) -> Release:
    fresh = spec.model_copy(update={"query_id": uuid.uuid4()})  # one plan, one release
    validated = validate_query(fresh, PARTNERSHIP_SCHEMA, LIMITS)
    return plan_query(validated, PARTNERSHIP_SCHEMA, snapshot).release(node=node, snapshot_id="s")


def test_report_rows_get_value_intervals_inside_the_column_range(snapshot: Path) -> None:
    spec = quantile_spec(quantile_count=True)
    releases = {node: _release(spec, snapshot, node) for node in ("a", "b")}
    report = build_report(
        spec=spec,
        result_id="r",
        created_at="2026-01-01T00:00:00+00:00",
        partnership="p",
        statuses=[NodeStatus(node=n, answered=True) for n in releases],
        releases=releases,
    )
    medians = [row for row in report.rows if row.name == "q0.5"]
    assert len(medians) == 2  # per node; quantiles are not pooled
    for row in medians:
        assert row.value is not None
        assert row.ci_low is not None
        assert row.ci_high is not None
        assert 0 < row.ci_low <= row.value <= row.ci_high < 215
    pooled_counts = [row for row in report.rows if row.name == "count"]
    assert {row.source for row in pooled_counts} == {"a", "b", "partnership"}
