"""Exports carry what their numbers are of; quantiles come out in order."""

from __future__ import annotations

import csv
import io
import json
import uuid

from test_coordinator_pooling import release, three_node_report, yearly_spec

from coordinator.cli.render import render_report
from coordinator.report import NodeStatus, Report, build_report
from privacy.query import InSetFilter, Statistic
from privacy.release import Estimate, NoiseDistribution


def test_csv_rows_carry_the_filters_and_the_purpose() -> None:
    report = three_node_report()
    for line in csv.DictReader(io.StringIO(render_report(report, "csv"))):
        assert line["filters"] == "incident_date=2020-01-01..2022-12-31"
        assert line["purpose"] == "test"
        assert line["query_id"] == report.query_id


def test_json_and_table_carry_the_filters_and_the_purpose() -> None:
    report = three_node_report()
    document = json.loads(render_report(report, "json"))
    assert document["filters"] == "incident_date=2020-01-01..2022-12-31"
    assert document["purpose"] == "test"
    table = render_report(report, "table")
    assert "Filters: incident_date=2020-01-01..2022-12-31" in table
    assert "Purpose: test" in table


def test_a_stored_result_without_the_filters_field_gets_them_from_its_query() -> None:
    stored = json.loads(three_node_report().model_dump_json())
    del stored["filters"]
    assert Report.model_validate(stored).filters == "incident_date=2020-01-01..2022-12-31"


def test_filters_are_written_in_where_syntax() -> None:
    spec = yearly_spec().model_copy(
        update={
            "filters": (
                InSetFilter(column="incident_type", values=("fatality",)),
                InSetFilter(column="sleep_related", values=(True,)),
            )
        }
    )
    built = build_report(
        spec=spec,
        result_id="r",
        created_at="2024-01-01T00:00:00+00:00",
        partnership="demo",
        statuses=[],
        releases={},
    )
    assert built.filters == "incident_type=fatality; sleep_related=true"


def _rank(name: str, value: float) -> Estimate:
    return Estimate(
        name=name,
        value=value,
        distribution=NoiseDistribution.RANK,
        scale=1.0,
        ci_low=0.0,
        ci_high=215.0,
        rank_error=3.0,
    )


def _quantile_report() -> Report:
    spec = yearly_spec().model_copy(
        update={
            "query_id": uuid.UUID(int=1),
            "statistic": Statistic.QUANTILES,
            "column": "child_age_months",
            "quantiles": (0.1, 0.5, 0.9),
        }
    )
    estimates = [_rank("q0.1", 4.0), _rank("q0.5", 90.0), _rank("q0.9", 60.0)]
    releases = {"a": release("a", {("2020",): estimates})}
    return build_report(
        spec=spec,
        result_id="r",
        created_at="2024-01-01T00:00:00+00:00",
        partnership="demo",
        statuses=[NodeStatus(node="a", answered=True, receipt="verified")],
        releases=releases,
    )


def test_a_nodes_quantiles_are_shown_in_order_with_the_released_values_kept() -> None:
    """The issue's case: a median released above the 90th percentile."""
    rows = {row.name: row for row in _quantile_report().rows}
    assert [rows[n].value for n in ("q0.1", "q0.5", "q0.9")] == [4.0, 60.0, 90.0]
    assert [rows[n].unbiased_estimate for n in ("q0.1", "q0.5", "q0.9")] == [4.0, 90.0, 60.0]
