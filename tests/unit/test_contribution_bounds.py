"""Per-period contribution bounds: declared in the schema, enforced and priced by OpenDP.

Exactness checks use a huge rho (noise far below 0.5, so released counts are the exact
counts of the truncated data); the noise itself is checked in tests/statistical.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from privacy.bounds import query_bounds, rows_in_range, rows_per_bucket
from privacy.budget import rho_to_units_ceil
from privacy.centring import CENTRED_SUM, SUM_SHARE_OF_MEAN_RHO
from privacy.opendp_setup import opendp
from privacy.plan import person_distance, plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    TimeBucket,
)
from privacy.release import Release
from privacy.schema import PeriodBound
from privacy.validate import QueryLimits, ValidatedQuery, validate_query

HUGE_RHO = Decimal(1_000_000)
LIMITS = QueryLimits(max_rho_units_per_query=rho_to_units_ceil(HUGE_RHO))
WORKFORCE = SCHEMA.dataset("workforce")
SURVEY = SCHEMA.dataset("safety_culture")
INCIDENTS = SCHEMA.dataset("incidents")


def validated(dataset: str, rho: Decimal = HUGE_RHO, **fields: Any) -> ValidatedQuery:
    spec = QuerySpec(
        query_id=uuid.uuid4(),
        dataset=dataset,
        privacy=PrivacyLoss(rho=rho),
        purpose="contribution bound test",
        **{"statistic": "count", **fields},
    )
    return validate_query(spec, SCHEMA, LIMITS)


def release(query: ValidatedQuery, path: Path) -> Release:
    return plan_query(query, SCHEMA, path).release(node="n", snapshot_id="s")


def counts(result: Release) -> dict[tuple[str, ...], float]:
    return {cell.key: cell.estimates[0].value for cell in result.cells}


def years(first: int, last: int) -> dict[str, Any]:
    return {
        "group_by": (GroupByTime(column="month", bucket=TimeBucket.YEAR),),
        "filters": (
            DateRangeFilter(column="month", start=date(first, 1, 1), end=date(last, 12, 31)),
        ),
    }


# --- what the schema declares and what a query may see --------------------------------


def test_per_bucket_bounds_follow_from_the_declared_periods() -> None:
    assert rows_per_bucket(WORKFORCE, TimeBucket.MONTH) == 1
    assert rows_per_bucket(WORKFORCE, TimeBucket.QUARTER) == 3
    assert rows_per_bucket(WORKFORCE, TimeBucket.YEAR) == 12
    # a federal fiscal year (October) holds 12 months, 4 whole quarters, 2 calendar years
    assert rows_per_bucket(WORKFORCE, TimeBucket.FISCAL_YEAR, 10) == 12
    assert rows_per_bucket(SURVEY, TimeBucket.QUARTER) == 1
    assert rows_per_bucket(SURVEY, TimeBucket.YEAR) == 2
    # a fiscal year from February overlaps 2 calendar years: 2 + 2 waves at most
    assert rows_per_bucket(SURVEY, TimeBucket.FISCAL_YEAR, 2) == 4


def test_a_short_date_range_lowers_the_total_bound() -> None:
    assert rows_in_range(WORKFORCE, date(2019, 1, 1), date(2024, 12, 31)) == 72
    assert rows_in_range(WORKFORCE, date(2019, 1, 1), date(2031, 12, 31)) == 96
    assert rows_in_range(WORKFORCE, date(2020, 5, 10), date(2020, 6, 2)) == 2
    assert rows_in_range(SURVEY, date(2019, 1, 1), date(2024, 12, 31)) == 12


def test_query_bounds_use_only_the_contribution_period_column() -> None:
    by_year = validated("workforce", **years(2019, 2024))
    assert query_bounds(by_year).total == 72
    assert query_bounds(by_year).per_time_group == (12,)
    by_review_year = validated(
        "incidents",
        group_by=(GroupByTime(column="review_date", bucket=TimeBucket.YEAR),),
        filters=(
            DateRangeFilter(column="review_date", start=date(2020, 1, 1), end=date(2020, 12, 31)),
        ),
    )
    assert query_bounds(by_review_year).total == INCIDENTS.max_rows_per_unit
    assert query_bounds(by_review_year).per_time_group == (None,)


def test_the_schema_refuses_a_period_bound_over_the_total() -> None:
    with pytest.raises(ValueError, match="exceeds the total bound"):
        WORKFORCE.model_validate(
            {
                **WORKFORCE.model_dump(),
                "max_rows_per_period": (PeriodBound(period=TimeBucket.YEAR, max_rows=97),),
            }
        )


# --- OpenDP derives the sensitivity from the truncations ------------------------------


def test_noise_scale_follows_the_per_year_bound_not_the_lifetime_bound(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "w.parquet", WORKFORCE, [{"month": date(2020, 1, 1)}])
    rho = Decimal("0.5")
    built = plan_query(validated("workforce", rho=rho, **years(2019, 2024)), SCHEMA, path)
    # 6 public year cells, at most 12 rows of a worker in each: L2 = sqrt(6) * 12 (lifetime: 96)
    sensitivity = math.sqrt(6) * 12
    assert built.expected[0].scale == pytest.approx(sensitivity / math.sqrt(2 * 0.5), rel=1e-6)
    assert float(built._measurement.map(person_distance(opendp()))) <= 0.5


def test_a_survey_wave_mean_is_priced_for_one_response_per_quarter(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path / "s.parquet", SURVEY, [{"wave_date": date(2020, 3, 1)}])
    query = validated(
        "safety_culture",
        rho=Decimal(1),
        statistic="mean",
        column="psych_safety",
        group_by=(GroupByTime(column="wave_date", bucket=TimeBucket.QUARTER),),
        filters=(
            DateRangeFilter(column="wave_date", start=date(2019, 1, 1), end=date(2024, 12, 31)),
        ),
    )
    built = plan_query(query, SCHEMA, path)
    # 24 quarters but at most 12 responses in 6 years, one per quarter: the count's L2
    # sensitivity is sqrt(12) (lifetime bound: 16); the centred sum's is 2 * sqrt(12)
    scales = {value.name: value.scale for value in built.expected}
    count_rho = 1 - SUM_SHARE_OF_MEAN_RHO
    assert scales["count"] == pytest.approx(math.sqrt(12 / (2 * count_rho)), rel=1e-6)
    sum_rho = SUM_SHARE_OF_MEAN_RHO
    assert scales[CENTRED_SUM] == pytest.approx(2 * math.sqrt(12 / (2 * sum_rho)), rel=1e-6)
    assert built.cost_units == 1_000_000


# --- OpenDP enforces the bounds on a snapshot that breaks them ------------------------


def test_a_child_with_51_rows_counts_for_the_total_bound_only(tmp_path: Path) -> None:
    """Written outside ingest: 209 children with one row and one child with 51 rows.

    Before per-query truncation this released about 260 (the extra 49 rows of one child
    moved the answer by 25 noise standard deviations at rho 1)."""
    day = date(2021, 5, 1)
    rows = [{"child_id": f"k{i}", "incident_date": day} for i in range(209)]
    rows += [{"child_id": "k-many", "incident_date": day} for _ in range(51)]
    path = write_snapshot(tmp_path / "i.parquet", INCIDENTS, rows)
    result = release(validated("incidents"), path)
    assert counts(result) == {(): 209.0 + INCIDENTS.max_rows_per_unit}


def test_a_worker_over_the_monthly_bound_is_cut_per_month(tmp_path: Path) -> None:
    """A worker listed 5 times in March 2020 (and once in April) counts once per month;
    other workers are untouched."""
    rows: list[dict[str, Any]] = [{"worker_id": "w-dup", "month": date(2020, 3, 1)}] * 5
    rows.append({"worker_id": "w-dup", "month": date(2020, 4, 1)})
    rows += [{"worker_id": f"w{i}", "month": date(2020, 3, 1)} for i in range(7)]
    path = write_snapshot(tmp_path / "w.parquet", WORKFORCE, rows)
    by_month = validated(
        "workforce",
        group_by=(GroupByTime(column="month", bucket=TimeBucket.MONTH),),
        filters=(DateRangeFilter(column="month", start=date(2020, 3, 1), end=date(2020, 4, 30)),),
    )
    assert counts(release(by_month, path)) == {("2020-03",): 8.0, ("2020-04",): 1.0}


def test_truncation_keeps_every_row_of_a_snapshot_within_the_bounds(tmp_path: Path) -> None:
    start = date(2019, 1, 1)
    rows = [
        {"worker_id": f"w{worker}", "month": start + timedelta(days=31 * month), "role": "other"}
        for worker in range(4)
        for month in range(30)
    ]
    path = write_snapshot(tmp_path / "w.parquet", WORKFORCE, rows)
    query = validated(
        "workforce",
        group_by=(GroupByColumn(column="role"),),
        filters=years(2019, 2021)["filters"],
    )
    assert counts(release(query, path))[("other",)] == 120.0
