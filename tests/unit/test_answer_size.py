"""Answer size is bounded at validation, from the public query, before any charge.

Issue 11, defect 1: a 32-quantile query by quarter over 1990-2099 was charged and then
could not be sent (its reply was over the 4 MiB message limit).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from support_data import TEST_SCHEMA as SCHEMA
from support_data import write_snapshot

from npcs.transport import MAX_MESSAGE_BYTES, MAX_RELEASE_BYTES
from privacy.answer_size import estimates_per_cell, release_bytes_bound
from privacy.budget import rho_to_units_ceil
from privacy.plan import plan_query
from privacy.query import (
    DateRangeFilter,
    GroupByColumn,
    GroupByTime,
    PrivacyLoss,
    QuerySpec,
    Statistic,
    TimeBucket,
)
from privacy.validate import QueryLimits, QueryValidationError, validate_query

LIMITS = QueryLimits(
    max_rho_units_per_query=rho_to_units_ceil(Decimal(1_000_000)),
    max_release_bytes=MAX_RELEASE_BYTES,
)
QUANTILES = tuple(round((index + 1) / 33, 4) for index in range(32))


def spec(**overrides: Any) -> QuerySpec:
    body: dict[str, Any] = {
        "query_id": uuid.uuid4(),
        "dataset": "reports",
        "statistic": "count",
        "privacy": PrivacyLoss(rho=Decimal("0.5")),
        "purpose": "size test",
        "filters": (
            DateRangeFilter(column="report_date", start=date(1990, 1, 1), end=date(2099, 12, 31)),
        ),
        "group_by": (GroupByTime(column="report_date", bucket=TimeBucket.QUARTER),),
    }
    body.update(overrides)
    return QuerySpec(**body)


def test_the_release_budget_leaves_room_for_the_answer_twice_in_one_message() -> None:
    # raw release + its base64 in the leaf data, plus a reserve for the rest
    assert MAX_RELEASE_BYTES * 7 // 3 < MAX_MESSAGE_BYTES - 256 * 1024


def test_thirty_two_quantiles_by_quarter_over_110_years_is_refused_as_too_large() -> None:
    quantiles = spec(statistic="quantiles", column="child_age_months", quantiles=QUANTILES)
    with pytest.raises(QueryValidationError) as caught:
        validate_query(quantiles, SCHEMA, LIMITS)
    assert caught.value.field == "group_by"
    assert "bytes" in caught.value.message
    assert "fewer quantiles" in caught.value.message


def test_a_3960_cell_count_is_still_answerable() -> None:
    count = spec(
        group_by=(
            GroupByTime(column="report_date", bucket=TimeBucket.QUARTER),
            GroupByColumn(column="report_source"),
        )
    )
    assert validate_query(count, SCHEMA, LIMITS).cells == 440 * 9


def test_a_smaller_byte_limit_refuses_what_a_larger_one_accepts() -> None:
    count = spec()
    validated = validate_query(count, SCHEMA, LIMITS)
    tight = QueryLimits(
        max_rho_units_per_query=LIMITS.max_rho_units_per_query, max_release_bytes=10_000
    )
    assert validated.cells == 440
    with pytest.raises(QueryValidationError, match="over this node's limit of 10,000 bytes"):
        validate_query(count, SCHEMA, tight)


SHAPES: list[dict[str, Any]] = [
    {"group_by": (GroupByTime(column="report_date", bucket=TimeBucket.MONTH),)},
    {"statistic": "mean", "column": "child_age_months"},
    {"statistic": "quantiles", "column": "child_age_months", "quantiles": QUANTILES},
    {"statistic": "histogram", "column": "child_age_months"},
    {
        "statistic": "sum",
        "column": "child_age_months",
        "group_by": (GroupByColumn(column="county"),),
    },
]


@pytest.mark.parametrize("overrides", SHAPES)
def test_the_bound_is_never_below_a_real_release(tmp_path: Path, overrides: dict[str, Any]) -> None:
    dataset = SCHEMA.dataset("reports")
    rows = [
        {
            "report_date": date(2000 + i % 20, 1 + i % 12, 1),
            "child_age_months": i % 200,
            "county": None,
        }
        for i in range(60)
    ]
    path = write_snapshot(tmp_path / "reports.parquet", dataset, rows)
    body = {
        "filters": (
            DateRangeFilter(column="report_date", start=date(2000, 1, 1), end=date(2019, 12, 31)),
        ),
        "group_by": (),
        "privacy": PrivacyLoss(rho=Decimal("0.001")),
        **overrides,
    }
    validated = validate_query(spec(**body), SCHEMA, LIMITS)
    released = plan_query(validated, SCHEMA, path).release(node="n" * 64, snapshot_id="s" * 64)
    per_cell = estimates_per_cell(validated.statistic, len(validated.spec.quantiles))
    bound = release_bytes_bound([g.labels for g in validated.groups], validated.cells, per_cell)
    assert len(released.to_bytes()) <= bound
    assert validated.statistic is not Statistic.COUNT or bound < 4 * len(released.to_bytes())
