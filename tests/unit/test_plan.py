"""Planning and release over real Parquet files with real OpenDP measurements.

Exactness checks use a huge rho (noise scale far below 0.5, so released counts round to
the truth); noise itself is checked statistically in tests/statistical/test_noise.py.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from privacy.budget import rho_to_units_ceil
from privacy.plan import QueryPlan, exact_plan, plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    InSetFilter,
    NumericRangeFilter,
    PrivacyLoss,
    QuerySpec,
    TimeBucket,
)
from privacy.release import NoiseDistribution, Release
from privacy.timebuckets import bucket_code, bucket_label, buckets_between
from privacy.validate import QueryLimits, validate_query

INCIDENTS = SCHEMA.dataset("incidents")
HUGE_RHO = Decimal(1_000_000)
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(HUGE_RHO))

ROWS: list[dict[str, Any]] = [
    {
        "county": "adams",
        "incident_type": "fatality",
        "incident_date": date(2020, 9, 30),
        "child_age_months": 3,
        "ssit_workload": 2,
        "manner": "homicide",
        "sleep_related": True,
    },
    {
        "county": "adams",
        "incident_type": "fatality",
        "incident_date": date(2020, 10, 1),
        "child_age_months": 10,
        "ssit_workload": None,
        "manner": "accident",
        "sleep_related": True,
    },
    {
        "county": "adams",
        "incident_type": "near_fatality",
        "incident_date": date(2021, 3, 31),
        "child_age_months": 30,
        "ssit_workload": 3,
        "manner": "accident",
        "sleep_related": False,
    },
    {
        "county": "baker",
        "incident_type": "near_fatality",
        "incident_date": date(2021, 4, 1),
        "child_age_months": None,
        "ssit_workload": None,
        "manner": "homicide",
        "sleep_related": False,
    },
    {
        "county": "baker",
        "incident_type": "fatality",
        "incident_date": date(2021, 7, 15),
        "child_age_months": 200,
        "ssit_workload": 0,
        "manner": "natural",
        "sleep_related": False,
    },
    {
        "county": "baker",
        "incident_type": "fatality",
        "incident_date": date(2021, 12, 31),
        "child_age_months": 7,
        "ssit_workload": 1,
        "manner": "accident",
        "sleep_related": None,
    },
]


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    return write_snapshot(tmp_path / "incidents.parquet", INCIDENTS, ROWS)


def query(**overrides: Any) -> QuerySpec:
    body: dict[str, Any] = {
        "query_id": uuid.uuid4(),
        "dataset": "incidents",
        "statistic": "count",
        "privacy": PrivacyLoss(rho=HUGE_RHO),
        "purpose": "unit test",
    }
    body.update(overrides)
    return QuerySpec(**body)


def plan(spec: QuerySpec, path: Path) -> QueryPlan:
    return plan_query(validate_query(spec, SCHEMA, LIMITS), SCHEMA, path)


def release(spec: QuerySpec, path: Path) -> Release:
    return plan(spec, path).release(node="test-node", snapshot_id="snap-1")


def values(result: Release, name: str) -> dict[tuple[str, ...], float]:
    return {
        cell.key: next(e.value for e in cell.estimates if e.name == name) for cell in result.cells
    }


STATISTIC_QUERIES: dict[str, dict[str, Any]] = {
    "count": {"statistic": "count", "group_by": (GroupByColumn(column="county"),)},
    "sum": {"statistic": "sum", "column": "ssit_workload"},
    "mean": {
        "statistic": "mean",
        "column": "child_age_months",
        "group_by": (GroupByColumn(column="sleep_related"),),
    },
    "quantiles": {"statistic": "quantiles", "column": "child_age_months", "quantiles": (0.25, 0.5)},
    "histogram": {"statistic": "histogram", "column": "ssit_workload"},
}


@pytest.mark.parametrize("statistic", sorted(STATISTIC_QUERIES))
def test_cost_is_opendp_map_rounded_up_and_within_the_request(
    statistic: str, snapshot: Path
) -> None:
    spec = query(privacy=PrivacyLoss(rho=Decimal("0.25")), **STATISTIC_QUERIES[statistic])
    built = plan(spec, snapshot)
    exact = built._measurement.map(INCIDENTS.max_rows_per_unit)
    assert built.cost_units == math.ceil(exact * 1_000_000)
    assert 249_990 <= built.cost_units <= 250_000


def test_cost_scales_with_the_declared_contribution_bound(snapshot: Path) -> None:
    """d_in is max_rows_per_unit: at a fixed scale, rho grows with its square."""
    built = plan(query(privacy=PrivacyLoss(rho=Decimal("0.5"))), snapshot)
    scale = built.expected[0].scale
    assert scale == pytest.approx(INCIDENTS.max_rows_per_unit / math.sqrt(2 * 0.5), rel=1e-6)
    assert built._measurement.map(1) == pytest.approx(
        built._measurement.map(INCIDENTS.max_rows_per_unit) / INCIDENTS.max_rows_per_unit**2
    )


def test_grouped_count_is_exact_with_huge_budget(snapshot: Path) -> None:
    result = release(query(group_by=(GroupByColumn(column="county"),)), snapshot)
    assert values(result, "count") == {("adams",): 3.0, ("baker",): 2.0 + 1.0, ("clark",): 0.0}
    assert result.group_columns == ("county",)
    assert result.cost_units == plan(query(), snapshot).cost_units


def test_every_cell_is_present_when_the_filter_matches_nothing(snapshot: Path) -> None:
    spec = query(
        group_by=(
            GroupByColumn(column="incident_type"),
            GroupByTime(column="incident_date", bucket=TimeBucket.YEAR),
        ),
        filters=(
            InSetFilter(column="manner", values=("suicide",)),
            DateRangeFilter(column="incident_date", start=date(2019, 1, 1), end=date(2021, 6, 1)),
        ),
        privacy=PrivacyLoss(rho=Decimal("0.1")),
    )
    result = release(spec, snapshot)
    keys = [cell.key for cell in result.cells]
    assert keys == [
        (kind, year) for kind in ("fatality", "near_fatality") for year in ("2019", "2020", "2021")
    ]
    for cell in result.cells:
        (estimate,) = cell.estimates
        assert estimate.distribution is NoiseDistribution.GAUSSIAN
        assert estimate.ci_low < estimate.value < estimate.ci_high


def test_filters_select_rows_exactly(snapshot: Path) -> None:
    spec = query(
        filters=(
            InSetFilter(column="manner", values=("accident", "homicide")),
            NumericRangeFilter(column="child_age_months", low=5, high=30),
            DateRangeFilter(
                column="incident_date", start=date(2020, 10, 1), end=date(2021, 12, 31)
            ),
            InSetFilter(column="sleep_related", values=(True, False)),
        )
    )
    # rows 2 (age 10, accident, 2020-10-01) and 3 (age 30, accident); row 6 has a null flag
    assert values(release(spec, snapshot), "count") == {(): 2.0}


def test_null_values_are_not_given_the_midpoint_in_sums(snapshot: Path) -> None:
    """ssit_workload is 2, null, 3, null, 0, 1: the sum of known values is 6 (the
    midpoint fill of OpenDP would add 1.5 per null)."""
    result = release(query(statistic="sum", column="ssit_workload"), snapshot)
    assert values(result, "sum") == {(): 6.0}


def test_mean_uses_known_values_and_their_count(snapshot: Path) -> None:
    spec = query(
        statistic="mean",
        column="child_age_months",
        group_by=(GroupByColumn(column="incident_type"),),
    )
    result = release(spec, snapshot)
    fatal = {e.name: e for e in result.cells[0].estimates}
    # The sum's noise scale stays ~0.43 even at HUGE_RHO (its sensitivity is the age
    # bound), so it need not round to the truth: allow 5 sigma plus the rounding to an
    # integer (a false failure has probability < 1e-6).
    sum_band = 5 * fatal["sum"].scale + 0.5
    assert abs(fatal["sum"].value - (3 + 10 + 200 + 7)) <= sum_band
    assert fatal["count"].value == 4
    assert fatal["mean"].value == pytest.approx(fatal["sum"].value / fatal["count"].value)
    assert abs(fatal["mean"].value - 220 / 4) <= sum_band / 4
    assert fatal["mean"].distribution is NoiseDistribution.NONE
    assert fatal["mean"].ci_low <= fatal["mean"].value <= fatal["mean"].ci_high


def test_mean_of_an_empty_group_is_finite_with_the_bounds_as_interval(snapshot: Path) -> None:
    spec = query(
        statistic="mean",
        column="child_age_months",
        group_by=(GroupByColumn(column="county"),),
        privacy=PrivacyLoss(rho=Decimal("0.5")),
    )
    result = release(spec, snapshot)
    clark = {e.name: e for e in result.cells[2].estimates}
    assert result.cells[2].key == ("clark",)
    assert math.isfinite(clark["mean"].value)
    assert 0 <= clark["mean"].value <= 215
    assert (clark["mean"].ci_low, clark["mean"].ci_high) == (0.0, 215.0)
    Release.from_bytes(result.to_bytes())  # JSON round trip: no NaN or inf anywhere


def test_histogram_releases_every_bin_per_group(snapshot: Path) -> None:
    spec = query(
        statistic="histogram", column="ssit_workload", group_by=(GroupByColumn(column="county"),)
    )
    result = release(spec, snapshot)
    names = ["bin[0,1)", "bin[1,2)", "bin[2,3)", "bin[3,4]"]
    by_county = {c.key: {e.name: e.value for e in c.estimates} for c in result.cells}
    assert by_county[("adams",)] == dict(zip(names, [0.0, 0.0, 1.0, 1.0], strict=True))
    assert by_county[("baker",)] == dict(zip(names, [1.0, 1.0, 0.0, 0.0], strict=True))
    assert by_county[("clark",)] == dict.fromkeys(names, 0.0)


def test_histogram_with_custom_edges_drops_values_outside(snapshot: Path) -> None:
    spec = query(statistic="histogram", column="child_age_months", bins=(0, 12, 24))
    result = release(spec, snapshot)
    assert values(result, "bin[0,12)") == {(): 3.0}
    assert values(result, "bin[12,24]") == {(): 0.0}


def test_quantiles_with_huge_budget_are_the_true_quantiles(tmp_path: Path) -> None:
    rows = [{"child_age_months": age} for age in range(100)] + [{"child_age_months": None}] * 50
    path = write_snapshot(tmp_path / "ages.parquet", INCIDENTS, rows)
    spec = query(statistic="quantiles", column="child_age_months", quantiles=(0.25, 0.5, 0.9))
    result = release(spec, path)
    (cell,) = result.cells
    released = {e.name: e.value for e in cell.estimates}
    assert released["q0.25"] == pytest.approx(25, abs=1)
    assert released["q0.5"] == pytest.approx(50, abs=1)
    assert released["q0.9"] == pytest.approx(90, abs=1)
    assert all(e.distribution is NoiseDistribution.RANK for e in cell.estimates)
    assert all((e.ci_low, e.ci_high) == (0.0, 215.0) for e in cell.estimates)


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        (TimeBucket.YEAR, {"2020": 2, "2021": 4}),
        (TimeBucket.FISCAL_YEAR, {"FY2020": 1, "FY2021": 4, "FY2022": 1}),
        (
            TimeBucket.QUARTER,
            {"2020-Q3": 1, "2020-Q4": 1, "2021-Q1": 1, "2021-Q2": 1, "2021-Q3": 1, "2021-Q4": 1},
        ),
        (
            TimeBucket.MONTH,
            {"2020-09": 1, "2020-10": 1, "2021-03": 1, "2021-04": 1, "2021-07": 1, "2021-12": 1},
        ),
    ],
)
def test_time_buckets_label_and_count_rows_at_bucket_edges(
    bucket: TimeBucket, expected: dict[str, int], snapshot: Path
) -> None:
    spec = query(
        group_by=(GroupByTime(column="incident_date", bucket=bucket),),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2020, 7, 1), end=date(2021, 12, 31)),
        ),
    )
    result = release(spec, snapshot)
    counts = {cell.key[0]: cell.estimates[0].value for cell in result.cells}
    assert {label: count for label, count in counts.items() if count} == expected
    assert result.group_columns == (f"incident_date:{bucket.value}",)
    assert list(counts) == [
        b.label for b in buckets_between(bucket, date(2020, 7, 1), date(2021, 12, 31))
    ]


def test_fiscal_year_start_month_is_configurable(snapshot: Path) -> None:
    spec = query(
        group_by=(
            GroupByTime(
                column="incident_date", bucket=TimeBucket.FISCAL_YEAR, fiscal_year_start_month=7
            ),
        ),
        filters=(
            DateRangeFilter(column="incident_date", start=date(2020, 1, 1), end=date(2021, 12, 31)),
        ),
    )
    counts = values(release(spec, snapshot), "count")
    assert counts == {("FY2020",): 0.0, ("FY2021",): 4.0, ("FY2022",): 2.0}


def test_bucket_labels_are_the_documented_formats() -> None:
    day = date(2021, 7, 4)
    assert bucket_label(TimeBucket.YEAR, bucket_code(TimeBucket.YEAR, day)) == "2021"
    assert (
        bucket_label(TimeBucket.FISCAL_YEAR, bucket_code(TimeBucket.FISCAL_YEAR, day)) == "FY2021"
    )
    assert (
        bucket_label(TimeBucket.FISCAL_YEAR, bucket_code(TimeBucket.FISCAL_YEAR, date(2021, 10, 1)))
        == "FY2022"
    )
    assert bucket_label(TimeBucket.FISCAL_YEAR, bucket_code(TimeBucket.FISCAL_YEAR, day, 1)) == (
        "FY2021"
    )
    assert bucket_label(TimeBucket.QUARTER, bucket_code(TimeBucket.QUARTER, day)) == "2021-Q3"
    assert bucket_label(TimeBucket.MONTH, bucket_code(TimeBucket.MONTH, day)) == "2021-07"
    labels = [
        b.label for b in buckets_between(TimeBucket.QUARTER, date(2020, 11, 5), date(2021, 2, 1))
    ]
    assert labels == ["2020-Q4", "2021-Q1"]


@pytest.mark.parametrize("statistic", ["count", "sum", "mean", "histogram"])
def test_accuracy_target_gives_intervals_no_wider_than_asked(
    statistic: str, snapshot: Path
) -> None:
    spec_fields = dict(STATISTIC_QUERIES[statistic])
    target = 40.0
    spec = query(privacy=PrivacyLoss(accuracy=target), **spec_fields)
    built = plan(spec, snapshot)
    noisy = [e for e in built.expected if e.distribution is NoiseDistribution.GAUSSIAN]
    assert noisy
    assert all(e.half_width <= target for e in noisy)
    # the largest scale meeting the target, not a needlessly small one
    assert max(e.half_width for e in noisy) >= target * 0.9
    result = built.release(node="n", snapshot_id="s")
    for cell in result.cells:
        for estimate in cell.estimates:
            if estimate.distribution is NoiseDistribution.GAUSSIAN:
                assert estimate.ci_high - estimate.ci_low <= 2 * target


def test_accuracy_costing_more_than_the_cap_is_refused(snapshot: Path) -> None:
    tight = QueryLimits(max_rho_units_per_query=1_000)
    spec = query(privacy=PrivacyLoss(accuracy=1.0))
    validated = validate_query(spec, SCHEMA, tight)
    from privacy.validate import QueryValidationError

    with pytest.raises(QueryValidationError) as caught:
        plan_query(validated, SCHEMA, snapshot)
    assert caught.value.field == "privacy.accuracy"


def test_a_plan_releases_only_once(snapshot: Path) -> None:
    built = plan(query(), snapshot)
    built.release(node="n", snapshot_id="s")
    with pytest.raises(RuntimeError, match="already released"):
        built.release(node="n", snapshot_id="s")


def test_small_count_suppression_only_flags_and_never_changes_cost(snapshot: Path) -> None:
    spec = query(group_by=(GroupByColumn(column="county"),))
    built = plan(spec, snapshot)
    result = built.release(node="n", snapshot_id="s", suppress_below=3)
    flags = {cell.key: cell.estimates[0].suppressed for cell in result.cells}
    assert flags == {("adams",): False, ("baker",): False, ("clark",): True}
    assert values(result, "count")[("clark",)] == 0.0
    assert result.cost_units == built.cost_units


def test_release_records_query_snapshot_and_opendp_version(snapshot: Path) -> None:
    spec = query()
    result = plan(spec, snapshot).release(node="node-a", snapshot_id="snap-9")
    assert result.query_id == str(spec.query_id)
    assert (result.node, result.snapshot_id, result.dataset) == ("node-a", "snap-9", "incidents")
    assert result.opendp_version == "0.16.0"
    assert Counter(e.name for c in result.cells for e in c.estimates) == {"count": 1}


@pytest.mark.parametrize("statistic", sorted(STATISTIC_QUERIES))
def test_exact_plan_gives_what_a_huge_budget_release_gives(statistic: str, snapshot: Path) -> None:
    """The benchmark baseline is the same plan: same filter, keys, cells and aggregates."""
    spec = query(**STATISTIC_QUERIES[statistic])
    validated = validate_query(spec, SCHEMA, LIMITS)
    exact = exact_plan(validated, snapshot).collect()
    released = release(spec, snapshot)
    assert exact.height == len(validated.cell_keys()) * (
        len(validated.bin_edges) - 1 if statistic == "histogram" else 1
    )
    # sums only where the data lies inside the column's bounds: the exact plan never clips
    compared = (
        (("__count", "count"), ("__sum", "sum")) if statistic == "sum" else (("__count", "count"),)
    )
    for output, name in compared:
        if output in exact.columns and statistic != "histogram":
            assert sorted(exact[output].to_list()) == sorted(values(released, name).values())
    if statistic == "histogram":
        assert exact["__count"].sum() == sum(
            e.value for cell in released.cells for e in cell.estimates
        )


def test_quantiles_carry_a_rank_error_and_other_values_do_not(snapshot: Path) -> None:
    spec = query(**STATISTIC_QUERIES["quantiles"], privacy=PrivacyLoss(rho=Decimal("0.5")))
    built = plan(spec, snapshot)
    assert all(e.rank_error is not None and e.rank_error > 0 for e in built.expected)
    (cell,) = built.release(node="n", snapshot_id="s").cells
    assert [e.rank_error for e in cell.estimates] == [e.rank_error for e in built.expected]
    counts = release(query(group_by=(GroupByColumn(column="county"),)), snapshot)
    assert all(e.rank_error is None for c in counts.cells for e in c.estimates)
    # releases without a rank error keep their bytes: the optional field is left out
    assert b"rank_error" not in counts.to_bytes()
    assert Release.from_bytes(counts.to_bytes()) == counts
